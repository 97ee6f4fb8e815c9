"""The S7 two-phase MoE: a shared trunk, N expert stacks and a top-k router, on the GPT's blocks.

    tokens -> embedding -> trunk (trunk_layers blocks, shared)
           -> router: softmax(W_r . rms_norm(prefix_mean(h)))        W_r: d_model x n_experts, no bias
           -> top-k experts; expert e is a stack of n_layer - trunk_layers blocks over the trunk's output
           -> per token, sum over its k experts of gate x expert output -> final RMSNorm -> LM head
              (tied to the embedding)

Parameters: embedding + trunk_layers blocks + n_experts x (n_layer - trunk_layers) blocks + router,
which is engine.sizing.counts.param_counts(spec).total for a spec with trunk_layers > 0 (a test
pins it for the s7-moe-140m profile and the --tiny one). Blocks, attention, MLP, norms and RoPE are
the dense GPT's modules (engine/runtime/model/block.py ...), so the two models share every kernel.

Routing is per token and causal: the router reads the running mean of the trunk's outputs over
positions <= t, so a token's expert never depends on later tokens (perplexity stays honest), and
the decision settles as the context reveals its domain. Because an expert is a whole stack with its
own attention, it runs over the full sequence whenever any token of the batch picks it; each
token then takes the outputs of its own k experts.

Gates: the top-k probabilities renormalised to sum to 1 (Shazeer et al. 2017, "Outrageously Large
Neural Networks", eq. 3-5: softmax over the kept logits). Load balancing: the Switch Transformer
auxiliary loss (Fedus et al. 2022, JMLR, sec. 2.2, eq. 4-6)

    aux = n_experts x sum_i f_i x P_i

with f_i the fraction of token slots dispatched to expert i (top-k, so divided by k) and P_i the
mean router probability of expert i; it is 1.0 at perfectly uniform routing. The forward stores it
in `last_aux_loss` for the router's training (engine/runtime/moe/train.py, alpha = 0.01 as in
Switch).

Two-phase training uses the same module through `forward_trunk` (phase 1: embedding + trunk + the
tied head) and `forward_expert` (phase 2: the frozen trunk, then one expert, no router).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import UserError
from engine.runtime.model.block import Block
from engine.runtime.model.decoder import DecoderLM, fill_shape_defaults
from engine.runtime.model.norm import rms_norm
from engine.specs import ModelSpec

# --tiny: the s7-moe-140m structure (4 experts, top-1, trunk then expert stacks, tied byte vocab)
# at a size that trains in minutes on 2 CPU cores. Depths keep the profile's trunk:expert ratio
# of 6:8 as 2:2 (3:4 would double the time for little); every other knob is the profile's.
TINY = dict(n_layer=4, trunk_layers=2, d_model=64, n_head=4, d_ff=256, vocab_size=256, seq_len=128)


def tiny_spec(spec: ModelSpec) -> ModelSpec:
    """The --tiny version of a trunk + experts spec (byte vocabulary, a few hundred K parameters)."""
    if not spec.trunk_layers:
        raise UserError(f"model {spec.name}: trunk_layers = 0; the two-phase MoE needs trunk_layers > 0")
    return spec.with_(name=f"{spec.name}-tiny", n_kv_head=0, head_dim=0, short_window=0, **TINY)


@dataclass
class MoEConfig:
    """Every hyper-parameter of the two-phase MoE; `MoEConfig.from_spec` fills it from a ModelSpec."""

    vocab_size: int = 256
    seq_len: int = 128
    n_layer: int = 4  # on one token's path: trunk_layers + expert depth
    trunk_layers: int = 2
    n_experts: int = 4
    experts_per_token: int = 1  # top-k
    d_model: int = 64
    n_head: int = 4
    n_kv_head: int = 0
    head_dim: int = 0
    d_ff: int = 0
    ffn: str = "gelu"
    tie_embeddings: bool = True
    windows: tuple[int, ...] = field(default_factory=tuple)  # per layer on a token's path
    rope_base: float = 10000.0
    norm_eps: float | None = None
    dropout: float = 0.0
    init_std: float = 0.02  # GPT-2 / nanoGPT, as the dense GPT

    def __post_init__(self) -> None:
        fill_shape_defaults(self, "moe")
        if not 1 <= self.trunk_layers < self.n_layer:
            raise UserError(f"moe: trunk_layers = {self.trunk_layers}; accepted: 1..n_layer-1 ({self.n_layer - 1})")
        if not 1 <= self.experts_per_token <= self.n_experts:
            raise UserError(f"moe: experts_per_token = {self.experts_per_token}; accepted: 1..n_experts ({self.n_experts})")
        if len(self.windows) != self.n_layer:
            raise UserError(f"moe: {len(self.windows)} layer windows for n_layer = {self.n_layer}")

    @property
    def expert_layers(self) -> int:
        return self.n_layer - self.trunk_layers

    @classmethod
    def from_spec(cls, spec: ModelSpec, dropout: float = 0.0) -> "MoEConfig":
        if not spec.is_moe or not spec.trunk_layers:
            raise UserError(f"model {spec.name}: not a trunk + experts MoE (n_experts = {spec.n_experts}, "
                            f"trunk_layers = {spec.trunk_layers}); accepted: e.g. --model s7-moe-140m")
        return cls(
            vocab_size=spec.vocab_size, seq_len=spec.seq_len, n_layer=spec.n_layer, trunk_layers=spec.trunk_layers,
            n_experts=spec.n_experts, experts_per_token=spec.experts_per_token, d_model=spec.d_model,
            n_head=spec.n_head, n_kv_head=spec.n_kv_head, head_dim=spec.head_dim, d_ff=spec.d_ff, ffn=spec.ffn,
            tie_embeddings=spec.tie_embeddings, windows=tuple(spec.layer_windows()), dropout=dropout,
        )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["windows"] = list(self.windows)
        return data


def prefix_mean(h: torch.Tensor) -> torch.Tensor:
    """Running mean over positions: out[:, t] = mean(h[:, :t+1]) (causal pooling, no parameters)."""
    counts = torch.arange(1, h.size(1) + 1, device=h.device, dtype=h.dtype).view(1, -1, 1)
    return h.cumsum(dim=1) / counts


def load_balancing_loss(probs: torch.Tensor, top_idx: torch.Tensor, n_experts: int) -> torch.Tensor:
    """Switch Transformer aux loss: n_experts x sum_i f_i x P_i (Fedus et al. 2022, eq. 4-6).

    probs [N, E] router probabilities, top_idx [N, k] chosen experts. f_i counts token slots
    (N x k of them), so the loss is 1.0 at uniform routing for any k.
    """
    dispatch = F.one_hot(top_idx, n_experts).float().sum(dim=1)  # [N, E]
    f = dispatch.mean(dim=0) / top_idx.size(1)
    p = probs.float().mean(dim=0)
    return n_experts * (f * p).sum()


class Router(nn.Module):
    """Top-k token router: d_model x n_experts, bias-free (the sizing's router parameters)."""

    def __init__(self, d_model: int, n_experts: int, k: int):
        super().__init__()
        self.n_experts, self.k = n_experts, k
        self.gate = nn.Linear(d_model, n_experts, bias=False)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.gate(rms_norm(prefix_mean(h)))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits [B,T,E], probs [B,T,E], top-k gates [B,T,k] summing to 1, top-k expert ids [B,T,k])."""
        logits = self.logits(h)
        probs = logits.float().softmax(dim=-1)
        top_p, top_i = probs.topk(self.k, dim=-1)
        gates = top_p / top_p.sum(dim=-1, keepdim=True)
        return logits, probs, gates, top_i


class MoE(DecoderLM):
    def __init__(self, config: MoEConfig):
        super().__init__()
        c = self.config = config
        self._add_input(c)

        def block(window: int) -> Block:
            return Block(c.d_model, c.n_head, c.n_kv_head, c.head_dim, c.d_ff, c.ffn, window, self.rotary,
                         False, c.dropout, c.norm_eps)

        self.trunk = nn.ModuleList(block(w) for w in c.windows[:c.trunk_layers])
        self.experts = nn.ModuleList(
            nn.ModuleList(block(w) for w in c.windows[c.trunk_layers:]) for _ in range(c.n_experts)
        )
        self.router = Router(c.d_model, c.n_experts, c.experts_per_token)
        self._add_output(c)
        self.last_aux_loss: torch.Tensor | None = None
        self.last_expert_ids: torch.Tensor | None = None
        self.init_weights()

    # ------------------------------------------------------------------ parameter groups

    def trunk_parameters(self) -> dict[str, nn.Parameter]:
        """Phase 1's parameters: the embedding (= the tied head) and the trunk blocks."""
        return {n: p for n, p in self.named_parameters() if n.startswith(("embed.", "trunk.", "lm_head."))}

    def expert_parameters(self, e: int) -> dict[str, nn.Parameter]:
        return {n: p for n, p in self.named_parameters() if n.startswith(f"experts.{e}.")}

    def router_parameters(self) -> dict[str, nn.Parameter]:
        return {n: p for n, p in self.named_parameters() if n.startswith("router.")}

    # ------------------------------------------------------------------ forward paths

    def _trunk(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.embed(idx))
        for b in self.trunk:
            x = b(x)
        return x

    def _expert(self, e: int, h: torch.Tensor) -> torch.Tensor:
        for b in self.experts[e]:
            h = b(h)
        return h

    def forward_trunk(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Phase 1: embedding -> trunk -> norm -> tied head (a trunk_layers-deep LM)."""
        return self._head(self._trunk(idx), targets)

    def forward_expert(self, e: int, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Phase 2: the trunk, then expert e for every token (hard routing to the domain's expert)."""
        return self._head(self._expert(e, self._trunk(idx)), targets)

    def route(self, idx: torch.Tensor):
        """The trunk's output and the router's decision for it (see Router.forward)."""
        h = self._trunk(idx)
        return (h, *self.router(h))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx [B, T] -> logits [B, T, vocab] (and mean cross-entropy); routed through top-k experts."""
        h, _, probs, gates, top_i = self.route(idx)
        self.last_aux_loss = load_balancing_loss(probs.reshape(-1, probs.size(-1)), top_i.reshape(-1, top_i.size(-1)),
                                                 self.config.n_experts)
        self.last_expert_ids = top_i.detach()
        out = torch.zeros_like(h)
        for e in range(self.config.n_experts):
            weight = (gates * (top_i == e)).sum(dim=-1)  # [B, T]: this expert's gate per token (0 if unchosen)
            if not bool((weight > 0).any()):
                continue  # no token picked it: skip the whole stack
            out = out + weight.unsqueeze(-1).to(h.dtype) * self._expert(e, h)
        return self._head(out, targets)
