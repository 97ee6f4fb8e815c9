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

# The parameters of the model Megatron-LM core_v0.19.0 builds from each profile's exported flags at
# TP = PP = 1, on the meta device with the release's own builder (gpt_builders.gpt_builder, as
# pretrain_gpt.py builds it; benchmarks/megatron_check.py, run against a checkout of the tag). Each
# is LSDT's count plus the norm gains Megatron carries and LSDT's norms do not (megatron_norm_gains).
MEGATRON_BUILT_COUNTS = {
    "gpt2-124m": 123_551_232, "gpt2-350m": 353_503_232, "gpt2-774m": 772_211_200, "gpt2-1558m": 1_555_126_400,
    "gpt3-175b": 175_206_838_272, "llama-7b": 6_738_415_616, "llama-13b": 13_015_864_320,
    "llama3-8b": 8_030_261_248, "llama3-70b": 70_553_706_496, "llama3-405b": 405_853_388_800,
    "nanochat-d12": 185_617_152, "nanochat-d14": 252_339_584, "nanochat-d16": 335_578_112,
    "nanochat-d18": 437_692_032, "nanochat-d20": 561_040_640, "nanochat-d22": 707_983_232,
    "nanochat-d24": 880_879_104, "nanochat-d26": 1_082_087_552,
    "deepseek-v3": 671_026_404_352, "deepseek-v3+mtp1": 682_636_472_320,
}
# Every shipped profile Megatron builds: dense, and DeepSeek-V3 (MLA, shared experts, dense-first
# layers); the two-phase S7 MoE is refused (test_refuses_what_megatron_cannot_build).
EXPORTED_PROFILES = [n for n in builtin_names("models") if not load_model(n).trunk_layers]


def _model(name: str):
    """A shipped profile, or "deepseek-v3+mtp1": DeepSeek-V3 with its one MTP module trained."""
    return load_model("deepseek-v3").with_(mtp_layers=1) if name == "deepseek-v3+mtp1" else load_model(name)


def megatron_norm_gains(model) -> int:
    """RMSNorm gains Megatron builds and LSDT does not count: two per block and a final one; MLA's
    latent norms (--qk-layernorm: q_lora_rank + kv_lora_rank per attention); per MTP module its
    enorm, hnorm and final norm and its block's."""
    h = model.d_model
    latent = model.q_lora_rank + model.kv_lora_rank if model.is_mla else 0
    return (2 * model.n_layer + 1) * h + model.n_layer * latent + model.mtp_layers * (5 * h + latent)


def megatron_param_count(ns: argparse.Namespace) -> int:
    """Parameters of the GPTModel Megatron-LM builds from these flags (its local layer spec):
    norms carry a gain (and a bias under LayerNorm), linears a bias unless --disable-bias-linear,
    learned positions a table, and the vocabulary is padded (build_tokenizer.py). Dense or MoE per
    layer as --moe-layer-freq says; MLA attention; MTP modules repeat the last layer's kind."""
    h, L = ns.hidden_size, ns.num_layers
    vocab = mg.padded_vocab_size(ns.vocab_size, ns.make_vocab_size_divisible_by, ns.tensor_model_parallel_size)
    bias = ns.add_bias_linear
    norm = h * (2 if ns.normalization == "LayerNorm" else 1)
    attention = _mla_params(ns) if ns.multi_latent_attention else _attention_params(ns)
    gated = 2 if ns.swiglu else 1

    def mlp(ffn: int) -> int:
        return h * ffn * gated + ffn * h + (ffn * gated + h if bias else 0)

    def layer(moe: int) -> int:
        if not moe:
            return 2 * norm + attention + mlp(ns.ffn_hidden_size)
        shared = mlp(ns.moe_shared_expert_intermediate_size) if ns.moe_shared_expert_intermediate_size else 0
        return 2 * norm + attention + ns.num_experts * (mlp(ns.moe_ffn_hidden_size) + h) + shared  # experts + router rows

    pattern = mg.moe_layer_pattern(ns.moe_layer_freq, L) if ns.num_experts else [0] * L
    mtp = (ns.mtp_num_layers or 0) * (3 * norm + 2 * h * h + layer(pattern[-1]))  # enorm, hnorm, final norm, eh_proj
    positions = ns.max_position_embeddings * h if ns.position_embedding_type == "learned_absolute" else 0
    output = vocab * h if ns.untie_embeddings_and_output_weights else 0
    return vocab * h + positions + sum(layer(m) for m in pattern) + norm + output + mtp


def _attention_params(ns: argparse.Namespace) -> int:
    h, heads = ns.hidden_size, ns.num_attention_heads
    kv = ns.kv_channels or h // heads
    groups = ns.num_query_groups if ns.group_query_attention else heads
    qkv_width = kv * (heads + 2 * groups)
    return h * qkv_width + heads * kv * h + (qkv_width + h if ns.add_bias_linear else 0)


