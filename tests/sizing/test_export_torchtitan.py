"""`lsdt export --to torchtitan`: the exported module loads through torchtitan's own ConfigManager
(the pinned torchtitan, installed by the interop extra), its Trainer.Config passes torchtitan's
checks, its degrees pass ParallelDims, its stages are the planned split, and torchtitan's model
is the model LSDT sized: Llama 3 in the llama3 family's registry, LLaMA 1 (llama-7b, llama-13b) as
its own shape in the llama3 family, DeepSeek-V3 (MLA, shared experts, dense-first layers, MTP) in
the deepseek_v3 family; every other shipped profile is refused naming what torchtitan lacks.
No training, no GPU."""

from __future__ import annotations

import importlib.metadata
import sys

import pytest
import torch

from engine.errors import UserError
from engine.sizing import export
from engine.sizing.counts import param_counts
from engine.specs import builtin_names, load_model
from tests.sizing.export_layouts import layouts_for

from torch.distributed.pipelining.schedules import PipelineScheduleSingle, get_schedule_class
from torchtitan.config import ConfigManager  # the pinned interop dependency
from torchtitan.distributed.activation_checkpoint import FullAC, SelectiveAC
from torchtitan.distributed.parallel_dims import ParallelDims
from torchtitan.trainer import Trainer


def test_the_installed_torchtitan_is_the_pinned_release():
    assert importlib.metadata.version("torchtitan") == export.TORCHTITAN_RELEASE


@pytest.mark.parametrize("name", list(export.TORCHTITAN_MODELS))
def test_torchtitans_registry_model_is_the_profile_lsdt_sized(name):
    module, flavour, _, rope_positions = export.TORCHTITAN_MODELS[name]
    registry = __import__(module, fromlist=["model_registry"]).model_registry
    config = registry(flavour).model
    model = load_model(name)
    assert (len(config.layers), config.dim, config.vocab_size) == (model.n_layer, model.d_model, model.vocab_size)
    assert config.layers[0].attention.rope.max_seq_len == rope_positions
    with torch.device("meta"):
        built = config.build()
    # DeepSeek-V3: 671,026,404,352 with the norm gains, Megatron's count of its export too
    assert sum(p.numel() for p in built.parameters()) == param_counts(model).total + _norm_gains(model)


def _norm_gains(model) -> int:
    """torchtitan's RMSNorm carries a gain: two per block and a final one, and MLA's on its q and kv
    latents, beyond LSDT's count (LSDT's norms carry none)."""
    latent = model.q_lora_rank + model.kv_lora_rank if model.is_mla else 0
    return (2 * model.n_layer + 1) * model.d_model + model.n_layer * latent


def _built_params(config: Trainer.Config) -> int:
    with torch.device("meta"):
        built = config.model_spec.model.build()
    return sum(p.numel() for p in built.parameters())  # a tied weight is one parameter


