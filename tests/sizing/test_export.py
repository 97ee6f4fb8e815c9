"""`lsdt export`: Megatron-LM flags parse, the torchrun command is well formed and accepted by LSDT's
trainer, the torchtitan config follows its format's rules (and loads where torchtitan is installed)."""

from __future__ import annotations

import argparse
import ast
import importlib.util
import shlex
import sys

import pytest

from engine.errors import UserError
from engine.plan import Plan
from engine.runtime.train.config import add_arguments as trainer_arguments
from engine.sizing import export
from engine.sizing.physics import default_goal
from engine.specs import load_hardware, load_model
from tests.conftest import run_lsdt

LAYOUT = {"gpus": 256, "dp": 8, "tp": 8, "pp": 4, "micro_batch": 1, "recompute": "selective", "zero": 1,
          "interleave": 2, "sequence_parallel": True}


def megatron_parser() -> argparse.ArgumentParser:
    """The flags LSDT emits, typed as Megatron-LM's megatron/training/arguments.py defines them."""
    p = argparse.ArgumentParser(exit_on_error=False)
    for flag in ("--num-layers", "--hidden-size", "--num-attention-heads", "--ffn-hidden-size", "--seq-length",
                 "--max-position-embeddings", "--tensor-model-parallel-size", "--pipeline-model-parallel-size",
                 "--micro-batch-size", "--global-batch-size", "--train-iters", "--num-query-groups", "--kv-channels",
                 "--num-layers-per-virtual-pipeline-stage", "--recompute-num-layers"):
        p.add_argument(flag, type=int)
    p.add_argument("--recompute-granularity", choices=["full", "selective"])
    p.add_argument("--recompute-method", choices=["uniform", "block"])
    for flag in ("--bf16", "--group-query-attention", "--swiglu", "--squared-relu", "--untie-embeddings-and-output-weights",
                 "--sequence-parallel", "--use-distributed-optimizer", "--use-torch-fsdp2"):
        p.add_argument(flag, action="store_true")
    return p


def test_megatron_args_parse_and_multiply_to_the_world():
    model = load_model("llama3-70b")
    args = megatron_parser().parse_args(export.megatron_args(model, LAYOUT, 512, 1000))
    assert args.tensor_model_parallel_size * args.pipeline_model_parallel_size * LAYOUT["dp"] == LAYOUT["gpus"]
    assert args.global_batch_size % (args.micro_batch_size * LAYOUT["dp"]) == 0
    assert args.num_layers_per_virtual_pipeline_stage == 80 // (4 * 2)
    assert args.recompute_granularity == "selective" and args.sequence_parallel and args.use_distributed_optimizer
    assert args.group_query_attention and args.num_query_groups == 8 and args.swiglu
    full = megatron_parser().parse_args(export.megatron_args(model, {**LAYOUT, "recompute": "full", "zero": 3, "interleave": 1}, 512, 10))
    assert full.recompute_granularity == "full" and full.recompute_method == "uniform" and full.use_torch_fsdp2
    assert full.num_layers_per_virtual_pipeline_stage is None


