"""One pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x)) (GPT-2 ordering).

Dropout (rate from GPTConfig) sits on each residual branch, as in GPT-2 / nanoGPT; eval() turns it off.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.runtime.model.attention import CausalSelfAttention
from engine.runtime.model.embedding import Rotary
from engine.runtime.model.mlp import MLP
from engine.runtime.model.norm import RMSNorm


class Block(nn.Module):
    def __init__(self, d_model: int, n_head: int, n_kv_head: int, head_dim: int, d_ff: int, ffn: str,
                 window: int, rotary: Rotary, qk_norm: bool, dropout: float, norm_eps: float | None):
        super().__init__()
        self.norm_attn = RMSNorm(norm_eps)
        self.attn = CausalSelfAttention(d_model, n_head, n_kv_head, head_dim, window, rotary, qk_norm, dropout)
        self.norm_mlp = RMSNorm(norm_eps)
        self.mlp = MLP(d_model, d_ff, ffn)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm_attn(x)))
        return x + self.drop(self.mlp(self.norm_mlp(x)))
