"""Megatron-LM core_v0.19.0 pretrain_gpt.py flags for a planned layout (the release: megatron_args.py).

megatron_args runs four named steps, each a list of flags: the model's shape (_model_flags, with
_attention_flags and _moe_flags for MLA and experts), the precision, the parallel layout
(_layout_flags) and the memory options (_memory_flags); then checks the whole against the
release's rules.
"""

from __future__ import annotations

from engine.errors import UserError
from engine.sizing import megatron_args as mg
from engine.sizing.export.layout import global_batch_of, norm_eps, pipeline_chunks, planned_layout, rope_base, uneven_chunks
from engine.sizing.refine import Layout
from engine.specs import ModelSpec

# The ModelSpec fields megatron_args translates. A model setting any other field to a non-default
# value (a newer architecture key) is refused by name rather than exported as a different model.
MEGATRON_MODEL_FIELDS = {"name", "n_layer", "d_model", "n_head", "vocab_size", "seq_len", "n_kv_head", "head_dim", "d_ff",
                         "ffn", "tie_embeddings", "window_pattern", "short_window", "n_experts", "experts_per_token",
                         "trunk_layers", "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
                         "v_head_dim", "n_shared_experts", "dense_layers", "dense_d_ff", "mtp_layers", "source"}

# Megatron's fine-grained activation offloading: the dense-layer modules whose inputs go to the host
# (TransformerConfig's allowed offload_modules, less the MoE-only ones unless the model has experts).
MEGATRON_OFFLOAD_MODULES = ("attn_norm", "qkv_linear", "core_attn", "attn_proj", "mlp_norm")
MEGATRON_MOE_OFFLOAD_MODULES = ("expert_fc1", "moe_act")


def megatron_vocab_divisor(vocab_size: int, tp: int) -> int:
    """--make-vocab-size-divisible-by: the largest of 128, 64, ..., 1 that leaves the vocabulary
    unpadded on this TP (Megatron pads it to a multiple of divisor x TP, which would add rows the
    plan did not count); 1 pads the least when TP does not divide it."""
    return next(d for d in (128, 64, 32, 16, 8, 4, 2, 1) if vocab_size % (d * tp) == 0 or d == 1)


def megatron_args(model: ModelSpec, layout: dict, global_batch: int, train_iters: int, precision: str = "bf16") -> list[str]:
    """Flags for Megatron-LM's pretrain_gpt.py: model shape, precision, parallel layout, memory, batch.

    precision (the plan's Goal.precision): "bf16" keeps bf16 gradients (2 B/param, memory.py
    GRAD_BYTES) -> --grad-reduce-in-bf16; "bf16-fp32grad" is Megatron's default fp32 gradient
    buffer; "fp8" adds --fp8-format hybrid (E4M3 forward, E5M2 backward) to bf16 training."""
    lay = planned_layout(layout)
    _refuse_what_megatron_cannot_build(model, lay)
    args = (_model_flags(model, lay.tp) + _precision_flags(precision)
            + _layout_flags(model, lay, global_batch_of(layout, global_batch), train_iters) + _memory_flags(model, lay))
    bad = mg.rule_violations(mg.parse(args), lay.gpus)
    if bad:
        raise UserError(f"megatron export: Megatron-LM {mg.RELEASE} would refuse this layout: {bad[0]}")
    return args


def _refuse_what_megatron_cannot_build(model: ModelSpec, lay: Layout) -> None:
    fields = model.to_dict()
    unknown = {k: v for k, v in fields.items() if k not in MEGATRON_MODEL_FIELDS and v not in (None, 0, 0.0, False, "")}
    if unknown:
        key, value = next(iter(unknown.items()))
        raise UserError(f"megatron export: model {model.name!r} sets {key} = {value!r}, which this export does not translate "
                        "to Megatron-LM flags; accepted: a model without it (or --to torchrun)")
    if model.trunk_layers:
        raise UserError(
            f"megatron export: model {model.name!r} is a two-phase MoE (experts are stacks of "
            f"{model.n_layer - model.trunk_layers} blocks after a {model.trunk_layers}-block trunk); Megatron-LM "
            "builds per-layer experts only; accepted: a dense or Mixtral-style model (trunk_layers = 0)"
        )
    if set(model.window_pattern) != {"L"}:
        raise UserError(
            f"megatron export: model {model.name!r} has window pattern {model.window_pattern!r}; Megatron-LM's "
            "--window-size applies one window to all layers; accepted: window_pattern L"
        )
    if lay.offload_weights:
        raise UserError(
            f"megatron export: the layout offloads weights, and Megatron-LM {mg.RELEASE} has no command-line "
            "weight offload; accepted: a layout without offload_weights (--layout N), or --to torchtitan"
        )


def _model_flags(model: ModelSpec, tp: int) -> list[str]:
    """The model LSDT counted (engine/sizing/counts.py: bias-free, RMSNorm, RoPE, untied unless the
    profile ties), in Megatron's words."""
    # the dense MLP width: every layer's, or with dense-first MoE layers (DeepSeek) the dense layers'
    dense_ffn = model.dense_d_ff if model.dense_layers else model.d_ff
    args = [
        "--num-layers", str(model.n_layer),
        "--hidden-size", str(model.d_model),
        "--ffn-hidden-size", str(dense_ffn),
        "--num-attention-heads", str(model.n_head),
        *_attention_flags(model),
        "--seq-length", str(model.seq_len),
        "--max-position-embeddings", str(model.seq_len),
        "--position-embedding-type", "rope",
        "--rotary-base", str(rope_base(model)),
        "--normalization", "RMSNorm",
        *(["--norm-epsilon", f"{norm_eps(model):g}"] if norm_eps(model) != mg.ARGUMENTS["--norm-epsilon"].default else []),
        "--disable-bias-linear",
        "--hidden-dropout", "0",
        "--attention-dropout", "0",
        "--tokenizer-type", "NullTokenizer",
        "--vocab-size", str(model.vocab_size),
        "--make-vocab-size-divisible-by", str(megatron_vocab_divisor(model.vocab_size, tp)),
    ]
    if model.ffn == "swiglu":
        args += ["--swiglu"]
    elif model.ffn == "relu2":
        args += ["--squared-relu"]
    if not model.tie_embeddings:
        args += ["--untie-embeddings-and-output-weights"]
    return args + _moe_flags(model)


def _attention_flags(model: ModelSpec) -> list[str]:
    """Grouped-query attention, or multi-head latent attention (DeepSeek-V2 sec. 2.1).

    MLA: q through a q_lora_rank latent (no --q-lora-rank: a plain q projection), k and v through
    kv_lora_rank; per-head widths qk_nope (Megatron's --qk-head-dim) + qk_rope (--qk-pos-emb-head-dim)
    and v. --qk-layernorm builds the RMSNorms on the latents (DeepSeek's q_a_layernorm and
    kv_a_layernorm). Plain RoPE (--rope-type rope; MLA's default is YaRN, which DeepSeek-V3 applied
    only after pre-training, report sec. 4.3) and Megatron's MLA fuses RoPE only under YaRN, hence
    --no-rope-fusion. --kv-channels v_head_dim as the release's own DeepSeek-V3 example sets it
    (examples/megatron_fsdp/sbatch_mfsdp_deepseek_v3.sh); MLA's widths come from its own flags."""
    if not model.is_mla:
        args = ["--kv-channels", str(model.head_dim)]
        if model.n_kv_head < model.n_head:
            args += ["--group-query-attention", "--num-query-groups", str(model.n_kv_head)]
        return args
    args = ["--kv-channels", str(model.v_head_dim), "--multi-latent-attention"]
    if model.q_lora_rank:
        args += ["--q-lora-rank", str(model.q_lora_rank)]
    return args + [
        "--kv-lora-rank", str(model.kv_lora_rank),
        "--qk-head-dim", str(model.qk_nope_head_dim),
        "--qk-pos-emb-head-dim", str(model.qk_rope_head_dim),
        "--v-head-dim", str(model.v_head_dim),
        "--qk-layernorm",
        "--rope-type", "rope",
        "--no-rope-fusion",
    ]


def _moe_flags(model: ModelSpec) -> list[str]:
    """Routed experts of d_ff on every layer (Mixtral), or DeepSeek's: n_shared_experts always-active
    experts (one shared MLP of n_shared x d_ff), the first dense_layers layers dense, MTP modules."""
    if not model.n_experts:
        return []
    args = ["--num-experts", str(model.n_experts), "--moe-router-topk", str(model.experts_per_token),
            "--moe-ffn-hidden-size", str(model.d_ff)]
    if model.experts_per_token == 1:
        args += ["--moe-router-pre-softmax"]
    if model.n_shared_experts:
        args += ["--moe-shared-expert-intermediate-size", str(model.n_shared_experts * model.d_ff)]
    if model.dense_layers:
        args += ["--moe-layer-freq", f"[0]*{model.dense_layers}+[1]*{model.n_layer - model.dense_layers}"]
    if model.mtp_layers:
        args += ["--mtp-num-layers", str(model.mtp_layers)]
    return args


