"""Memory per GPU: activations per Korthikanti et al. 2022 and training state per ZeRO stage.

Activations (Korthikanti, Casper, Lym et al. 2022, "Reducing Activation Recomputation in Large
Transformer Models", sec. 4): one layer with tensor parallelism t stores, per sequence of s tokens
and micro-batch b, with 16-bit values,

    no SP, no recompute   s b h (10 + 24/t + 5 a s / (h t))       (eq. 2)
    SP                    s b h (34/t + 5 a s / (h t))            (eq. 4)
    SP + selective        s b h 34/t                              (eq. 6)
    full recompute        2 s b h (/t with SP): the layer input only

Their 34 = 10 (replicated without SP: two layer-norm inputs 4, QKV and MLP inputs 2 + 2, two
dropout masks 1 + 1) + 24 (split by t: Q and K 4, V 2, output-projection input 2, GELU input 8,
GELU output 8), and 5 a s / h = softmax output 2 + dropout mask 1 + dropout output 2 per score.
`layer_activation_bytes` keeps that term list and generalises it to the shapes LSDT plans:
GQA (K and V are n_kv_head/n_head of Q), head_dim != d_model/n_head, SwiGLU (gate, up and
product: 3 d_ff-wide tensors instead of GELU's 2), ReLU^2, MoE (top-k experts' MLP activations
per token), no dropout (modern LLMs: the masks and the attention-dropout output vanish), sliding
windows (scores are s x window) and fused (flash) attention, which stores no s x s scores at all,
only the fp32 log-sum-exp (4 bytes per head per token).

The 1F1B schedule (Narayanan et al. 2021) keeps min(m, p) micro-batches in flight on the first
stage, each through L/p layers: L layers' worth when m >= p, whatever p is. The interleaved
schedule holds (1 + (p-1)/(p v)) times that (Korthikanti sec. 4.2.3).

ZeRO (Rajbhandari et al. 2020, Fig. 1): with Psi parameters on a GPU and DP degree d,
stage 0 keeps weights + gradients + optimizer (16 Psi for bf16 Adam), stage 1 shards the
optimizer, stage 2 also the gradients, stage 3 (FSDP) also the weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.sizing.counts import param_counts
from engine.specs import ModelSpec

# Bytes per parameter of each state part, mixed precision with Adam (Rajbhandari et al. 2020,
# sec. 3.1): bf16 weights 2, gradients 2 (4 with an fp32 gradient-accumulation buffer, as
# Megatron-LM's --accumulate-allreduce-grads-in-fp32), fp32 master weights + Adam m and v 12.
# Sums to physics.STATE_BYTES_PER_PARAM (16 / 18); a test pins the equality.
WEIGHT_BYTES = 2
GRAD_BYTES = {"bf16": 2, "bf16-fp32grad": 4, "fp8": 2}
OPTIMIZER_BYTES = 12
FP32_LOGIT_BYTES = 4  # the cross-entropy input is upcast to fp32 (Korthikanti sec. 4.3: 4 s b V / t)


@dataclass(frozen=True)
class ActivationTerms:
    """Bytes per token of one layer, split by how tensor/sequence parallelism divides them."""

    replicated: float  # divided by t only with sequence parallelism
    split: float  # always divided by t (inside the TP region)
    core: float  # attention scores etc.: dropped by selective recompute; split by t
    layer_input: float  # what full recompute keeps (divided by t with SP)
    selective_replicated: float = 0.0  # of `replicated`, what selective recompute also drops
    selective_split: float = 0.0  # of `split`, what selective recompute also drops


# Bytes per cached input of an FP8 GEMM: FP8 training keeps the FP8 cast of each Linear's input
# for its weight-gradient GEMM (Transformer Engine's Linear saves the FP8 input; DeepSeek-V3 report
# sec. 3.3.2: "we cache and dispatch activations in FP8"), 1 byte instead of bf16's 2.
FP8_CACHED_INPUT_BYTES = 1.0


def activation_terms(model: ModelSpec, seq_len: int, attention: str, dropout: bool, precision: str = "bf16") -> ActivationTerms:
    """Per-token bytes of one (average) layer; `attention` is "flash" or "unfused"; `precision`
    "fp8" caches the GEMM inputs in FP8 (FP8_CACHED_INPUT_BYTES)."""
    h = model.d_model
    gin = FP8_CACHED_INPUT_BYTES if precision == "fp8" else 2.0  # a cached GEMM input, per element
    q_w = model.n_head * model.qk_head_dim
    k_w = model.n_kv_head * model.qk_head_dim
    v_w = model.n_kv_head * model.v_dim
    o_w = model.n_head * model.v_dim
    masks = 2.0 if dropout else 0.0  # two 1-byte dropout masks of width h
    # 2 LN inputs (the bf16 residual stream), the QKV and MLP inputs (GEMM inputs), masks.
    replicated = 2 * h + 2 * h + gin * h + gin * h + masks * h
    attn_split = 2 * q_w + 2 * k_w + 2 * v_w + gin * o_w  # Q, K, V (attention-core inputs), output-projection input
    if model.is_mla:  # the q and kv latents (replicated: they sit before the TP-split up-projections)
        replicated += gin * (model.q_lora_rank + model.kv_lora_rank)
    w = active_mlp_width(model)
    # SwiGLU: gate and up (the activation's inputs), their product (the down projection's input);
    # GELU / ReLU^2: the activation's input and output.
    mlp_split = 4 * w + gin * w if model.ffn == "swiglu" else 2 * w + gin * w
    # Routed experts: each of the k dispatched copies of a token is its expert's GEMM input
    # (Megatron's permuted tokens), kept for the weight gradient; averaged over layers.
    counts = param_counts(model)
    if counts.n_moe_layers:
        mlp_split += gin * model.experts_per_token * h * counts.n_moe_layers / model.n_layer
    # Scores per token: heads x attended keys (full s for unfused kernels, which materialise the
    # whole s x s matrix; the window where the layer is windowed).
    ctx = sum(min(w, seq_len) for w in model.layer_windows()) / model.n_layer
    if attention == "flash":
        core = 4.0 * model.n_head  # fp32 log-sum-exp per head; no scores are stored
    else:
        core = (5.0 if dropout else 2.0) * model.n_head * ctx
    sel_rep = sel_split = 0.0
    if model.is_mla:
        # DeepSeek-V3's selective recompute (report sec. 3.3.3 and 3.3.2; Megatron-core's
        # --recompute-modules layernorm mla_up_proj moe_act): the RMSNorm outputs (the QKV and MLP
        # inputs), the MLA up-projections' Q, K, V and the SwiGLU output are recomputed in the
        # backward, so only the latents, the SwiGLU inputs and the residual stream stay.
        sel_rep = 2 * gin * h
        sel_split = 2 * q_w + 2 * k_w + 2 * v_w + (gin * w if model.ffn == "swiglu" else 0.0)
    return ActivationTerms(replicated, attn_split + mlp_split, core, 2.0 * h, sel_rep, sel_split)


def active_mlp_width(model: ModelSpec) -> float:
    """Average over layers of the MLP width one token passes through: d_ff dense; (top-k + shared)
    x d_ff on MoE layers, dense_d_ff on DeepSeek's dense-first layers."""
    counts = param_counts(model)
    if counts.n_moe_layers:
        moe = (model.experts_per_token + model.n_shared_experts) * model.d_ff
        dense = model.n_layer - counts.n_moe_layers
        return (counts.n_moe_layers * moe + dense * model.dense_d_ff) / model.n_layer
    return _active_mlp_factor(model) * model.d_ff


