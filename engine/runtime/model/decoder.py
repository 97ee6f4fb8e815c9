"""What the dense GPT and the two-phase MoE share around their blocks: the input side (token
embedding, dropout, RoPE tables), the output side (final RMSNorm, LM head, optionally tied to the
embedding, and the cross-entropy loss), the GPT-2 initialisation and the parameter count.

Subclasses call `_add_input(config)` first and `_add_output(config)` after their blocks, so the
module (and parameter) order, hence the state-dict names and the initialisation's draws, are those
of a model written out by hand.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from engine.runtime.model.embedding import Rotary, TokenEmbedding
from engine.runtime.model.norm import RMSNorm
from engine.specs import shape_defaults

# Parameters whose init is scaled by 1/sqrt(2 n_layer): the two residual output projections.
RESIDUAL_PROJECTIONS = ("attn.o.weight", "mlp.down.weight")


def fill_shape_defaults(cfg, where: str) -> None:
    """The 0 / () shape fields of a model config (GPTConfig, MoEConfig) -> their defaults, by the
    rules ModelSpec uses (engine.specs.shape_defaults: n_kv_head, head_dim, d_ff, the head split
    checked), and every layer's window the full context; windows as a tuple of ints."""
    cfg.n_kv_head, cfg.head_dim, cfg.d_ff = shape_defaults(where, cfg.d_model, cfg.n_head, cfg.n_kv_head, cfg.head_dim, cfg.d_ff)
    if not cfg.windows:
        cfg.windows = (cfg.seq_len,) * cfg.n_layer
    cfg.windows = tuple(int(w) for w in cfg.windows)


class DecoderLM(nn.Module):
    """Base of GPT and MoE; `config` has vocab_size, d_model, head_dim, seq_len, rope_base, dropout,
    norm_eps, tie_embeddings, init_std and n_layer (the depth of one token's path)."""

    def _add_input(self, c) -> None:
        self.embed = TokenEmbedding(c.vocab_size, c.d_model)
        self.drop = nn.Dropout(c.dropout)
        self.rotary = Rotary(c.head_dim, c.seq_len, c.rope_base)

    def _add_output(self, c) -> None:
        self.norm_out = RMSNorm(c.norm_eps)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        if c.tie_embeddings:
            self.lm_head.weight = self.embed.weight

    @torch.no_grad()
    def init_weights(self) -> None:
        """(Re)initialise every parameter: GPT-2 / nanoGPT, N(0, init_std), the residual projections
        / sqrt(2 x path depth) (Radford et al. 2019, sec. 2.3); also call after `to_empty` from a
        meta-device build."""
        std = self.config.init_std
        residual_std = std / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            nn.init.normal_(p, 0.0, residual_std if name.endswith(RESIDUAL_PROJECTIONS) else std)
        if self.rotary.cos.device.type != "meta":
            self.rotary.reset_tables()

    def num_params(self) -> int:
        """Unique parameters (a tied head is counted once), the number sizing's param_counts gives."""
        return sum(p.numel() for p in self.parameters())

    def _head(self, h: torch.Tensor, targets: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Final norm and LM head: logits [B, T, vocab] (and mean cross-entropy vs targets; -1 is ignored)."""
        logits = self.lm_head(self.norm_out(h))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss
