"""`lsdt export --to megatron`: for every shipped profile and a set of layouts, the flags parse with
Megatron-LM core_v0.19.0's definitions (engine/sizing/megatron_args.py), pass its rules, and
rebuild LSDT's parameter count when Megatron's model is counted from them."""

from __future__ import annotations

import argparse

import pytest

from engine.errors import UserError
from engine.sizing import export
from engine.sizing import megatron_args as mg
from engine.sizing.counts import param_counts
from engine.specs import builtin_names, load_model
from tests.sizing.export_layouts import layouts_for

# GPTModel(...).parameters() of Megatron-LM core_v0.19.0, built on the meta device from each
# profile's exported flags at TP = PP = 1 (benchmarks/megatron_check.py, run against a checkout of the
# tag). Each is LSDT's count plus Megatron's RMSNorm gains, (2 n_layer + 1) x d_model.
MEGATRON_BUILT_COUNTS = {
    "gpt2-124m": 123_551_232, "gpt2-350m": 353_503_232, "gpt2-774m": 772_211_200, "gpt2-1558m": 1_555_126_400,
    "gpt3-175b": 175_206_838_272, "llama-7b": 6_738_415_616, "llama-13b": 13_015_864_320,
    "llama3-8b": 8_030_261_248, "llama3-70b": 70_553_706_496, "llama3-405b": 405_853_388_800,
    "nanochat-d12": 185_617_152, "nanochat-d14": 252_339_584, "nanochat-d16": 335_578_112,
    "nanochat-d18": 437_692_032, "nanochat-d20": 561_040_640, "nanochat-d22": 707_983_232,
    "nanochat-d24": 880_879_104, "nanochat-d26": 1_082_087_552,
}
# MLA models (deepseek-v3) are refused by name, not exported: the mapping of MLA and MTP to Megatron's
# --multi-latent-attention flags is not written yet (test_mla_models_are_refused_by_name).
MLA_PROFILES = [n for n in builtin_names("models") if load_model(n).kv_lora_rank]
DENSE_PROFILES = [n for n in builtin_names("models") if not load_model(n).trunk_layers and n not in MLA_PROFILES]


@pytest.mark.parametrize("name", MLA_PROFILES)
def test_mla_models_are_refused_by_name(name):
    layout = dict(gpus=8, dp=8, tp=1, pp=1, micro_batch=1, recompute="none", zero=1, interleave=1, sequence_parallel=False)
    with pytest.raises(UserError, match=r"sets (q_lora_rank|kv_lora_rank) = \d+, which this export does not translate"):
        export.megatron_args(load_model(name), layout, 512, 10)


def megatron_param_count(ns: argparse.Namespace) -> int:
    """Parameters of the GPTModel Megatron-LM builds from these flags (its local layer spec):
    norms carry a gain (and a bias under LayerNorm), linears a bias unless --disable-bias-linear,
    learned positions a table, and the vocabulary is padded (build_tokenizer.py)."""
    h, L, heads = ns.hidden_size, ns.num_layers, ns.num_attention_heads
    kv = ns.kv_channels or h // heads
    groups = ns.num_query_groups if ns.group_query_attention else heads
    vocab = mg.padded_vocab_size(ns.vocab_size, ns.make_vocab_size_divisible_by, ns.tensor_model_parallel_size)
    bias = ns.add_bias_linear
    norm = h * (2 if ns.normalization == "LayerNorm" else 1)
    qkv_width = kv * (heads + 2 * groups)
    attention = h * qkv_width + heads * kv * h + (qkv_width + h if bias else 0)
    gated = 2 if ns.swiglu else 1

    def mlp(ffn: int) -> int:
        return h * ffn * gated + ffn * h + (ffn * gated + h if bias else 0)

    if ns.num_experts:
        mlp_layer = ns.num_experts * mlp(ns.moe_ffn_hidden_size) + ns.num_experts * h  # experts + router
    else:
        mlp_layer = mlp(ns.ffn_hidden_size)
    positions = ns.max_position_embeddings * h if ns.position_embedding_type == "learned_absolute" else 0
    output = vocab * h if ns.untie_embeddings_and_output_weights else 0
    return vocab * h + positions + L * (2 * norm + attention + mlp_layer) + norm + output


def _parse(flags: list[str]) -> argparse.Namespace:
    return mg.parse(flags)


@pytest.mark.parametrize("name", DENSE_PROFILES)
def test_every_profile_and_layout_passes_megatrons_rules_and_rebuilds_lsdts_count(name):
    model = load_model(name)
    lsdt = param_counts(model).total
    norms = (2 * model.n_layer + 1) * model.d_model
    for label, layout in layouts_for(model).items():
        ns = _parse(export.megatron_args(model, layout, 512, 100))
        assert mg.rule_violations(ns, layout["gpus"]) == [], (name, label)
        padded = mg.padded_vocab_size(ns.vocab_size, ns.make_vocab_size_divisible_by, ns.tensor_model_parallel_size)
        pad_rows = (padded - model.vocab_size) * model.d_model * (1 if model.tie_embeddings else 2)
        assert megatron_param_count(ns) == lsdt + norms + pad_rows, (name, label)
        assert pad_rows == 0 or model.vocab_size % layout["tp"], (name, label)  # padding only where TP forces it
        if layout["tp"] == 1:  # the rebuild is Megatron's own count of the model these flags build
            assert megatron_param_count(ns) == MEGATRON_BUILT_COUNTS[name], name


def test_llama3_8b_is_the_llama_architecture_not_gpt2():
    ns = _parse(export.megatron_args(load_model("llama3-8b"), layouts_for(load_model("llama3-8b"))["tp-pp"], 512, 10))
    assert ns.position_embedding_type == "rope" and ns.rotary_base == 500_000
    assert ns.normalization == "RMSNorm" and ns.add_bias_linear is False and ns.swiglu
    assert ns.vocab_size == 128_256 and ns.tokenizer_type == "NullTokenizer"
    assert ns.group_query_attention and ns.num_query_groups == 8 and ns.kv_channels == 128
    assert ns.untie_embeddings_and_output_weights and ns.hidden_dropout == ns.attention_dropout == 0
    assert _parse(export.megatron_args(load_model("gpt2-124m"), layouts_for(load_model("gpt2-124m"))["dp-only"], 512, 10)).rotary_base == 10_000


def test_layout_dimensions_map_to_megatrons_flags():
    model = load_model("llama3-70b")
    lays = layouts_for(model)
    z = {k: _parse(export.megatron_args(model, lays[k], 512, 10)) for k in ("dp-only", "tp-pp", "zero2-full-recompute", "zero3-selective")}
    assert not z["dp-only"].use_distributed_optimizer and not z["dp-only"].use_megatron_fsdp  # ZeRO 0: DDP
    assert z["tp-pp"].use_distributed_optimizer and not z["tp-pp"].use_megatron_fsdp  # ZeRO 1
    assert z["tp-pp"].sequence_parallel and z["tp-pp"].pipeline_model_parallel_size == 4
    assert z["zero2-full-recompute"].data_parallel_sharding_strategy == "optim_grads" and z["zero2-full-recompute"].use_megatron_fsdp
    assert (z["zero2-full-recompute"].recompute_granularity, z["zero2-full-recompute"].recompute_method) == ("full", "uniform")
    assert z["zero3-selective"].data_parallel_sharding_strategy == "optim_grads_params" and z["zero3-selective"].ckpt_format == "fsdp_dtensor"
    assert z["zero3-selective"].recompute_granularity == "selective" and z["zero3-selective"].recompute_method is None
    v = _parse(export.megatron_args(model, lays["interleave"], 512, 10))
    assert v.num_virtual_stages_per_pipeline_rank == 2
    cp = _parse(export.megatron_args(model, lays["cp2"], 512, 10))
    assert cp.context_parallel_size == 2
    un = _parse(export.megatron_args(model, lays["uneven"], 512, 10))
    assert (un.decoder_first_pipeline_num_layers, un.decoder_last_pipeline_num_layers) == (39, 41)
    off = _parse(export.megatron_args(model, lays["offload"], 512, 10))
    assert off.optimizer_cpu_offload and off.use_precision_aware_optimizer and off.fine_grained_activation_offloading
    assert "core_attn" in off.offload_modules and "expert_fc1" not in off.offload_modules
    # uneven stages with interleaving: each rank's layers divide into the virtual stages
    both = _parse(export.megatron_args(model, {**lays["uneven"], "pp": 4, "dp": 2, "interleave": 2,
                                               "first_stage_layers": 18, "last_stage_layers": 18}, 512, 10))
    assert mg.rule_violations(both, lays["uneven"]["gpus"]) == [] and both.num_virtual_stages_per_pipeline_rank == 2
    # the planned global batch wins over the goal's when the flexible batch rounded it
    assert _parse(export.megatron_args(model, {**lays["dp-only"], "global_batch_used": 448}, 512, 10)).global_batch_size == 448


def test_mixtral_style_moe_with_expert_parallelism():
    model = load_model("llama3-8b").with_(name="moe-8x", n_experts=8, experts_per_token=2)
    layout = {**layouts_for(model)["tp-pp"], "ep": 4}
    ns = _parse(export.megatron_args(model, layout, 512, 10))
    assert (ns.num_experts, ns.moe_router_topk, ns.moe_ffn_hidden_size, ns.expert_model_parallel_size) == (8, 2, 14336, 4)
    assert mg.rule_violations(ns, layout["gpus"]) == []
    assert megatron_param_count(ns) == param_counts(model).total + (2 * model.n_layer + 1) * model.d_model
    top1 = _parse(export.megatron_args(model.with_(experts_per_token=1), layout, 512, 10))
    assert top1.moe_router_pre_softmax and mg.rule_violations(top1, layout["gpus"]) == []
    with pytest.raises(UserError, match="expert parallel size 3"):  # 8 experts do not split over 3 ranks
        export.megatron_args(model, {**layout, "ep": 3}, 512, 10)


def test_refuses_what_megatron_cannot_build():
    lay = layouts_for(load_model("gpt2-124m"))["dp-only"]
    with pytest.raises(UserError, match="two-phase MoE"):
        export.megatron_args(load_model("s7-moe-140m"), lay, 512, 10)
    with pytest.raises(UserError, match="weight offload"):
        export.megatron_args(load_model("gpt2-124m"), {**lay, "offload_weights": True}, 512, 10)
    with pytest.raises(UserError, match="window pattern"):
        export.megatron_args(load_model("nanochat-d12").with_(window_pattern="SSSL"), lay, 512, 10)
    with pytest.raises(UserError, match="do not split"):
        export.megatron_args(load_model("gpt2-124m"), {**lay, "dp": 16, "pp": 4, "first_stage_layers": 5}, 512, 10)
    with pytest.raises(UserError, match="would refuse.*global batch"):
        export.megatron_args(load_model("gpt2-124m"), lay, 100, 10)


def test_the_recorded_rules_catch_broken_flags():
    model = load_model("llama3-8b")
    layout = layouts_for(model)["interleave"]
    good, world = export.megatron_args(model, layout, 512, 10), layout["gpus"]
    assert mg.rule_violations(_parse(good), world) == []

    def broken(*changes: str, world: int = world) -> list[str]:
        flags = list(good)
        for change in changes:
            flag, value = change.split("=")
            flags[flags.index(flag) + 1] = value
        return mg.rule_violations(_parse(flags), world)

    assert "world size" in broken(world=world - 2)[0]
    assert any("global batch" in m for m in broken("--global-batch-size=500"))
    assert any("virtual stages" in m for m in broken("--num-virtual-stages-per-pipeline-rank=3"))
    assert any("query groups" in m for m in broken("--num-query-groups=3"))
    assert any("fsdp_dtensor" in m for m in mg.rule_violations(_parse(good + ["--use-megatron-fsdp"]), world))
    assert any("precision-aware" in m for m in mg.rule_violations(_parse(good + ["--optimizer-cpu-offload"]), world))
    with pytest.raises(argparse.ArgumentError):  # a flag the release does not define
        _parse(good + ["--use-flash-attn-v9"])
    with pytest.raises(argparse.ArgumentError):  # a choice it does not accept
        _parse(good + ["--normalization", "ScaleNorm"])


def test_the_record_names_its_release():
    assert mg.RELEASE == "core_v0.19.0" and len(mg.COMMIT) == 40
    assert mg.ARGUMENTS["--disable-bias-linear"].dest == "add_bias_linear" and mg.ARGUMENTS["--rotary-base"].type == "int"


def test_precision_sets_the_gradient_bytes_the_plan_counted():
    """memory.py GRAD_BYTES: "bf16" plans 2-byte gradients, "bf16-fp32grad" 4-byte (Megatron's default)."""
    model, layout = load_model("llama3-8b"), layouts_for(load_model("llama3-8b"))["tp-pp"]
    assert _parse(export.megatron_args(model, layout, 512, 10)).grad_reduce_in_bf16
    assert not _parse(export.megatron_args(model, layout, 512, 10, "bf16-fp32grad")).grad_reduce_in_bf16
    fp8 = _parse(export.megatron_args(model, layout, 512, 10, "fp8"))
    assert fp8.fp8 == "hybrid" and fp8.grad_reduce_in_bf16
    with pytest.raises(UserError, match="FP8"):
        export.torchtitan_config(model, layout, 512, 10, "fp8")


def test_a_model_field_the_export_does_not_translate_is_refused_by_name(monkeypatch):
    """A newer architecture key (say multi-head latent attention) must not export as a plain model."""
    model = load_model("llama3-8b")
    monkeypatch.setattr(type(model), "to_dict", lambda self: {**vars(self), "kv_lora_rank": 512})
    with pytest.raises(UserError, match="kv_lora_rank = 512"):
        export.megatron_args(model, layouts_for(model)["dp-only"], 512, 10)
