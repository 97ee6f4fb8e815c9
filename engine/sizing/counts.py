"""Parameter counts and FLOPs per token of a ModelSpec: the one place these formulas live.

The architecture counted is LSDT's runtime GPT (engine/runtime/model): bias-free linear layers,
parameter-free RMSNorm, RoPE (no position table), token embedding + LM head (shared when tied).
A test checks that the runtime model's `numel()` equals `params_total` for every shipped small
model. Published sizes differ slightly where their models carry biases, LayerNorm gains or a
learned position table (GPT-2 124M: 124.4M there, 123.6M here).

FLOPs follow the PaLM / nanoGPT / Megatron convention (Chowdhery et al. 2022, App. B;
Narayanan et al. 2021, eq. 3): 2 FLOPs per multiply-accumulate, backward = 2 x forward, so a
training token costs 6 x (matmul parameters touched) + attention score/value FLOPs
12 x n_layer x (n_head x head_dim) x context. For GPT-3-style shapes this is exactly Megatron's
72 B s l h^2 (1 + s/6h + V/12lh) per batch (the "F72", no-recompute convention).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.specs import ModelSpec


@dataclass(frozen=True)
class ParamCounts:
    """Parameters by component. `*_active` count what one token touches (MoE top-k)."""

    embedding: int  # token embedding table, V x d
    lm_head: int  # 0 when tied to the embedding
    attention_per_layer: int  # q, k, v, o projections
    mlp_per_layer: int  # one dense MLP (or one expert's MLP)
    router_per_layer: int  # d x n_experts on MoE layers
    n_moe_layers: int  # layers whose MLP is an expert set (Mixtral style)
    trunk_layers: int  # S7 style: shared blocks before the expert stacks
    total: int
    active: int  # parameters one token uses
    matmul_total: int  # every weight used in a matmul (incl. the LM head), all experts
    matmul_active: int  # weights one token multiplies through (incl. the LM head)
    routed_experts: int = 0  # the routed experts' MLP weights, all layers (what expert parallelism shards)
    mtp: int = 0  # multi-token-prediction modules (in total, not active: an optional training head)

    @property
    def non_embedding(self) -> int:
        return self.total - self.embedding - self.lm_head


def attention_params(spec: ModelSpec) -> int:
    """q and o: d x (n_head hd); k and v: d x (n_kv_head hd) each (GQA, Ainslie et al. 2023).

    MLA (DeepSeek-V2 sec. 2.1; HF modeling_deepseek): q_a d x q_lora + q_b q_lora x n_head (nope +
    rope) (or q d x n_head (nope + rope) without a q latent), kv_a d x (kv_lora + rope), kv_b
    kv_lora x n_head (nope + v), o n_head v x d. Norm gains are not counted (LSDT's norms carry none).
    """
    if spec.is_mla:
        nh, d = spec.n_head, spec.d_model
        q_out = nh * spec.qk_head_dim
        q = spec.q_lora_rank * (d + q_out) if spec.q_lora_rank else d * q_out
        kv = d * (spec.kv_lora_rank + spec.qk_rope_head_dim) + spec.kv_lora_rank * nh * (spec.qk_nope_head_dim + spec.v_head_dim)
        return q + kv + nh * spec.v_head_dim * d
    q_width = spec.n_head * spec.head_dim
    kv_width = spec.n_kv_head * spec.head_dim
    return 2 * spec.d_model * q_width + 2 * spec.d_model * kv_width


def mlp_params(spec: ModelSpec, d_ff: int | None = None) -> int:
    """GELU / ReLU^2: up + down (2 d d_ff). SwiGLU: gate + up + down (3 d d_ff; Shazeer 2020)."""
    matrices = 3 if spec.ffn == "swiglu" else 2
    return matrices * spec.d_model * (d_ff or spec.d_ff)


def param_counts(spec: ModelSpec) -> ParamCounts:
    attn = attention_params(spec)
    mlp = mlp_params(spec)
    embedding = spec.vocab_size * spec.d_model
    lm_head = 0 if spec.tie_embeddings else spec.vocab_size * spec.d_model
    head_matmul = spec.vocab_size * spec.d_model  # the logits matmul runs whether tied or not
    L = spec.n_layer

    if not spec.is_moe:
        layers = L * (attn + mlp)
        total = embedding + lm_head + layers
        return ParamCounts(
            embedding, lm_head, attn, mlp, 0, 0, 0, total, total, layers + head_matmul, layers + head_matmul
        )

    router = spec.d_model * spec.n_experts
    E, k = spec.n_experts, spec.experts_per_token
    if spec.trunk_layers:  # S7 style: trunk blocks, then n_experts stacks of (L - trunk) blocks
        T = spec.trunk_layers
        block = attn + mlp
        layers_total = T * block + E * (L - T) * block + router
        layers_active = T * block + k * (L - T) * block + router
        return ParamCounts(
            embedding, lm_head, attn, mlp, router, 0, T,
            embedding + lm_head + layers_total,
            embedding + lm_head + layers_active,
            layers_total + head_matmul,
            layers_active + head_matmul,
        )
    # Mixtral style: every layer's MLP is E routed experts, k of them per token, plus a router;
    # DeepSeek style adds S always-active shared experts per MoE layer and makes the first
    # `dense_layers` layers dense MLPs of dense_d_ff.
    S, Ld = spec.n_shared_experts, spec.dense_layers
    Lm = L - Ld
    dense_block = attn + mlp_params(spec, spec.dense_d_ff)
    layers_total = Ld * dense_block + Lm * (attn + (E + S) * mlp + router)
    layers_active = Ld * dense_block + Lm * (attn + (k + S) * mlp + router)
    # A multi-token-prediction module: a 2d x d projection and one MoE block (its embedding and
    # head are the main model's; DeepSeek-V3 sec. 2.2). Training cost, not part of the model.
    proj = 2 * spec.d_model * spec.d_model
    mtp = spec.mtp_layers * (proj + attn + (E + S) * mlp + router)
    mtp_active = spec.mtp_layers * (proj + attn + (k + S) * mlp + router)
    return ParamCounts(
        embedding, lm_head, attn, mlp, router, Lm, 0,
        embedding + lm_head + layers_total + mtp,
        embedding + lm_head + layers_active + mtp_active,
        layers_total + mtp + head_matmul,
        layers_active + mtp_active + head_matmul,
        routed_experts=Lm * E * mlp,
        mtp=mtp,
    )


def attention_context(spec: ModelSpec, seq_len: int | None = None, causal: bool = False) -> float:
    """Sum over layers of the keys each query attends to (tokens), at sequence length `seq_len`.

    Non-causal (the PaLM/MFU convention) counts the full window for every query. Causal counts
    what a causal kernel actually computes: query i sees min(i+1, window) keys, averaged over
    the sequence.
    """
    T = seq_len or spec.seq_len
    total = 0.0
    for window in spec.layer_windows():
        w = min(window, T)
        if not causal:
            total += w
        else:  # mean over i in [0, T) of min(i + 1, w)
            total += (w * (w + 1) / 2 + (T - w) * w) / T
    return total


def flops_per_token(spec: ModelSpec, seq_len: int | None = None, causal: bool = False) -> float:
    """Training FLOPs per token (forward + backward, no recompute): 6 N_matmul_active + attention.

    Attention: QK^T and AV are 2 x 2 x (n_head hd) x context FLOPs forward per layer per token,
    x3 for training = 12 x (n_head hd) x context (PaLM App. B; nanochat's estimate_flops).
    """
    counts = param_counts(spec)
    return 6.0 * counts.matmul_active + 12.0 * attention_width(spec) * attention_context(spec, seq_len, causal)


def attention_width(spec: ModelSpec) -> float:
    """The mean of the QK^T and AV widths summed over heads: n_head x head_dim, or with MLA
    n_head x (qk_nope + qk_rope + v) / 2, so that 4 x width x context is one token's score FLOPs."""
    return spec.n_head * (spec.qk_head_dim + spec.v_dim) / 2
