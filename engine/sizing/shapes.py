"""nanochat-style depth bands: one integer (depth) -> a whole model shape.

nanochat (karpathy/nanochat, gpt.py + speedrun.sh) derives the width from the depth with an
"aspect ratio" of 64: d_model = 64 x depth, rounded up to a multiple of head_dim so the heads
tile it exactly; n_head = d_model / head_dim; ReLU^2 MLP of 4 x d_model; untied embeddings.
The bands planner, the probes and the trainer all build their models here, so a depth means the
same shape everywhere.
"""

from __future__ import annotations

from engine.errors import UserError
from engine.specs import DEFAULT_WINDOW_PATTERN, ModelSpec

ASPECT_RATIO = 64  # d_model per layer of depth (nanochat speedrun: d20 -> 1280)
DEFAULT_HEAD_DIM = 128  # nanochat default; FA-friendly
DEFAULT_VOCAB = 65536  # nanochat's 2^16 BPE (the seed's 4090 plan; --vocab overrides, e.g. 32768)


def band_d_model(depth: int, head_dim: int = DEFAULT_HEAD_DIM) -> int:
    """64 x depth rounded up to a multiple of head_dim."""
    return -(-ASPECT_RATIO * depth // head_dim) * head_dim


def band_spec(
    depth: int,
    seq_len: int = 2048,
    head_dim: int = DEFAULT_HEAD_DIM,
    vocab_size: int = DEFAULT_VOCAB,
    n_kv_head: int | None = None,
    window_pattern: str = DEFAULT_WINDOW_PATTERN,
    ffn: str = "relu2",
    tie_embeddings: bool = False,
) -> ModelSpec:
    """The ModelSpec of a depth-`depth` band model (name `d{depth}`)."""
    if depth < 1:
        raise UserError(f"depth = {depth}; accepted: an integer >= 1")
    if head_dim < 1:
        raise UserError(f"head_dim = {head_dim}; accepted: an integer >= 1")
    d_model = band_d_model(depth, head_dim)
    n_head = d_model // head_dim
    return ModelSpec(  # n_kv_head (0 = n_head) and d_ff (4 d_model) filled and checked by specs.shape_defaults
        name=f"d{depth}",
        n_layer=depth,
        d_model=d_model,
        n_head=n_head,
        n_kv_head=n_kv_head or 0,
        head_dim=head_dim,
        ffn=ffn,
        vocab_size=vocab_size,
        seq_len=seq_len,
        tie_embeddings=tie_embeddings,
        window_pattern=window_pattern,
        source=f"nanochat-style band: d_model = {ASPECT_RATIO} x depth rounded up to head_dim {head_dim}",
    )
