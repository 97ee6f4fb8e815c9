"""GPTConfig (every hyper-parameter of the model) and GPT, the decoder built from it.

Architecture (what engine.sizing.counts counts): token embedding -> n_layer pre-norm blocks
(RoPE GQA attention with a per-layer window, bias-free MLP) -> final RMSNorm -> LM head, which
shares the embedding's weight when `tie_embeddings`. No biases, no norm gains, no position table.

Initialisation follows GPT-2 / nanoGPT: N(0, init_std) for every matrix, and the two residual
output projections (attention o, MLP down) scaled by 1/sqrt(2 n_layer) (Radford et al. 2019, sec.
2.3: "scale the weights of residual layers at initialization by a factor of 1/sqrt(N)").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from engine.errors import UserError
from engine.runtime.model.block import Block
from engine.runtime.model.decoder import DecoderLM, fill_shape_defaults
from engine.specs import ModelSpec


@dataclass
class GPTConfig:
    """Every hyper-parameter of the model; `GPTConfig.from_spec` fills it from a ModelSpec."""

    vocab_size: int = 256
    seq_len: int = 256  # longest sequence the model accepts (RoPE table length)
    n_layer: int = 4
    d_model: int = 128
    n_head: int = 4
    n_kv_head: int = 0  # 0 -> n_head (no GQA)
    head_dim: int = 0  # 0 -> d_model // n_head
    d_ff: int = 0  # 0 -> 4 * d_model
    ffn: str = "gelu"  # gelu | relu2 | swiglu
    tie_embeddings: bool = False
    windows: tuple[int, ...] = field(default_factory=tuple)  # per-layer window in tokens; () -> all full
    rope_base: float = 10000.0  # Su et al. 2021
    qk_norm: bool = False  # parameter-free RMSNorm on q and k (nanochat); off = GPT-2 behaviour
    norm_eps: float | None = None  # None: the dtype's machine epsilon (F.rms_norm default)
    dropout: float = 0.0
    init_std: float = 0.02  # GPT-2 / nanoGPT

    def __post_init__(self) -> None:
        fill_shape_defaults(self, "model")
        if len(self.windows) != self.n_layer:
            raise UserError(f"model: {len(self.windows)} layer windows for n_layer = {self.n_layer}; accepted: one per layer")
        if self.head_dim % 2:
            raise UserError(f"model: head_dim = {self.head_dim} is odd; RoPE needs an even head_dim")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"model: dropout = {self.dropout}; accepted: 0 <= dropout < 1")

    @classmethod
    def from_spec(cls, spec: ModelSpec, dropout: float = 0.0, seq_len: int | None = None, **overrides) -> "GPTConfig":
        """The runtime config of a ModelSpec (dense models; MoE specs train with `lsdt moe`).

        `seq_len` overrides the spec's (e.g. the longest stage of a curriculum); layer windows
        come from the spec's window pattern, capped at that length.
        """
        if spec.is_moe:
            raise UserError(f"model {spec.name}: a MoE spec (n_experts = {spec.n_experts}); this trainer builds dense models only")
        T = seq_len or spec.seq_len
        windows = tuple(spec.with_(seq_len=T).layer_windows())  # full layers see T; short ones keep short_window
        return cls(
            vocab_size=spec.vocab_size, seq_len=T, n_layer=spec.n_layer, d_model=spec.d_model,
            n_head=spec.n_head, n_kv_head=spec.n_kv_head, head_dim=spec.head_dim, d_ff=spec.d_ff,
            ffn=spec.ffn, tie_embeddings=spec.tie_embeddings, windows=windows, dropout=dropout, **overrides,
        )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["windows"] = list(self.windows)
        return data


class GPT(DecoderLM):
    def __init__(self, config: GPTConfig):
        super().__init__()
        c = self.config = config
        self._add_input(c)
        self.blocks = nn.ModuleList(
            Block(c.d_model, c.n_head, c.n_kv_head, c.head_dim, c.d_ff, c.ffn, w, self.rotary, c.qk_norm, c.dropout, c.norm_eps)
            for w in c.windows
        )
        self._add_output(c)
        self.init_weights()

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx [B, T] int64 -> logits [B, T, vocab] (and mean cross-entropy vs targets; -1 is ignored)."""
        x = self.drop(self.embed(idx))
        for block in self.blocks:
            x = block(x)
        return self._head(x, targets)
