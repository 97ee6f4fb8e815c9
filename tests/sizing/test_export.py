"""`lsdt export`: the torchrun command is accepted by LSDT's trainer and shards as the plan assumed,
the CLI writes each target, the torchtitan config loads with torchtitan. Megatron-LM and torchtitan
in depth: test_export_megatron.py, test_export_torchtitan.py; the 2-rank run: tests/runtime/test_export_torchrun.py."""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from dataclasses import field, fields, make_dataclass

import pytest

from engine.errors import UserError
from engine.plan import Plan, load_plan
from engine.runtime.train.config import add_arguments as trainer_arguments
from engine.runtime.train.config import resolve_config
from engine.sizing import export
from engine.sizing.physics import default_goal, physics
from engine.specs import load_hardware, load_model
from tests.conftest import run_lsdt

LAYOUT = {"gpus": 256, "dp": 8, "tp": 8, "pp": 4, "micro_batch": 1, "recompute": "selective", "zero": 1,
          "interleave": 2, "sequence_parallel": True}
DP_LAYOUT = {**LAYOUT, "gpus": 16, "dp": 16, "tp": 1, "pp": 1, "micro_batch": 2, "interleave": 1, "recompute": "none",
             "sequence_parallel": False}


def _trainer_args(cmd: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(exit_on_error=False)
    trainer_arguments(p)
    return p.parse_args(cmd[cmd.index("-m") + 2:])


def test_torchrun_command_is_accepted_by_lsdts_trainer():
    cmd = export.torchrun_command("llama3-8b", DP_LAYOUT, 256, 100, 8, 8192, export.rope_base(load_model("llama3-8b")))
    assert cmd[:5] == ["torchrun", "--nnodes", "2", "--nproc-per-node", "8"]
    assert cmd[cmd.index("-m") + 1] == "engine.runtime.train.loop"
    ns = _trainer_args(cmd)
    assert (ns.model, ns.device_batch, ns.grad_accum, ns.steps, ns.seq, ns.rope_base) == ("llama3-8b", 2, 256 // (16 * 2), 100, 8192, 500_000)
    cfg = resolve_config(ns)  # the trainer's own resolution accepts it
    assert cfg.fsdp and cfg.fsdp_keep_weights and cfg.rope_base == 500_000


@pytest.mark.parametrize("zero,fsdp,keep", [(0, False, False), (1, True, True), (2, True, True), (3, True, False)])
def test_torchrun_shards_as_the_plan_assumed(zero, fsdp, keep):
    """ZeRO 0 replicates (DDP); 1 and 2 shard gradients and optimizer state and keep whole weights
    through the step (FSDP2 without resharding after forward); 3 shards the weights too."""
    ns = _trainer_args(export.torchrun_command("llama3-8b", {**DP_LAYOUT, "zero": zero}, 256, 10, 8, 8192))
    assert (bool(ns.fsdp), bool(ns.fsdp_keep_weights)) == (fsdp, keep)


@pytest.mark.parametrize("change,words", [({"tp": 8, "dp": 2}, "TP 8 x PP 1"), ({"cp": 2, "dp": 8}, "CP 2"),
                                          ({"recompute": "full"}, "full recompute"), ({"offload_optimizer": True}, "CPU offload")])
def test_torchrun_refuses_what_lsdts_trainer_does_not_do(change, words):
    with pytest.raises(UserError, match=f"data parallelism only.*{words}"):
        export.torchrun_command("m", {**DP_LAYOUT, **change}, 256, 10, 8, 2048)


def test_torchtitan_config_loads_with_torchtitan_when_installed(tmp_path, monkeypatch):
    """torchtitan is installed (the interop extra): the export loads through its own classes."""
    from torchtitan.trainer import Trainer

    path = tmp_path / "lsdt_tt.py"
    path.write_text(export.torchtitan_config(load_model("llama3-8b"), {**LAYOUT, "tp": 1, "pp": 1, "dp": 256, "interleave": 1}, 512, 10))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        module = importlib.import_module("lsdt_tt")
        fn = next(v for k, v in vars(module).items() if k.startswith("lsdt_"))
        config = fn()
        assert isinstance(config, Trainer.Config)
        assert config.parallelism.data_parallel_shard_degree == 256 and config.training.global_batch_size == 512
    finally:
        sys.modules.pop("lsdt_tt", None)


def test_torchtitan_refuses_shapes_it_does_not_ship():
    with pytest.raises(UserError, match="gelu FFN"):
        export.torchtitan_config(load_model("gpt3-175b"), LAYOUT, 512, 10)


def test_export_cli_all_targets(tmp_path):
    model = load_model("llama3-8b")
    plan = Plan(model, load_hardware("h100-sxm"), default_goal(model), G=64).compute()
    path = plan.save(tmp_path / "p.toml")
    b0 = physics(plan.model, plan.hardware, plan.goal)
    layout = plan.refined["layouts"][0]
    mg = run_lsdt("export", "--plan", str(path), "--to", "megatron")
    assert mg.returncode == 0, mg.stderr
    flags = shlex.split(" ".join(line.rstrip("\\") for line in mg.stdout.splitlines() if not line.startswith("#")))
    assert flags == export.megatron_args(model, layout, b0.global_batch_seqs, b0.n_steps)
    out = tmp_path / "tt_config.py"
    tt = run_lsdt("export", "--plan", str(path), "--to", "torchtitan", "--out", str(out))
    assert tt.returncode == 0 and out.read_text() == export.torchtitan_config(model, layout, b0.global_batch_seqs, b0.n_steps)
    tr = run_lsdt("export", "--plan", str(path), "--to", "torchrun")
    if layout["tp"] == layout["pp"] == 1 and layout["recompute"] == "none":
        assert tr.returncode == 0 and tr.stdout.splitlines()[-1].startswith("torchrun ")
        assert ("--fsdp" in tr.stdout) == (layout["zero"] >= 1)
    else:
        assert tr.returncode == 2 and "data parallelism only" in tr.stderr
    bad = run_lsdt("export", "--plan", str(path), "--to", "megatron", "--layout", "99")
    assert bad.returncode == 2 and "--layout 99" in bad.stderr and bad.stderr.count("\n") == 1
    missing = run_lsdt("export", "--plan", str(tmp_path / "nope.toml"), "--to", "megatron")
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_an_engine_refusal_is_one_line_and_writes_nothing(tmp_path):
    model = load_model("gpt2-124m")
    path = Plan(model, load_hardware("h100-sxm"), default_goal(model), G=8).compute().save(tmp_path / "g.toml")
    out = tmp_path / "tt.py"
    r = run_lsdt("export", "--plan", str(path), "--to", "torchtitan", "--out", str(out))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "gelu FFN (torchtitan 0.3.0's llama3 family has SwiGLU only)" in r.stderr, r.stderr
    assert not out.exists() and "Traceback" not in r.stderr


def test_export_cli_deepseek_v3_plan(tmp_path):
    """The DeepSeek-V3 worked example of docs/export.md: 14.8T tokens on 2,048 H100s in 90 days.
    Megatron takes the fastest layout (a one-layer last stage under v4: the layout string);
    torchtitan refuses it in one line, and takes a layout without interleaving (the 1,024-GPU plan's)."""
    path = tmp_path / "ds.toml"
    plan = run_lsdt("plan", "--model", "deepseek-v3", "--hardware", "h100-sxm", "--tokens", "14.8e12", "--days", "90",
                    "--G", "2048", "--save", str(path))
    assert plan.returncode == 0, plan.stderr
    mg = run_lsdt("export", "--plan", str(path), "--to", "megatron")
    assert mg.returncode == 0, mg.stderr
    assert "# router: Megatron's defaults" in mg.stdout
    flags = shlex.split(" ".join(line.rstrip("\\") for line in mg.stdout.splitlines() if not line.startswith("#")))
    assert "--multi-latent-attention" in flags and "--pipeline-model-parallel-layout" in flags
    out = tmp_path / "ds_tt.py"
    refused = run_lsdt("export", "--plan", str(path), "--to", "torchtitan", "--out", str(out))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "DeepSeek-V3's recipe" in refused.stderr, refused.stderr
    refused = run_lsdt("export", "--plan", str(path), "--to", "torchtitan", "--layout", "2", "--out", str(out))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "without a layer" in refused.stderr, refused.stderr
    assert not out.exists()
    path = tmp_path / "ds1024.toml"
    plan = run_lsdt("plan", "--model", "deepseek-v3", "--hardware", "h100-sxm", "--tokens", "14.8e12", "--days", "180",
                    "--G", "1024", "--save", str(path))
    assert plan.returncode == 0, plan.stderr
    layouts = load_plan(path).compute().refined["layouts"]
    plain = next(i for i, lay in enumerate(layouts, 1) if lay["interleave"] == 1)  # each end stage one module list
    tt = run_lsdt("export", "--plan", str(path), "--to", "torchtitan", "--layout", str(plain), "--out", str(out))
    assert tt.returncode == 0 and "deepseek_v3_671b()" in out.read_text(), tt.stderr


def test_every_layout_dimension_the_engineering_model_records_is_exported_or_refused(monkeypatch):
    """One record (refine.Layout): a dimension added there is refused by name until an export
    translates it, never dropped from the launch config."""
    from engine.sizing import refine
    from engine.sizing.export import layout as export_layout

    assert export_layout.EXPORTED_LAYOUT_FIELDS <= {f.name for f in fields(refine.Layout)}  # none renamed away
    grown = make_dataclass("Layout", [("pipeline_zero_bubble", bool, field(default=False))], bases=(refine.Layout,), frozen=True)
    monkeypatch.setattr(export_layout, "Layout", grown)
    names = {f.name for f in fields(grown)}
    monkeypatch.setattr(export_layout, "layout_from", lambda row: grown(**{k: v for k, v in row.items() if k in names}))
    with pytest.raises(UserError, match="pipeline_zero_bubble = True, which the exports do not translate"):
        export.megatron_args(load_model("gpt2-124m"), {**DP_LAYOUT, "pipeline_zero_bubble": True}, 256, 10)
    assert export.megatron_args(load_model("gpt2-124m"), DP_LAYOUT, 256, 10)  # at its default: nothing to say