def _active_mlp_factor(model: ModelSpec) -> float:
    """Average over layers of the MLPs one token passes through (top-k on MoE layers)."""
    counts = param_counts(model)
    if counts.n_moe_layers:
        return float(model.experts_per_token)
    if counts.trunk_layers:  # S7 style: trunk layers dense, expert layers run k expert stacks
        T, L = counts.trunk_layers, model.n_layer
        return (T + model.experts_per_token * (L - T)) / L
    return 1.0


def layer_activation_bytes(terms: ActivationTerms, tokens: float, tp: int, sp: bool, recompute: str) -> float:
    """Stored bytes of one layer for `tokens` tokens (micro-batch x seq) under a recompute policy."""
    if recompute == "full":
        return tokens * terms.layer_input / (tp if sp else 1)
    if recompute == "selective":
        rep = (terms.replicated - terms.selective_replicated) / (tp if sp else 1)
        return tokens * (rep + (terms.split - terms.selective_split) / tp)
    return tokens * (terms.replicated / (tp if sp else 1) + terms.split / tp + terms.core / tp)


def inflight_layers(n_layer_stage: int, pp: int, interleave: int, microbatches: int) -> float:
    """Layer-activations the first pipeline stage holds at its peak (1F1B / interleaved 1F1B)."""
    held = n_layer_stage * min(microbatches, pp)
    if interleave > 1 and pp > 1:
        held *= 1.0 + (pp - 1) / (pp * interleave)
    return held


def state_bytes(params: float, dp: int, zero: int, precision: str) -> dict:
    """Weights, gradients and optimizer state of `params` parameters on one GPU under ZeRO `zero`."""
    w = params * WEIGHT_BYTES
    g = params * GRAD_BYTES[precision]
    o = params * OPTIMIZER_BYTES
    return {
        "weights": w / dp if zero >= 3 else w,
        "gradients": g / dp if zero >= 2 else g,
        "optimizer": o / dp if zero >= 1 else o,
    }
