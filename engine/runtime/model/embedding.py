"""Token embedding and rotary position embedding (RoPE, Su et al. 2021).

Positions are rotations of query/key channel pairs, not a learned table, so a model has
no position parameters (as engine.sizing.counts assumes) and trains at any length <= seq_len.
"""

from __future__ import annotations

import torch
from torch import nn


class TokenEmbedding(nn.Module):
    """vocab_size x d_model lookup table; the LM head may share its weight (tied embeddings)."""

    def __init__(self, vocab_size: int, d_model: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(vocab_size, d_model))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding(idx, self.weight)


class Rotary(nn.Module):
    """cos/sin tables of RoPE for positions [0, max_len), rotating pairs (i, i + head_dim/2).

    Frequencies theta_i = base^(-2i / head_dim) (Su et al. 2021, eq. 15; base 10000 as in the
    paper and LLaMA). The tables are non-persistent buffers: derived data, not state to save.
    """

    def __init__(self, head_dim: int, max_len: int, base: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"RoPE needs an even head_dim, got {head_dim}")
        self.head_dim, self.max_len, self.base = head_dim, max_len, base
        cos, sin = self._tables(max_len, None)  # None: the default device (meta inside `with torch.device("meta")`)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def _tables(self, length: int, device: torch.device | None) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.head_dim // 2
        inv_freq = self.base ** (-torch.arange(0, half, dtype=torch.float32, device=device) / half)
        t = torch.arange(length, dtype=torch.float32, device=device)
        angles = torch.outer(t, inv_freq)  # [T, hd/2]
        return angles.cos(), angles.sin()

    def reset_tables(self) -> None:
        """Recompute the tables in place (after building on the meta device, then `to_empty`)."""
        cos, sin = self._tables(self.max_len, self.cos.device)
        self.cos, self.sin = cos, sin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rotate x of shape [B, H, T, head_dim] by its positions 0..T-1."""
        T = x.size(-2)
        if T > self.max_len:
            raise ValueError(f"sequence of {T} tokens is longer than the model's seq_len {self.max_len}")
        cos = self.cos[:T].to(x.dtype)
        sin = self.sin[:T].to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)