def _mla_params(ns: argparse.Namespace) -> int:
    """MultiLatentAttention (bias-free): q down/up (or one q projection without --q-lora-rank), kv
    down to the latent plus the shared RoPE key, kv up, the output; latent norms with --qk-layernorm."""
    h, heads, q_head = ns.hidden_size, ns.num_attention_heads, ns.qk_head_dim + ns.qk_pos_emb_head_dim
    rank_q, rank_kv = ns.q_lora_rank, ns.kv_lora_rank
    q = h * heads * q_head if rank_q is None else h * rank_q + rank_q * heads * q_head + (rank_q if ns.qk_layernorm else 0)
    kv = h * (rank_kv + ns.qk_pos_emb_head_dim) + rank_kv * heads * (ns.qk_head_dim + ns.v_head_dim) + (rank_kv if ns.qk_layernorm else 0)
    return q + kv + heads * ns.v_head_dim * h


def _parse(flags: list[str]) -> argparse.Namespace:
    return mg.parse(flags)


@pytest.mark.parametrize("name", EXPORTED_PROFILES + ["deepseek-v3+mtp1"])
def test_every_profile_and_layout_passes_megatrons_rules_and_rebuilds_lsdts_count(name):
    model = _model(name)
    lsdt = param_counts(model).total
    for label, layout in layouts_for(model).items():
        ns = _parse(export.megatron_args(model, layout, 512, 100))
        assert mg.rule_violations(ns, layout["gpus"]) == [], (name, label)
        padded = mg.padded_vocab_size(ns.vocab_size, ns.make_vocab_size_divisible_by, ns.tensor_model_parallel_size)
        pad_rows = (padded - model.vocab_size) * model.d_model * (1 if model.tie_embeddings else 2)
        assert megatron_param_count(ns) == lsdt + megatron_norm_gains(model) + pad_rows, (name, label)
        assert pad_rows == 0 or model.vocab_size % layout["tp"], (name, label)  # padding only where TP forces it
        if layout["tp"] == 1:  # the rebuild is Megatron's own count of the model these flags build
            assert megatron_param_count(ns) == MEGATRON_BUILT_COUNTS[name], name


def test_deepseek_v3_exports_mla_shared_experts_dense_first_layers_and_mtp():
    """Each DeepSeek-V3 field in Megatron's words (profiles/models/deepseek-v3.toml; NVIDIA's own
    examples/megatron_fsdp/sbatch_mfsdp_deepseek_v3.sh at the tag sets the same shape flags)."""
    model = load_model("deepseek-v3")
    layout = layouts_for(model)["ep"]
    ns = _parse(export.megatron_args(model.with_(mtp_layers=1), layout, 512, 10))
    assert ns.multi_latent_attention and ns.qk_layernorm and not ns.group_query_attention
    assert (ns.q_lora_rank, ns.kv_lora_rank, ns.qk_head_dim, ns.qk_pos_emb_head_dim, ns.v_head_dim) == (1536, 512, 128, 64, 128)
    assert (ns.rope_type, ns.apply_rope_fusion, ns.rotary_base) == ("rope", False, 10_000)
    assert (ns.num_experts, ns.moe_router_topk, ns.moe_ffn_hidden_size, ns.moe_shared_expert_intermediate_size) == (256, 8, 2048, 2048)
    assert ns.ffn_hidden_size == 18432 and ns.moe_layer_freq == [0] * 3 + [1] * 58 and ns.mtp_num_layers == 1
    assert (ns.expert_model_parallel_size, ns.decoder_first_pipeline_num_layers, ns.decoder_last_pipeline_num_layers) == (8, 16, 15)
    assert mg.rule_violations(ns, layout["gpus"]) == []
    assert "--mtp-num-layers" not in export.megatron_args(model, layout, 512, 10)  # the profile leaves MTP out
    no_q_latent = _parse(export.megatron_args(model.with_(q_lora_rank=0), layout, 512, 10))
    assert no_q_latent.q_lora_rank is None  # a plain q projection, as DeepSeek-V2-Lite
    assert megatron_param_count(no_q_latent) == param_counts(model.with_(q_lora_rank=0)).total + megatron_norm_gains(model.with_(q_lora_rank=0))


# The top refined layout of `lsdt plan --model deepseek-v3 --hardware h100-sxm --G 2048` (14.8T tokens):
# 32 x 4 x 16 x 1 x 2, v4, last stage 1 layer; the middle ranks hold 4 layers, one per virtual stage.
DEEPSEEK_PLANNED = {"gpus": 2048, "dp": 32, "tp": 4, "pp": 16, "ep": 2, "interleave": 4, "last_stage_layers": 1,
                    "micro_batch": 1, "recompute": "none", "zero": 1, "sequence_parallel": True}


