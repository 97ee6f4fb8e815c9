"""Stage 1, capture: hooks on the MLP activation (the input of the down projection) and running
statistics per layer, streaming: tokenize -> forward -> hook -> statistics, batch by batch.

Memory is bounded: per layer the statistics are a few vectors of the layer's width d plus two
d x d float64 matrices (second moments for the covariance, co-activation counts for the PMI graph)
and K x d per-task counts; nothing grows with the number of tokens unless `--save-acts N` asks
for raw activations, which go to .npy memmaps on disk.

Definitions (sparsity.csv):
    frac  fraction of activations > threshold (seed 004: threshold 0.0, "count all positive")
    pr    participation ratio of the activation covariance C: tr(C)^2 / ||C||_F^2 = (sum l_i)^2 /
          sum l_i^2 over C's eigenvalues; 1 when one direction carries all variance, d when all
          carry the same (Gao, Trauger & Sompolinsky 2017; Recanatesi et al. 2022). C is estimated
          from every `pr_stride`-th token (default 8): its d x d second moment costs 2 d^2 FLOPs
          per token, more than the layer's own forward (~24 d_model^2 with d = 4 d_model), and
          a 1-in-8 sample of thousands of tokens estimates it well; frac and dead use every token
    dead  fraction of neurons never > threshold on any probe token
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch

from engine.runtime.sparsity.sources import Layer, Source
from engine.runtime.sparsity.tasks import TaskWindows


@dataclass
class RunningStats:
    """Streaming statistics of one layer's activations x [N, d], each token labelled with a task."""

    width: int
    n_tasks: int
    threshold: float = 0.0
    with_coactivation: bool = True
    pr_stride: int = 1  # covariance from tokens whose running index is a multiple of this
    with_tasks: bool = True  # per-task counts (the si stage); the capture stage needs none
    n: int = 0
    n_cov: int = 0  # tokens in the covariance sample
    total: np.ndarray = field(init=False)
    second: np.ndarray = field(init=False)  # sum of x x^T
    active: np.ndarray = field(init=False)  # per neuron: tokens with x > threshold
    task_active: np.ndarray = field(init=False)  # [K, d]
    task_tokens: np.ndarray = field(init=False)  # [K]
    null_active: np.ndarray = field(init=False)  # [K, d] under shuffled task labels
    null_tokens: np.ndarray = field(init=False)
    coactive: np.ndarray | None = field(init=False)  # [d, d]: tokens where both are active

    def __post_init__(self) -> None:
        d, K = self.width, self.n_tasks
        self.total = np.zeros(d)
        self.second = np.zeros((d, d))
        self.active = np.zeros(d)
        self.task_active = np.zeros((K, d))
        self.task_tokens = np.zeros(K)
        self.null_active = np.zeros((K, d))
        self.null_tokens = np.zeros(K)
        self.coactive = np.zeros((d, d)) if self.with_coactivation else None

    def update(self, x: torch.Tensor, task: torch.Tensor, null_task: torch.Tensor,
               tokens_task: torch.Tensor | None = None, tokens_null: torch.Tensor | None = None) -> None:
        """x [N, d] (any float dtype), task / null_task [N] int64 labels. `tokens_task` / `tokens_null`,
        when given, are the labels of every token of the batch (an MoE expert layer sees only the
        tokens routed to it; for the others its neurons are not computed, i.e. inactive, and the
        SI's per-task normalisation must count them, or a few stray tokens of a task would weigh
        as much as the whole task)."""
        x = x.detach().to("cpu")
        # Within a batch: float32 (a product over one batch's sample, counts exact below 2^24);
        # across batches: float64 accumulators. float64 products cost 2.3x on CPU for no useful digit.
        above = x > self.threshold
        first = (-self.n) % self.pr_stride  # keep the global sample rule across batch boundaries
        sample = x[first::self.pr_stride].to(torch.float32)
        self.n += x.shape[0]
        self.n_cov += sample.shape[0]
        self.total += sample.sum(0).double().numpy()
        self.second += (sample.T @ sample).double().numpy()
        self.active += torch.count_nonzero(above, dim=0).double().numpy()
        if not self.with_tasks:
            return
        on = above.to(torch.float32)
        onehot = torch.nn.functional.one_hot(task, self.n_tasks).to(torch.float32)
        null_onehot = torch.nn.functional.one_hot(null_task, self.n_tasks).to(torch.float32)
        self.task_active += (onehot.T @ on).double().numpy()
        self.count_tokens(task if tokens_task is None else tokens_task, null_task if tokens_null is None else tokens_null)
        self.null_active += (null_onehot.T @ on).double().numpy()
        if self.coactive is not None:
            self.coactive += (on.T @ on).double().numpy()

    def count_tokens(self, task: torch.Tensor, null_task: torch.Tensor) -> None:
        """Per-task token counts (the SI's normalisation), also for a batch the layer did not see."""
        self.task_tokens += torch.bincount(task, minlength=self.n_tasks).double().numpy()
        self.null_tokens += torch.bincount(null_task, minlength=self.n_tasks).double().numpy()

    def covariance(self) -> np.ndarray:
        mean = self.total / max(self.n_cov, 1)
        return self.second / max(self.n_cov, 1) - np.outer(mean, mean)

    def frac(self) -> float:
        return float(self.active.sum() / max(self.n * self.width, 1))

    def dead(self) -> float:
        return float((self.active == 0).mean())

    def pr(self) -> float:
        return participation_ratio(self.covariance())


