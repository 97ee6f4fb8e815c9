"""The feed-forward block, bias-free: gelu | relu2 | swiglu.

gelu:   down(GELU(up x))                       GPT-2 (tanh approximation, Hendrycks & Gimpel 2016)
relu2:  down(ReLU(up x)^2)                     So et al. 2021 (Primer); nanochat's default
swiglu: down(SiLU(gate x) * up x)              Shazeer 2020; LLaMA
Parameters: 2 d d_ff, or 3 d d_ff for swiglu (engine.sizing.counts.mlp_params).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.specs import FFN_KINDS  # the one list (ModelSpec checks it; the MLP builds each)


class MLP(nn.Module):
    def __init__(self, d_model: int, d_ff: int, ffn: str):
        super().__init__()
        if ffn not in FFN_KINDS:
            raise ValueError(f"ffn = {ffn!r}; accepted: {' | '.join(FFN_KINDS)}")
        self.ffn = ffn
        self.up = nn.Linear(d_model, d_ff, bias=False)
        self.gate = nn.Linear(d_model, d_ff, bias=False) if ffn == "swiglu" else None
        self.down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(x)
        if self.ffn == "gelu":
            h = F.gelu(h, approximate="tanh")
        elif self.ffn == "relu2":
            h = F.relu(h)
            h = h * h  # cheaper backward than .square() / pow on CPU (MulBackward vs PowBackward)
        else:
            h = F.silu(self.gate(x)) * h
        return self.down(h)
