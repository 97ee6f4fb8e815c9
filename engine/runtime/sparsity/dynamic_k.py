"""Stage 4, dynamic-k: keep the top k (fraction) of each token's MLP neurons by magnitude, zero the
rest, and measure perplexity on held-out windows (seed 004: static top-k gating on magnitude).

The gate sits where the capture hooks: on the activation entering the down projection (after the
up projection and the nonlinearity, and after SwiGLU's gate product). k = 1.0 installs no change at
all (the hook returns None), so its logits are bitwise those of the unmodified model.

FLOPs, honestly: gating after the up-projection can save only the down projection's multiply-adds,
2 d_model d_ff per token per gated layer of a forward pass's 2 N_matmul + attention. So

    flops_reduction(k) = (1 - k) x n_gated x 2 d_model d_ff / forward FLOPs per token

with the forward FLOPs one third of engine.sizing.counts.flops_per_token (training = 3 x forward),
never (1 - k). Masking measures quality; it makes nothing faster. `gather` mode (CUDA, batch 1)
really skips the rows: it computes the down projection from the k kept columns of W_down only
(torch.gather + a batched matmul), and reports the tokens/s that measures.

Seeds: each seed evaluates a different random set of held-out windows (mean +- std over seeds).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Iterator

import numpy as np
import torch

from engine.errors import UserError

DEFAULT_K = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)  # seed 004's sweep
DEFAULT_SEEDS = 3  # seed 004: "Repeat for 3 seeds, report mean +- std"


def parse_k(text: str) -> list[float]:
    """'0.1,0.5,1' -> [0.1, 0.5, 1.0]; each k in (0, 1]."""
    out = []
    for part in str(text).split(","):
        if not part.strip():
            continue
        try:
            k = float(part)
        except ValueError:
            k = float("nan")
        if not 0.0 < k <= 1.0:
            raise UserError(f"--k {text!r}: {part.strip()!r}; accepted: fractions in (0, 1], e.g. 0.1,0.2,0.5,1.0")
        out.append(k)
    if not out:
        raise UserError(f"--k {text!r}: empty; accepted: fractions in (0, 1], e.g. 0.1,0.2,0.5,1.0")
    return out


def kept(width: int, k: float) -> int:
    """Neurons kept per token: ceil(k x width), at least 1."""
    return max(1, min(width, math.ceil(k * width - 1e-9)))


def topk_gate(act: torch.Tensor, k: float) -> torch.Tensor | None:
    """act [..., d] with all but each token's top ceil(k d) |values| zeroed; None (unchanged) at k = 1."""
    width = act.shape[-1]
    n = kept(width, k)
    if n >= width:
        return None
    idx = act.abs().topk(n, dim=-1).indices
    mask = torch.zeros_like(act, dtype=torch.bool).scatter_(-1, idx, True)
    return act * mask


def flops_reduction(spec, n_gated: int, k: float, seq_len: int) -> float | None:
    """Share of forward FLOPs per token that top-k gating of n_gated layers saves (module docstring);
    None where the sizing engine has no spec of the model."""
    if spec is None:
        return None
    from engine.sizing.counts import flops_per_token

    forward = flops_per_token(spec, seq_len=seq_len, causal=True) / 3.0
    down = 2.0 * spec.d_model * spec.d_ff
    return (1.0 - k) * n_gated * down / forward


def gated_on_path(src, layers) -> float:
    """Gated layers one token passes through: every dense/trunk layer, and 1/n_experts of the expert
    layers (top-1 routing sends a token through one expert stack; top-k through k of them)."""
    experts = [l for l in layers if l.label.startswith("expert")]
    if not experts or src.spec is None or not src.spec.n_experts:
        return float(len(layers))
    share = src.spec.experts_per_token / src.spec.n_experts
    return len(layers) - len(experts) + share * len(experts)


def eval_windows(all_windows: list[np.ndarray], n_windows: int, seed: int) -> np.ndarray:
    """n_windows held-out windows drawn without replacement across the tasks, by seed."""
    pool = np.concatenate(all_windows)
    rng = np.random.default_rng([0x5D7, seed])
    pick = rng.choice(len(pool), size=min(n_windows, len(pool)), replace=False)
    return pool[np.sort(pick)]


def perplexity_and_speed(src, layers, windows: np.ndarray, k: float, device: str, batch: int = 8) -> tuple[float, float]:
    """(perplexity, tokens/s) of the model on windows [n, T+1] with top-k gating on `layers`."""
    from engine.runtime.sparsity.capture import mlp_hooks

    total, count = 0.0, 0
    sync = torch.cuda.synchronize if str(device).startswith("cuda") else (lambda: None)
    sync()
    t0 = time.perf_counter()
    with torch.no_grad(), mlp_hooks(layers, lambda l, act: topk_gate(act, k)):
        for lo in range(0, len(windows), batch):
            w = torch.from_numpy(windows[lo: lo + batch]).to(device)
            logits = src.forward(w[:, :-1])
            total += float(torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)),
                                                            w[:, 1:].reshape(-1), reduction="sum"))
            count += w[:, 1:].numel()
    sync()
    return math.exp(total / count), count / (time.perf_counter() - t0)