def participation_ratio(cov: np.ndarray) -> float:
    """tr(C)^2 / ||C||_F^2 (= (sum lambda)^2 / sum lambda^2 for symmetric C); nan for C = 0."""
    fro2 = float((cov * cov).sum())
    return float(np.trace(cov) ** 2 / fro2) if fro2 > 0 else float("nan")


@contextlib.contextmanager
def mlp_hooks(layers: list[Layer], fn: Callable[[Layer, torch.Tensor], torch.Tensor | None]) -> Iterator[None]:
    """Call fn(layer, activation) before each layer's down projection; a tensor it returns replaces
    the activation (gating, splicing), None leaves it untouched. The hooks are removed on exit."""
    handles = []

    def make(layer: Layer):
        def pre_hook(module, args):
            out = fn(layer, args[0])
            return None if out is None else (out, *args[1:])

        return pre_hook

    try:
        for layer in layers:
            handles.append(layer.down.register_forward_pre_hook(make(layer)))
        yield
    finally:
        for h in handles:
            h.remove()


def batches(tw: TaskWindows, batch: int, null_seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(x [b, T], y [b, T], task [b], null task [b]) over every task's windows in task order.

    The null labels are the real window labels in a seeded random permutation: the same token count
    per task, but no relation between a window's text and its label (the shuffled-label null)."""
    rows = [(k, i) for k, w in enumerate(tw.windows) for i in range(len(w))]
    labels = np.array([k for k, _ in rows], dtype=np.int64)
    null = np.random.default_rng(null_seed).permutation(labels)
    for lo in range(0, len(rows), batch):
        chunk = rows[lo: lo + batch]
        data = torch.from_numpy(np.stack([tw.windows[k][i] for k, i in chunk]))
        yield data[:, :-1], data[:, 1:], torch.from_numpy(labels[lo: lo + batch]), torch.from_numpy(null[lo: lo + batch])


def token_rows(act: torch.Tensor, layer: Layer, per_row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flatten a [B, T, d] activation to the tokens that use this layer: (x [N, d], row label [N])."""
    B, T, d = act.shape
    labels = per_row.view(B, 1).expand(B, T).reshape(-1)
    x = act.reshape(B * T, d)
    mask = layer.token_mask()
    if mask is not None:
        keep = mask.reshape(-1).to(x.device)
        x, labels = x[keep], labels[keep.cpu()]
    return x, labels


@dataclass
class CaptureResult:
    stats: dict[str, RunningStats]
    tokens: int
    seconds: float
    saved: dict[str, str]  # layer -> .npy path of raw activations (--save-acts)


PR_STRIDE = 8


def capture(src: Source, layers: list[Layer], tw: TaskWindows, *, batch: int = 8, threshold: float = 0.0,
            seed: int = 0, device: str = "cpu", coactivation: bool = True, pr_stride: int = PR_STRIDE, tasks: bool = True,
            save_acts: int = 0, acts_dir=None, progress=None, transform=None) -> CaptureResult:
    """One streaming pass over every task window; statistics per layer (see the module docstring).

    `transform(layer, x [N, d]) -> [N, d']`, when given, maps the activations first (SAE features).
    `tasks=False` skips the per-task counts (the capture stage reports none: a third less work)."""
    import time

    K = len(tw.names)
    stats: dict[str, RunningStats] = {}
    writers = _ActWriters(layers, tw, save_acts, acts_dir) if save_acts else None
    current: dict[str, torch.Tensor] = {}

    def hook(layer: Layer, act: torch.Tensor) -> None:
        x, task = token_rows(act, layer, current["task"])
        null = token_rows(act[..., :1], layer, current["null"])[1] if tasks else task
        if writers is not None:
            writers.write(layer, act)
        if transform is not None:
            x = transform(layer, x)
        if layer.label not in stats:
            stats[layer.label] = RunningStats(x.shape[1], K, threshold, coactivation, pr_stride, tasks)
        every = None
        if tasks and layer.token_mask() is not None:  # MoE expert layer: count every token per task
            every = current["every"]
            seen.add(layer.label)
            for pending in unseen.pop(layer.label, []):
                stats[layer.label].count_tokens(*pending)
        stats[layer.label].update(x, task, null, *(every or (None, None)))
        return None

    total = sum(tw.tokens(k) for k in range(K))
    done = 0
    # MoE expert layers: a stack no token of the batch picked does not run (no hook call), but the
    # batch's tokens still count for its SI normalisation: kept here until its statistics exist.
    masked = [l.label for l in layers if tasks and l.label.startswith("expert")]  # sources.py: the masked layers
    seen: set[str] = set()
    unseen: dict[str, list] = {}
    t0 = time.perf_counter()
    with torch.no_grad(), mlp_hooks(layers, hook):
        for x, _, task, null in batches(tw, batch, seed):
            current["task"], current["null"] = task, null
            B, T = x.shape
            current["every"] = (task.view(B, 1).expand(B, T).reshape(-1), null.view(B, 1).expand(B, T).reshape(-1))
            seen.clear()
            src.forward(x.to(device))
            for label in masked:
                if label not in seen:
                    if label in stats:
                        stats[label].count_tokens(*current["every"])
                    else:
                        unseen.setdefault(label, []).append(current["every"])
            done += x.numel()
            if progress:
                progress(done, total)
    saved = writers.close() if writers is not None else {}
    return CaptureResult(stats, done, time.perf_counter() - t0, saved)


class _ActWriters:
    """Raw activations of the first N tokens per layer into acts/<layer>.npy (float32 memmaps),
    written under a temporary name and renamed when complete; acts/tasks.npy holds each row's task."""

    def __init__(self, layers, tw: TaskWindows, n: int, out_dir) -> None:
        from pathlib import Path

        total = sum(tw.tokens(k) for k in range(len(tw.names)))
        self.n = min(n, total)
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.files, self.filled = {}, {}
        for layer in layers:
            tmp = self.dir / f".{layer.label}.npy.partial"
            self.files[layer.label] = (np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(self.n, layer.width)), tmp)
            self.filled[layer.label] = 0
        labels = np.concatenate([np.full(tw.tokens(k), k, dtype=np.int16) for k in range(len(tw.names))])[: self.n]
        self.labels = labels

    def write(self, layer: Layer, act: torch.Tensor) -> None:
        arr, _ = self.files[layer.label]
        at = self.filled[layer.label]
        if at >= self.n:
            return
        flat = act.detach().reshape(-1, act.shape[-1]).to("cpu", torch.float32).numpy()[: self.n - at]
        arr[at: at + len(flat)] = flat
        self.filled[layer.label] = at + len(flat)

    def close(self) -> dict[str, str]:
        import os

        from engine.atomic import write_atomic

        out = {}
        for label, (arr, tmp) in self.files.items():
            arr.flush()
            final = self.dir / f"{label}.npy"
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
            out[label] = str(final)
        self.files.clear()  # drops the memmaps
        import io

        buf = io.BytesIO()
        np.save(buf, self.labels)
        write_atomic(self.dir / "tasks.npy", buf.getvalue(), mode=0o444)
        return out


def collect(src: Source, layer: Layer, tw: TaskWindows, max_tokens: int, *, batch: int = 8,
            device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw activations of one layer for the SAE: (x [N, d] float32, window id [N], task [N]), at
    most max_tokens rows (the first windows of each task in turn, so every task is represented)."""
    per_task = max(1, max_tokens // len(tw.names))
    xs, wins, tasks = [], [], []
    current: dict[str, torch.Tensor] = {}

    def hook(l: Layer, act: torch.Tensor) -> None:
        B, T, d = act.shape
        wid = current["win"].view(B, 1).expand(B, T)
        x, task = token_rows(act, l, current["task"])
        mask = l.token_mask()
        w = wid.reshape(-1) if mask is None else wid.reshape(-1)[mask.reshape(-1).cpu()]
        xs.append(x.detach().to("cpu", torch.float32))
        wins.append(w)
        tasks.append(task)

    offset = 0
    with torch.no_grad(), mlp_hooks([layer], hook):
        for k, w in enumerate(tw.windows):
            n_win = min(len(w), max(1, -(-per_task // (w.shape[1] - 1))))
            for lo in range(0, n_win, batch):
                rows = torch.from_numpy(w[lo: min(n_win, lo + batch)])
                current["task"] = torch.full((len(rows),), k, dtype=torch.int64)
                current["win"] = torch.arange(offset + lo, offset + lo + len(rows))
                src.forward(rows[:, :-1].to(device))
            offset += len(w)
    return torch.cat(xs), torch.cat(wins), torch.cat(tasks)
