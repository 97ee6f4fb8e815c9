"""Causal self-attention: grouped-query heads, RoPE, and a per-layer attention window.

q, k, v, o are bias-free linears: q and o are d x (n_head hd), k and v are d x (n_kv_head hd)
(GQA, Ainslie et al. 2023; n_kv_head == n_head is plain multi-head attention), matching
engine.sizing.counts.attention_params. The kernel is PyTorch's scaled_dot_product_attention:
a full-context layer passes is_causal=True (so CUDA can pick the flash kernel); a sliding-window
layer (window < T) passes a boolean band mask: query i sees keys j with i - window < j <= i.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.runtime.model.embedding import Rotary
from engine.runtime.model.norm import rms_norm

# SDPA's enable_gqa (torch >= 2.5) lets the kernel share kv heads without materialising copies.
_SDPA_HAS_GQA = tuple(int(p) for p in torch.__version__.split("+")[0].split(".")[:2]) >= (2, 5)


def window_mask(T: int, window: int, device: torch.device) -> torch.Tensor:
    """[T, T] boolean mask, True where query i may attend key j: 0 <= i - j < window."""
    i = torch.arange(T, device=device).unsqueeze(1)
    j = torch.arange(T, device=device).unsqueeze(0)
    return (j <= i) & (i - j < window)


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_head: int, n_kv_head: int, head_dim: int, window: int,
                 rotary: Rotary, qk_norm: bool = False, dropout: float = 0.0):
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = n_head, n_kv_head, head_dim
        self.window, self.qk_norm, self.dropout = window, qk_norm, dropout
        self.q = nn.Linear(d_model, n_head * head_dim, bias=False)
        self.k = nn.Linear(d_model, n_kv_head * head_dim, bias=False)
        self.v = nn.Linear(d_model, n_kv_head * head_dim, bias=False)
        self.o = nn.Linear(n_head * head_dim, d_model, bias=False)
        self.rotary = rotary  # shared by every layer; holds only buffers, no parameters
        self._mask: torch.Tensor | None = None  # cached band mask for the last (T, device)

    def _band(self, T: int, device: torch.device) -> torch.Tensor:
        m = self._mask
        if m is None or m.size(0) != T or m.device != device:
            m = self._mask = window_mask(T, self.window, device)
        return m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.q(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        k = self.k(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        v = self.v(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        q, k = self.rotary(q), self.rotary(k)
        if self.qk_norm:  # parameter-free QK-norm (nanochat): bounded logits, no extra weights
            q, k = rms_norm(q), rms_norm(k)
        kwargs = {}
        if self.n_kv_head != self.n_head:
            if _SDPA_HAS_GQA:
                kwargs["enable_gqa"] = True
            else:
                rep = self.n_head // self.n_kv_head
                k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        dropout_p = self.dropout if self.training else 0.0
        if self.window >= T:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout_p, **kwargs)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=self._band(T, x.device), dropout_p=dropout_p, **kwargs)
        return self.o(y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim))
