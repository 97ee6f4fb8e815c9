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

    @property
    def non_embedding(self) -> int:
        return self.total - self.embedding - self.lm_head


def attention_params(spec: ModelSpec) -> int:
    """q and o: d x (n_head hd); k and v: d x (n_kv_head hd) each (GQA, Ainslie et al. 2023)."""
    q_width = spec.n_head * spec.head_dim
    kv_width = spec.n_kv_head * spec.head_dim
    return 2 * spec.d_model * q_width + 2 * spec.d_model * kv_width


def mlp_params(spec: ModelSpec) -> int:
    """GELU / ReLU^2: up + down (2 d d_ff). SwiGLU: gate + up + down (3 d d_ff; Shazeer 2020)."""
    matrices = 3 if spec.ffn == "swiglu" else 2
    return matrices * spec.d_model * spec.d_ff


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
    # Mixtral style: every layer's MLP is E experts, k of them per token, plus a router.
    layers_total = L * (attn + E * mlp + router)
    layers_active = L * (attn + k * mlp + router)
    return ParamCounts(
        embedding, lm_head, attn, mlp, router, L, 0,
        embedding + lm_head + layers_total,
        embedding + lm_head + layers_active,
        layers_total + head_matmul,
        layers_active + head_matmul,
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
    attn_width = spec.n_head * spec.head_dim
    return 6.0 * counts.matmul_active + 12.0 * attn_width * attention_context(spec, seq_len, causal)