GATHER_ELEMENTS = 1 << 26  # 256 MB of fp32 gathered weight rows at a time


class GatherDown(torch.nn.Module):
    """A down projection that multiplies only each token's top-k activations with the matching
    columns of W_down (CUDA, batch 1): out[t] = W[:, idx_t] @ h[t, idx_t]. Work scales with k."""

    def __init__(self, down: torch.nn.Linear, k: float):
        super().__init__()
        self.weight_t = down.weight.detach().T.contiguous()  # [d_ff, d_model]: rows gathered per token
        self.bias = None if down.bias is None else down.bias.detach()  # GPT-NeoX's dense_4h_to_h has one
        self.n = kept(down.in_features, k)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        shape = h.shape
        flat = h.reshape(-1, shape[-1])
        idx = flat.abs().topk(self.n, dim=-1).indices
        vals = flat.gather(-1, idx)  # signed values of the kept neurons
        out = []
        # gathered rows are [tokens, n, d_model]: chunk the tokens so that stays under GATHER_ELEMENTS
        step = max(1, GATHER_ELEMENTS // (self.n * self.weight_t.shape[1]))
        for lo in range(0, flat.shape[0], step):
            rows = self.weight_t[idx[lo: lo + step]]
            out.append(torch.bmm(vals[lo: lo + step].unsqueeze(1), rows).squeeze(1))
        out = torch.cat(out).reshape(*shape[:-1], -1)
        return out if self.bias is None else out + self.bias


@contextlib.contextmanager
def gathered(src, layers, k: float, device: str) -> Iterator[None]:
    """GatherDown in place of each gated layer's down projection inside the block, the originals put
    back on exit (also on an error). k = 1.0 swaps nothing: the dense model is its own baseline."""
    parents = {}
    for module in src.model.modules():
        for child_name, child in module.named_children():
            parents[id(child)] = (module, child_name)
    swapped = []
    try:
        for layer in layers:
            parent, name = parents[id(layer.down)]
            if k < 1.0:
                setattr(parent, name, GatherDown(layer.down, k).to(device))
                swapped.append((parent, name, layer.down))
        yield
    finally:
        for parent, name, down in swapped:
            setattr(parent, name, down)


def check_gather_device(device: str) -> None:
    """The one refusal of gather mode off a GPU (the pipeline checks it before any stage runs)."""
    if not str(device).startswith("cuda"):
        raise UserError(f"--mode gather: needs a CUDA GPU (--device cuda), got --device {device}: it times a down "
                        "projection that really skips the gated rows, which only pays off on a GPU; accepted here: "
                        "--mode mask (quality only; masking makes nothing faster)")


def gather_speed(src, layers, windows: np.ndarray, k: float, device: str) -> float:
    """tokens/s with GatherDown in place of each gated layer's down projection (batch 1, CUDA only)."""
    check_gather_device(device)
    if not torch.cuda.is_available():
        raise UserError(f"--mode gather: --device {device} but torch sees no CUDA device here; accepted here: --mode mask")
    if not src.down_is_linear:
        raise UserError(f"--mode gather: {src.name}'s down projections are not nn.Linear; accepted: --mode mask")
    with torch.no_grad(), gathered(src, layers, k, device):
        src.forward(torch.from_numpy(windows[:1, :-1]).to(device))  # warm-up: kernels and cuBLAS handles set up untimed
        torch.cuda.synchronize()
        t0, tokens = time.perf_counter(), 0
        for w in windows:
            x = torch.from_numpy(w[None, :-1]).to(device)
            src.forward(x)
            tokens += x.numel()
        torch.cuda.synchronize()
        return tokens / (time.perf_counter() - t0)


def sweep(src, layers, all_windows: list[np.ndarray], ks: list[float], seeds: int, n_windows: int, device: str,
          mode: str = "mask", batch: int = 8, progress=None) -> list[dict]:
    """One row per k: perplexity / tokens_per_sec mean and std over seeds, flops_reduction, quality_delta
    (perplexity / dense perplexity - 1, per seed, then mean and std)."""
    dense = {}
    per_k: dict[float, list[tuple[float, float]]] = {k: [] for k in ks}
    for s in range(seeds):
        windows = eval_windows(all_windows, n_windows, s)
        dense[s] = perplexity_and_speed(src, layers, windows, 1.0, device, batch)[0]
        for k in ks:
            ppl, tps = perplexity_and_speed(src, layers, windows, k, device, batch)
            if mode == "gather":
                tps = gather_speed(src, layers, windows, k, device)
            per_k[k].append((ppl, tps, ppl / dense[s] - 1.0))
            if progress:
                progress(s, k, ppl, tps)
    rows = []
    for k in ks:
        ppl, tps, delta = (np.array(v) for v in zip(*per_k[k]))
        rows.append({
            "k": k, "perplexity": float(ppl.mean()), "perplexity_std": float(ppl.std()),
            "tokens_per_sec": float(tps.mean()), "tokens_per_sec_std": float(tps.std()),
            "flops_reduction": flops_reduction(src.spec, gated_on_path(src, layers), k, windows.shape[1] - 1),
            "quality_delta": float(delta.mean()), "quality_delta_std": float(delta.std()),
        })
    return rows