def _precision_flags(precision: str) -> list[str]:
    args = ["--bf16"]
    if precision != "bf16-fp32grad":
        args += ["--grad-reduce-in-bf16"]
    if precision == "fp8":
        args += ["--fp8-format", "hybrid"]
    return args


def _layout_flags(model: ModelSpec, lay: Layout, global_batch: int, train_iters: int) -> list[str]:
    args = [
        "--tensor-model-parallel-size", str(lay.tp),
        "--pipeline-model-parallel-size", str(lay.pp),
        "--micro-batch-size", str(lay.micro_batch),
        "--global-batch-size", str(global_batch),
        "--train-iters", str(train_iters),
    ]
    if lay.cp > 1:
        args += ["--context-parallel-size", str(lay.cp)]
    if lay.ep > 1:
        args += ["--expert-model-parallel-size", str(lay.ep)]
    if lay.sequence_parallel and lay.tp > 1:
        args += ["--sequence-parallel"]
    if lay.pp > 1:
        chunks = pipeline_chunks(model, lay)  # refuses a split no engine can build, with LSDT's words
        if uneven_chunks(lay, chunks):
            return args + ["--pipeline-model-parallel-layout", megatron_pipeline_layout(chunks, model.mtp_layers)]
        if lay.first_stage_layers is not None:
            args += ["--decoder-first-pipeline-num-layers", str(lay.first_stage_layers)]
        if lay.last_stage_layers is not None:
            args += ["--decoder-last-pipeline-num-layers", str(lay.last_stage_layers)]
        if lay.interleave > 1:
            args += ["--num-virtual-stages-per-pipeline-rank", str(lay.interleave)]
    return args


def megatron_pipeline_layout(chunks: list[int], mtp_layers: int = 0) -> str:
    """--pipeline-model-parallel-layout for virtual stages of `chunks` decoder layers: the embedding
    (E) on the first, the MTP layers (m) and the loss (L) on the last, "|" between stages, runs of
    equal stages as "(...|)*n" (the release's own notation, e.g. "Et|(tt|)*29,m|L")."""
    stages = [f"t*{n}" if n > 1 else "t" * n for n in chunks]
    stages[0] = "E" + stages[0]
    stages[-1] += "m" * mtp_layers + "L"
    out, i = [], 0
    while i < len(stages) - 1:  # the last stage is written on its own, with no "|" after it
        run = 1
        while i + run < len(stages) - 1 and stages[i + run] == stages[i]:
            run += 1
        out.append(f"({stages[i]}|)*{run}" if run > 1 else f"{stages[i]}|")
        i += run
    return "".join(out) + stages[-1]


def _memory_flags(model: ModelSpec, lay: Layout) -> list[str]:
    """Recompute, ZeRO (the memory the plan assumed, engine/sizing/memory.py) and offload."""
    args = []
    if lay.recompute == "full":
        args += ["--recompute-granularity", "full", "--recompute-method", "uniform", "--recompute-num-layers", "1"]
    elif lay.recompute == "selective":
        args += ["--recompute-granularity", "selective"]
        if model.is_mla:  # DeepSeek-V3's recipe, as engine/sizing/memory.py counts it (not Megatron's core_attn default)
            args += ["--recompute-modules", "layernorm", "mla_up_proj"]
            if model.n_experts:  # the SwiGLU output of the routed experts; Megatron recomputes it in grouped GEMMs only
                args += ["moe_act", "--moe-grouped-gemm"]
    if lay.zero == 1:
        args += ["--use-distributed-optimizer"]
    elif lay.zero >= 2:
        strategy = "optim_grads" if lay.zero == 2 else "optim_grads_params"
        args += ["--use-megatron-fsdp", "--data-parallel-sharding-strategy", strategy, "--ckpt-format", "fsdp_dtensor"]
    if lay.offload_optimizer:
        args += ["--optimizer-cpu-offload", "--use-precision-aware-optimizer"]
    if lay.offload_activations:
        modules = MEGATRON_OFFLOAD_MODULES + (MEGATRON_MOE_OFFLOAD_MODULES if model.n_experts else ())
        args += ["--fine-grained-activation-offloading", "--offload-modules", *modules]
    return args
