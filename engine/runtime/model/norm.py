"""Parameter-free RMSNorm (Zhang & Sennrich 2019) without the learned gain.

nanochat and modded-nanoGPT drop the gain: the next linear layer absorbs any per-channel scale,
and engine.sizing.counts counts no norm parameters, so the model must carry none.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def rms_norm(x: torch.Tensor, eps: float | None = None) -> torch.Tensor:
    """x / sqrt(mean(x^2) + eps) over the last dimension (eps None: the dtype's machine epsilon)."""
    return F.rms_norm(x, (x.size(-1),), eps=eps)


class RMSNorm(nn.Module):
    """rms_norm as a module, so a block's structure reads like the paper's diagrams."""

    def __init__(self, eps: float | None = None):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.eps)
