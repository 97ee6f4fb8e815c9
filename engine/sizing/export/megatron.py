"""Megatron-LM core_v0.19.0 pretrain_gpt.py flags for a planned layout (the release: megatron_args.py)."""

from __future__ import annotations

from engine.errors import UserError
from engine.sizing import megatron_args as mg
from engine.sizing.export.layout import Layout, check_world, global_batch_of, pipeline_chunks, rope_base
from engine.specs import ModelSpec

# The ModelSpec fields megatron_args translates. A model setting any other field to a non-default
# value (a newer architecture key) is refused by name rather than exported as a different model.
MEGATRON_MODEL_FIELDS = {"name", "n_layer", "d_model", "n_head", "vocab_size", "seq_len", "n_kv_head", "head_dim", "d_ff",
                         "ffn", "tie_embeddings", "window_pattern", "short_window", "n_experts", "experts_per_token",
                         "trunk_layers", "source"}

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
    """Flags for Megatron-LM's pretrain_gpt.py: model shape, parallel layout, memory options, batch.

    precision (the plan's Goal.precision): "bf16" keeps bf16 gradients (2 B/param, memory.py
    GRAD_BYTES) -> --grad-reduce-in-bf16; "bf16-fp32grad" is Megatron's default fp32 gradient
    buffer; "fp8" adds --fp8-format hybrid (E4M3 forward, E5M2 backward) to bf16 training."""
    lay = Layout.of(layout)
    check_world(lay)
    fields = model.to_dict()
    if fields.get("dense_d_ff") == model.d_ff:  # the dense-first layers' width, defaulted to d_ff: nothing to say
        fields.pop("dense_d_ff")
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
    heads_per_group = model.n_head // model.n_kv_head
    args = [
        # the model (engine/sizing/counts.py: bias-free, RMSNorm, RoPE, untied unless the profile ties)
        "--num-layers", str(model.n_layer),
        "--hidden-size", str(model.d_model),
        "--ffn-hidden-size", str(model.d_ff),
        "--num-attention-heads", str(model.n_head),
        "--kv-channels", str(model.head_dim),
        "--seq-length", str(model.seq_len),
        "--max-position-embeddings", str(model.seq_len),
        "--position-embedding-type", "rope",
        "--rotary-base", str(rope_base(model)),
        "--normalization", "RMSNorm",
        "--disable-bias-linear",
        "--hidden-dropout", "0",
        "--attention-dropout", "0",
        "--tokenizer-type", "NullTokenizer",
        "--vocab-size", str(model.vocab_size),
        "--make-vocab-size-divisible-by", str(megatron_vocab_divisor(model.vocab_size, lay.tp)),
        "--bf16",
    ]
    if precision != "bf16-fp32grad":
        args += ["--grad-reduce-in-bf16"]
    if precision == "fp8":
        args += ["--fp8-format", "hybrid"]
    if heads_per_group > 1:
        args += ["--group-query-attention", "--num-query-groups", str(model.n_kv_head)]
    if model.ffn == "swiglu":
        args += ["--swiglu"]
    elif model.ffn == "relu2":
        args += ["--squared-relu"]
    if not model.tie_embeddings:
        args += ["--untie-embeddings-and-output-weights"]
    if model.n_experts:
        args += ["--num-experts", str(model.n_experts), "--moe-router-topk", str(model.experts_per_token),
                 "--moe-ffn-hidden-size", str(model.d_ff)]
        if model.experts_per_token == 1:
            args += ["--moe-router-pre-softmax"]
    # the layout
    args += [
        "--tensor-model-parallel-size", str(lay.tp),
        "--pipeline-model-parallel-size", str(lay.pp),
        "--micro-batch-size", str(lay.micro_batch),
        "--global-batch-size", str(global_batch_of(lay, global_batch)),
        "--train-iters", str(train_iters),
    ]
    if lay.cp > 1:
        args += ["--context-parallel-size", str(lay.cp)]
    if lay.ep > 1:
        args += ["--expert-model-parallel-size", str(lay.ep)]
    if lay.sequence_parallel and lay.tp > 1:
        args += ["--sequence-parallel"]
    if lay.pp > 1:
        pipeline_chunks(model, lay)  # refuses a split Megatron would refuse, with LSDT's words
        if lay.first_stage_layers is not None:
            args += ["--decoder-first-pipeline-num-layers", str(lay.first_stage_layers)]
        if lay.last_stage_layers is not None:
            args += ["--decoder-last-pipeline-num-layers", str(lay.last_stage_layers)]
        if lay.interleave > 1:
            args += ["--num-virtual-stages-per-pipeline-rank", str(lay.interleave)]
    # memory
    if lay.recompute == "full":
        args += ["--recompute-granularity", "full", "--recompute-method", "uniform", "--recompute-num-layers", "1"]
    elif lay.recompute == "selective":
        args += ["--recompute-granularity", "selective"]
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
    _check_megatron_rules(args, lay.gpus)
    return args


def _check_megatron_rules(args: list[str], world_size: int) -> None:
    ns = mg.parse(args)
    bad = mg.rule_violations(ns, world_size)
    if bad:
        raise UserError(f"megatron export: Megatron-LM {mg.RELEASE} would refuse this layout: {bad[0]}")