@pytest.mark.parametrize("mtp", [0, 1])
def test_an_end_stage_lighter_than_the_interleave_exports_as_megatrons_layout_string(mtp):
    """--decoder-last-pipeline-num-layers 1 with 4 virtual stages is refused by TransformerConfig (each
    rank's layers divisible by VPP); the release's --pipeline-model-parallel-layout places every
    virtual stage, empty ones included, and the MTP module beside the loss."""
    model = load_model("deepseek-v3").with_(mtp_layers=mtp)
    flags = export.megatron_args(model, DEEPSEEK_PLANNED, 1024, 10)
    ns = _parse(flags)
    assert mg.rule_violations(ns, 2048) == []
    assert ns.num_virtual_stages_per_pipeline_rank is None and ns.decoder_last_pipeline_num_layers is None
    stages = mg.pipeline_layout_stages(ns.pipeline_model_parallel_layout)
    assert len(stages) == 64 and stages[0] == "Et" and stages[-1] == "t" + "m" * mtp + "L"
    last_rank = [stages[s] for s in range(15, 64, 16)]
    assert last_rank == ["", "", "", "t" + "m" * mtp + "L"]  # rank 15: its one layer, with the head
    assert all(stages[s].count("t") == 1 for s in range(64) if s % 16 != 15)
    broken = list(flags)
    at = broken.index("--pipeline-model-parallel-layout") + 1
    broken[at] = broken[at].replace("tL", "ttL").replace("tmL", "ttmL")
    assert any("decoder layers" in m for m in mg.rule_violations(_parse(broken), 2048))
    assert any("VPP" in m or "virtual" in m for m in mg.rule_violations(_parse(broken + ["--num-virtual-stages-per-pipeline-rank", "4"]), 2048))


def test_the_recorded_deepseek_rules_catch_broken_flags():
    model = load_model("deepseek-v3")
    layout = layouts_for(model)["dp-only"]
    good = export.megatron_args(model, layout, 512, 10)

    def violations(*extra: str, drop: str = "") -> list[str]:
        flags = [f for f in good if f != drop] + list(extra)
        return mg.rule_violations(_parse(flags), layout["gpus"])

    assert any("--no-rope-fusion" in m for m in violations(drop="--no-rope-fusion"))
    assert any("mutually exclusive" in m for m in violations("--group-query-attention"))
    assert any("--moe-layer-freq" in m for m in violations("--moe-layer-freq", "[0]*3+[1]*57"))
    assert any("--moe-layer-freq" in m for m in violations("--moe-layer-freq", "[0]*3+[2]*58"))
    assert any("> 0" in m for m in violations("--moe-shared-expert-intermediate-size", "0"))
    assert violations("--moe-layer-freq", "1") == []  # an int: every layer MoE
    with pytest.raises(argparse.ArgumentError):  # moe_freq_type refuses what is not a list expression
        _parse(good + ["--moe-layer-freq", "[0]*3+__import__('os')"])


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
    """A newer architecture key (say attention sinks) must not export as a plain model."""
    model = load_model("llama3-8b")
    monkeypatch.setattr(type(model), "to_dict", lambda self: {**vars(self), "attention_sink_tokens": 4})
    with pytest.raises(UserError, match="attention_sink_tokens = 4"):
        export.megatron_args(model, layouts_for(model)["dp-only"], 512, 10)


def test_mla_selective_recompute_is_deepseeks_recipe_the_memory_model_counted():
    """engine/sizing/memory.py counts an MLA model's selective recompute as DeepSeek-V3's (norms, MLA
    up-projections, the experts' SwiGLU output), not Megatron's core_attn default: the export says so."""
    model = load_model("deepseek-v3")
    layout = layouts_for(model)["zero3-selective"]
    ns = _parse(export.megatron_args(model, layout, 512, 10))
    assert ns.recompute_granularity == "selective" and ns.recompute_modules == ["layernorm", "mla_up_proj", "moe_act"]
    assert ns.moe_grouped_gemm and mg.rule_violations(ns, layout["gpus"]) == []
    dense = load_model("llama3-8b")
    plain = _parse(export.megatron_args(dense, layouts_for(dense)["zero3-selective"], 512, 10))
    assert plain.recompute_modules is None  # Megatron's default, core_attn: selective recompute as Korthikanti et al.
    broken = _parse([f for f in export.megatron_args(model, layout, 512, 10) if f != "--moe-grouped-gemm"])
    assert any("moe_act needs --moe-grouped-gemm" in m for m in mg.rule_violations(broken, layout["gpus"]))


@pytest.mark.parametrize("name, eps", [("llama-7b", 1e-6), ("llama-13b", 1e-6), ("deepseek-v3", 1e-6), ("llama3-8b", 1e-5)])
def test_the_rmsnorm_epsilon_is_the_models_own(name, eps):
    """LLaMA 1 and DeepSeek-V3 normalise with eps 1e-6 (their configs); Megatron's default is 1e-5, said only where it differs."""
    model = load_model(name)
    flags = export.megatron_args(model, layouts_for(model)["dp-only"], 512, 10)
    assert _parse(flags).layernorm_epsilon == eps and ("--norm-epsilon" in flags) == (eps != 1e-5)