def test_torchrun_command_is_accepted_by_lsdts_trainer():
    layout = {**LAYOUT, "gpus": 16, "dp": 16, "tp": 1, "pp": 1, "micro_batch": 2, "interleave": 1}
    cmd = export.torchrun_command("llama3-8b", layout, 256, 100, 8, 8192)
    assert cmd[:5] == ["torchrun", "--nnodes", "2", "--nproc-per-node", "8"]
    i = cmd.index("-m")
    assert cmd[i + 1] == "engine.runtime.train.loop"
    p = argparse.ArgumentParser(exit_on_error=False)
    trainer_arguments(p)
    ns = p.parse_args(cmd[i + 2:])
    assert (ns.model, ns.device_batch, ns.grad_accum, ns.steps, ns.seq) == ("llama3-8b", 2, 256 // (16 * 2), 100, 8192)
    with pytest.raises(UserError, match="data parallelism only"):
        export.torchrun_command("m", LAYOUT, 512, 10, 8, 2048)


# torchtitan's config format (torchtitan/config/configs.py of the Python-config releases): the
# fields each dataclass accepts, and the literal choices of ActivationCheckpointConfig.mode.
TT_FIELDS = {
    "TrainingConfig": {"local_batch_size", "global_batch_size", "seq_len", "max_norm", "steps", "enable_cpu_offload",
                       "dtype", "mixed_precision_param", "mixed_precision_reduce", "gc_freq", "gc_debug"},
    "ParallelismConfig": {"data_parallel_replicate_degree", "data_parallel_shard_degree", "fsdp_reshard_after_forward",
                          "enable_fsdp_symm_mem", "tensor_parallel_degree", "disable_loss_parallel",
                          "enable_async_tensor_parallel", "enable_sequence_parallel", "full_dtensor",
                          "pipeline_parallel_degree", "module_fqns_per_model_part", "pipeline_parallel_first_stage_less_layers",
                          "pipeline_parallel_last_stage_less_layers", "pipeline_parallel_layers_per_stage",
                          "pipeline_parallel_schedule", "pipeline_parallel_schedule_csv", "pipeline_parallel_microbatch_size",
                          "context_parallel_degree", "context_parallel_load_balancer", "context_parallel_rotate_method",
                          "expert_parallel_degree"},
    "ActivationCheckpointConfig": {"mode"},
    "Config": {"model_spec", "training", "parallelism", "activation_checkpoint"},
}


def _calls(tree) -> dict[str, dict]:
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            out[name] = {k.arg: ast.literal_eval(k.value) if not isinstance(k.value, ast.Call) else None for k in node.keywords}
    return out


@pytest.mark.parametrize("layout", [LAYOUT, {**LAYOUT, "pp": 1, "interleave": 1, "dp": 32, "zero": 0, "recompute": "none"},
                                    {**LAYOUT, "zero": 3, "interleave": 1, "recompute": "full"}])
def test_torchtitan_config_follows_the_format_rules(layout):
    model = load_model("llama3-70b")
    text = export.torchtitan_config(model, layout, 512, 1000)
    tree = ast.parse(text)
    fns = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert len(fns) == 1 and ast.unparse(fns[0].returns) == "Trainer.Config"
    imports = {(n.module, a.name) for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
    assert ("torchtitan.trainer", "Trainer") in imports and ("torchtitan.models.llama3", "model_registry") in imports
    calls = _calls(tree)
    for cls, allowed in TT_FIELDS.items():
        assert set(calls[cls]) <= allowed, cls
    par, train = calls["ParallelismConfig"], calls["TrainingConfig"]
    degrees = par["data_parallel_replicate_degree"] * par["data_parallel_shard_degree"] * par["tensor_parallel_degree"] * par.get("pipeline_parallel_degree", 1)
    assert degrees == layout["gpus"]  # torchtitan's check: the degrees multiply to the world size
    assert calls["ActivationCheckpointConfig"]["mode"] in ("selective", "full", "memory_budget", "none")
    assert train["global_batch_size"] == 512 and train["global_batch_size"] % (train["local_batch_size"] * layout["dp"]) == 0
    if layout["pp"] > 1:
        assert par["pipeline_parallel_schedule"] in ("1F1B", "Interleaved1F1B")
        assert train["local_batch_size"] % par["pipeline_parallel_microbatch_size"] == 0
        if "pipeline_parallel_layers_per_stage" in par:  # torchtitan: virtual stages must divide by pp
            extra = par["pipeline_parallel_first_stage_less_layers"] + par["pipeline_parallel_last_stage_less_layers"]
            stages = -(-(model.n_layer + extra) // par["pipeline_parallel_layers_per_stage"])
            assert stages % layout["pp"] == 0 and stages == layout["pp"] * layout["interleave"]


def test_torchtitan_config_loads_with_torchtitan_when_installed(tmp_path):
    if importlib.util.find_spec("torchtitan") is None:
        pytest.skip("torchtitan is not installed here; the structure is checked against its documented fields above")
    path = tmp_path / "lsdt_tt.py"
    path.write_text(export.torchtitan_config(load_model("llama3-8b"), {**LAYOUT, "tp": 1, "pp": 1, "dp": 256, "interleave": 1}, 512, 10))
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("lsdt_tt")
        fn = next(v for k, v in vars(module).items() if k.startswith("lsdt_"))
        config = fn()
        assert config.parallelism.data_parallel_shard_degree == 256
    finally:
        sys.path.remove(str(tmp_path))


def test_torchtitan_refuses_shapes_it_does_not_ship():
    with pytest.raises(UserError, match="not a torchtitan registry shape"):
        export.torchtitan_config(load_model("gpt3-175b"), LAYOUT, 512, 10)


def test_export_cli_all_targets(tmp_path):
    model = load_model("llama3-8b")
    plan = Plan(model, load_hardware("h100-sxm"), default_goal(model), G=64).compute()
    path = plan.save(tmp_path / "p.toml")
    mg = run_lsdt("export", "--plan", str(path), "--to", "megatron")
    assert mg.returncode == 0, mg.stderr
    flags = shlex.split(" ".join(line.rstrip("\\") for line in mg.stdout.splitlines() if not line.startswith("#")))
    megatron_parser().parse_args(flags)
    out = tmp_path / "tt_config.py"
    tt = run_lsdt("export", "--plan", str(path), "--to", "torchtitan", "--out", str(out))
    assert tt.returncode == 0 and ast.parse(out.read_text())
    tr = run_lsdt("export", "--plan", str(path), "--to", "torchrun")
    if plan.refined["layouts"][0]["tp"] == plan.refined["layouts"][0]["pp"] == 1:
        assert tr.returncode == 0 and tr.stdout.splitlines()[-1].startswith("torchrun ")
    else:
        assert tr.returncode == 2 and "data parallelism only" in tr.stderr
    bad = run_lsdt("export", "--plan", str(path), "--to", "megatron", "--layout", "99")
    assert bad.returncode == 2 and "--layout 99" in bad.stderr and bad.stderr.count("\n") == 1
    missing = run_lsdt("export", "--plan", str(tmp_path / "nope.toml"), "--to", "megatron")
    assert missing.returncode == 2 and "no such file" in missing.stderr