def _load(tmp_path, monkeypatch, text: str, stem: str) -> Trainer.Config:
    """The exported module loaded the way `torchtitan.train --module STEM --config FN` loads it."""
    (tmp_path / f"{stem}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    fn = text.split("--config ", 1)[1].split()[0]  # the function the header's Run line names
    try:
        return ConfigManager().parse_args(["--module", stem, "--config", fn])
    finally:
        sys.modules.pop(stem, None)


# What torchtitan 0.3.0 cannot build of each shipped profile it refuses, by name prefix; every other
# shipped profile exports (a new profile lands in one list or the other, or the test below fails).
REFUSED = {"gpt2-": "gelu FFN", "gpt3-": "gelu FFN", "nanochat-": "relu2 FFN", "s7-moe-": "two-phase MoE"}
EXPORTED = {"llama-7b", "llama-13b", "llama3-8b", "llama3-70b", "llama3-405b", "deepseek-v3"}


@pytest.mark.parametrize("name", builtin_names("models"))
def test_every_shipped_profile_exports_the_model_lsdt_counted_or_is_refused_naming_what_torchtitan_lacks(tmp_path, monkeypatch, name):
    model = load_model(name)
    layout = layouts_for(model)["dp-only"]
    reason = next((why for prefix, why in REFUSED.items() if name.startswith(prefix)), None)
    if reason is not None:
        with pytest.raises(UserError, match=f"{reason} \\(") as refused:
            export.torchtitan_config(model, layout, 512, 10)
        assert "\n" not in str(refused.value) and "accepted: a Llama-architecture profile" in str(refused.value)
        return
    assert name in EXPORTED, f"{name}: a new shipped profile; list it in EXPORTED or REFUSED"
    config = _load(tmp_path, monkeypatch, export.torchtitan_config(model, layout, 512, 10), f"lsdt_all_{name.replace('-', '_')}")
    assert _built_params(config) == param_counts(model).total + _norm_gains(model)


@pytest.mark.parametrize("name", ["llama-7b", "llama-13b"])
def test_llama_1_is_its_own_shape_in_torchtitans_llama3_family(tmp_path, monkeypatch, name):
    """No registry preset is LLaMA 1: the export registers its shape as a llama3 flavour built by the
    family's own builders, with LLaMA 1's RoPE base (10,000, no scaling), RMSNorm eps (1e-6), context
    and the profile's d_ff as the SwiGLU width; the count is LLaMA's published one (6,738,415,616 and
    13,015,864,320 with the norm gains, as HF's huggyllama models count)."""
    model = load_model(name)
    text = export.torchtitan_config(model, layouts_for(model)["dp-only"], 512, 10)
    assert f"tokenizer of exactly {model.vocab_size:,} tokens" in text and f"./assets/hf/{name}" in text
    config = _load(tmp_path, monkeypatch, text, f"lsdt_l1_{name.replace('-', '_')}")
    spec = config.model_spec
    assert (spec.name, spec.flavor) == ("llama3", f"lsdt-{name}")
    assert config.hf_assets_path == f"./assets/hf/{name}" and config.loss.loss_fn.global_vocab_size == 32_000
    block = spec.model.layers[0]
    rope = block.attention.rope
    assert (rope.theta, rope.scaling, rope.max_seq_len, rope.dim) == (10_000, "none", model.seq_len, model.head_dim)
    assert block.attention_norm.eps == block.ffn_norm.eps == spec.model.norm.eps == 1e-6
    assert block.feed_forward.w1.out_features == model.d_ff and block.attention.n_kv_heads == model.n_head
    built = _built_params(config)
    assert built == param_counts(model).total + _norm_gains(model)
    assert built == {"llama-7b": 6_738_415_616, "llama-13b": 13_015_864_320}[name]


def test_llama3_405b_trains_in_bf16_as_planned_not_in_its_presets_float8(tmp_path, monkeypatch):
    """torchtitan's llama3_405b() converts the linears to Float8 (torchao, not installed here, so the
    preset does not even load); the bf16 plan exports the 405B registry model on the 70B recipe."""
    from torchtitan.models.common import Linear

    model = load_model("llama3-405b")
    config = _load(tmp_path, monkeypatch, export.torchtitan_config(model, layouts_for(model)["tp-pp"], 512, 10), "lsdt_405b")
    assert (config.model_spec.flavor, config.hf_assets_path) == ("405B", "./assets/hf/Llama-3.1-405B")
    assert type(config.model_spec.model.layers[0].feed_forward.w1) is Linear.Config  # not Float8Linear's


def test_a_changed_llama3_shape_tied_or_not_exports_as_its_own_shape(tmp_path, monkeypatch):
    """A llama3-8b with another FFN width is no preset any more: it exports as its own shape (Llama 3's
    RoPE base kept). Tied embeddings build as the 1B preset ties them (one parameter), and are refused
    under PP, which torchtitan's Decoder.Config refuses."""
    wider = load_model("llama3-8b").with_(d_ff=16_384)
    config = _load(tmp_path, monkeypatch, export.torchtitan_config(wider, layouts_for(wider)["zero3-selective"], 512, 10), "lsdt_wider")
    assert config.model_spec.model.layers[0].attention.rope.theta == 500_000
    assert _built_params(config) == param_counts(wider).total + _norm_gains(wider)
    tied = load_model("llama-7b").with_(name="llama-7b-tied", n_layer=2, tie_embeddings=True)
    config = _load(tmp_path, monkeypatch, export.torchtitan_config(tied, layouts_for(tied)["dp-only"], 512, 10), "lsdt_tied")
    assert config.model_spec.model.enable_weight_tying
    assert _built_params(config) == param_counts(tied).total + _norm_gains(tied)
    with pytest.raises(UserError, match="ties its embedding.*PP 2"):
        export.torchtitan_config(tied, layouts_for(tied)["uneven"], 512, 10)


def test_a_profile_name_or_source_with_quotes_and_backslashes_still_writes_a_loadable_module(tmp_path, monkeypatch):
    name = 'team\'s "llama" """7b""" \\ v2'
    model = load_model("llama-7b").with_(name=name, n_layer=2, source='notes """x""" C:\\new')
    config = _load(tmp_path, monkeypatch, export.torchtitan_config(model, layouts_for(model)["dp-only"], 512, 10), "lsdt_quoted")
    assert config.model_spec.flavor == f"lsdt-{name}" and config.hf_assets_path == f"./assets/hf/{name}"


@pytest.mark.parametrize("change, reason", [
    ({"n_experts": 8, "experts_per_token": 2}, r"8-expert MoE layers \(torchtitan 0.3.0's llama3 family is dense\)"),
    ({"window_pattern": "SSSL"}, r"sliding-window layers \(window_pattern 'SSSL'"),
    ({"head_dim": 64}, r"head_dim 64 x 32 heads != d_model 4096"),
    ({"ffn": "relu2"}, r"relu2 FFN \(torchtitan 0.3.0's llama3 family has SwiGLU only\)"),
])
def test_a_llama_shape_with_a_feature_the_llama3_family_lacks_is_refused_naming_it(change, reason):
    model = load_model("llama-7b").with_(**change)
    with pytest.raises(UserError, match=reason):
        export.torchtitan_config(model, layouts_for(model)["dp-only"], 512, 10)


@pytest.mark.parametrize("name", ["llama3-8b", "llama-13b"])
@pytest.mark.parametrize("label", ["dp-only", "tp-pp", "zero2-full-recompute", "zero3-selective", "cp2", "uneven", "interleave", "offload"])
def test_exported_config_loads_and_describes_the_layout(tmp_path, monkeypatch, label, name):
    model = load_model(name)
    layout = layouts_for(model)[label]
    if label == "offload":  # torchtitan offloads weights + optimizer through FSDP; activations it cannot
        layout = {**layout, "offload_activations": False, "offload_weights": True}
    config = _load(tmp_path, monkeypatch, export.torchtitan_config(model, layout, 512, 100), f"lsdt_tt_{name.replace('-', '_')}_{label.replace('-', '_')}")
    assert isinstance(config, Trainer.Config)
    par, train = config.parallelism, config.training
    dims = ParallelDims.from_config(par, layout["gpus"])  # torchtitan's check: degrees multiply to the world
    assert (dims.tp, dims.pp, dims.cp, dims.dp_replicate * dims.dp_shard) == (layout["tp"], layout["pp"], layout.get("cp", 1), layout["dp"])
    zero = layout["zero"]
    assert (dims.dp_shard > 1) == (zero >= 1)
    if zero:
        assert par.fsdp_reshard_after_forward == ("always" if zero == 3 else "never")
    assert type(config.activation_checkpoint) is {"full": FullAC.Config, "selective": SelectiveAC.Config, "none": type(None)}[layout["recompute"]]
    assert train.global_batch_size == 512 and train.seq_len == model.seq_len and train.steps == 100
    assert train.global_batch_size % (train.local_batch_size * layout["dp"]) == 0  # torchtitan's gradient accumulation
    assert train.enable_cpu_offload == (label == "offload")
    if layout["pp"] > 1:
        parts = par.module_fqns_per_model_part
        v = layout["interleave"]
        assert len(parts) == layout["pp"] * v
        flat = [m for part in parts for m in part]
        assert flat == ["tok_embeddings", *(f"layers.{i}" for i in range(model.n_layer)), "norm", "lm_head"]
        layers_per_rank = [sum(sum(m.startswith("layers.") for m in parts[s]) for s in range(r, len(parts), layout["pp"])) for r in range(layout["pp"])]
        if layout.get("first_stage_layers"):
            assert (layers_per_rank[0], layers_per_rank[-1]) == (layout["first_stage_layers"], layout["last_stage_layers"])
        else:
            assert set(layers_per_rank) == {model.n_layer // layout["pp"]}
        assert par.pipeline_parallel_schedule == ("Interleaved1F1B" if v > 1 else "1F1B")
        schedule = get_schedule_class(par.pipeline_parallel_schedule)  # torchtitan: one stage per rank iff single-stage
        assert issubclass(schedule, PipelineScheduleSingle) == (v == 1)
        assert train.local_batch_size % par.pipeline_parallel_microbatch_size == 0  # Trainer.Config's check
        assert par.pipeline_parallel_microbatch_size == layout["micro_batch"]
    else:
        assert train.local_batch_size == layout["micro_batch"]


@pytest.mark.parametrize("label", ["dp-only", "tp-pp", "zero2-full-recompute", "cp2", "uneven", "ep"])
def test_deepseek_v3_exports_into_torchtitans_deepseek_v3_family(tmp_path, monkeypatch, label):
    """MLA, shared experts and dense-first layers are the registry's 671B model (its count is checked
    above); the layout lands in torchtitan's own ParallelDims, EP included."""
    model = load_model("deepseek-v3")
    layout = layouts_for(model)[label]
    config = _load(tmp_path, monkeypatch, export.torchtitan_config(model, layout, 512, 10), f"lsdt_ds_{label.replace('-', '_')}")
    assert config.model_spec.name == "deepseek_v3" and config.model_spec.flavor == "671B"
    dims = ParallelDims.from_config(config.parallelism, layout["gpus"])
    assert (dims.tp, dims.pp, dims.cp, dims.ep, dims.dp_replicate * dims.dp_shard) == (
        layout["tp"], layout["pp"], layout.get("cp", 1), layout.get("ep", 1), layout["dp"])
    if layout["pp"] > 1:
        parts = config.parallelism.module_fqns_per_model_part
        assert [m for part in parts for m in part] == ["tok_embeddings", *(f"layers.{i}" for i in range(61)), "norm", "lm_head"]
        assert sum(m.startswith("layers.") for m in parts[0]) == layout.get("first_stage_layers", 61 // layout["pp"])


def test_end_stages_lighter_than_the_interleave_split_module_by_module_or_are_refused(tmp_path, monkeypatch):
    """torchtitan takes any per-stage module lists: a first rank of 3 layers over 2 virtual stages
    holds 2 + 1; a stage left with no module (1 layer over 4 stages) is refused, as torchtitan's
    optimizer refuses a model part with no parameters (components/optimizer/optimizer.py)."""
    model = load_model("deepseek-v3")
    layout = {"gpus": 128, "dp": 8, "tp": 4, "pp": 4, "interleave": 2, "first_stage_layers": 3, "last_stage_layers": 2,
              "micro_batch": 1, "recompute": "full", "zero": 1, "sequence_parallel": True, "ep": 8}
    config = _load(tmp_path, monkeypatch, export.torchtitan_config(model, layout, 512, 10), "lsdt_ds_uneven_v2")
    layers = [sum(m.startswith("layers.") for m in part) for part in config.parallelism.module_fqns_per_model_part]
    assert layers == [2, 14, 14, 1, 1, 14, 14, 1] and sum(layers) == 61
    planned = {**layout, "gpus": 2048, "dp": 32, "pp": 16, "interleave": 4, "first_stage_layers": None, "last_stage_layers": 1, "ep": 2}
    with pytest.raises(UserError, match=r"stage 15 \(rank 15\) without a layer.*--pipeline-model-parallel-layout"):
        export.torchtitan_config(model, planned, 1024, 10)


def test_deepseek_v3_with_mtp_trains_torchtitans_mtp_modules(tmp_path, monkeypatch):
    from torchtitan.models.deepseek_v3.mtp import MTPLoss

    model = load_model("deepseek-v3").with_(mtp_layers=1)
    layout = {**layouts_for(model)["zero3-selective"], "recompute": "full"}
    config = _load(tmp_path, monkeypatch, export.torchtitan_config(model, layout, 512, 10), "lsdt_ds_mtp")
    assert len(config.model_spec.model.mtp_layers) == 1 and isinstance(config.loss, MTPLoss.Config)
    with pytest.raises(UserError, match="MTP.*PP 4"):  # torchtitan's MTPDecoder: no pipeline parallelism yet
        export.torchtitan_config(model, layouts_for(model)["tp-pp"], 512, 10)


def test_an_mla_models_selective_recompute_is_refused_not_translated_to_a_different_one():
    """The plan's selective recompute of an MLA model is DeepSeek-V3's recipe (what the memory model
    counted, and Megatron's --recompute-modules); torchtitan's SelectiveAC saves other tensors."""
    model = load_model("deepseek-v3")
    with pytest.raises(UserError, match="DeepSeek-V3's recipe.*recompute none or full"):
        export.torchtitan_config(model, layouts_for(model)["zero3-selective"], 512, 10)


def test_torchtitans_own_checks_refuse_a_broken_export(tmp_path, monkeypatch):
    """The loader is not a rubber stamp: a pipeline micro-batch that does not divide the local
    batch is refused by Trainer.Config's own check when the exported function runs."""
    model = load_model("llama3-8b")
    text = export.torchtitan_config(model, layouts_for(model)["tp-pp"], 512, 10)
    text = text.replace("pipeline_parallel_microbatch_size=1", "pipeline_parallel_microbatch_size=3")
    with pytest.raises(ValueError, match="evenly divisible"):
        _load(tmp_path, monkeypatch, text, "lsdt_tt_broken")


def test_refuses_what_torchtitan_cannot_run():
    lay = layouts_for(load_model("llama3-8b"))["dp-only"]
    with pytest.raises(UserError, match=r"gelu FFN \(torchtitan 0.3.0's llama3 family has SwiGLU only\)"):
        export.torchtitan_config(load_model("gpt3-175b"), lay, 512, 10)
    with pytest.raises(UserError, match="no experts"):
        export.torchtitan_config(load_model("llama3-8b"), {**lay, "ep": 2}, 512, 10)
    with pytest.raises(UserError, match="no activation offload"):
        export.torchtitan_config(load_model("llama3-8b"), {**lay, "zero": 1, "offload_activations": True}, 512, 10)
    with pytest.raises(UserError, match="ZeRO >= 1"):
        export.torchtitan_config(load_model("llama3-8b"), {**lay, "offload_optimizer": True}, 512, 10)
    with pytest.raises(UserError, match="two-phase MoE"):
        export.torchtitan_config(load_model("s7-moe-140m"), lay, 512, 10)
    with pytest.raises(UserError, match=r"sets d_ff = 4096, and torchtitan's 671B registry model has 2048"):
        export.torchtitan_config(load_model("deepseek-v3").with_(d_ff=4096), lay, 512, 10)
    with pytest.raises(UserError, match="32,768 tokens exceed the 16,384 positions"):
        export.torchtitan_config(load_model("deepseek-v3").with_(seq_len=32_768), lay, 512, 10)
    with pytest.raises(UserError, match="draws EP 8 from the FSDP x CP x TP ranks"):  # ZeRO 0: no FSDP ranks to draw on
        export.torchtitan_config(load_model("deepseek-v3"), {**lay, "ep": 8}, 512, 10)
