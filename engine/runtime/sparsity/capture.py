"""Stage 1, capture: hooks on the MLP activation (the input of the down projection) and running
statistics per layer, streaming: tokenize -> forward -> hook -> statistics, batch by batch.

Memory is bounded: per layer the statistics are a few vectors of the layer's width d plus two
d x d float64 matrices (second moments for the covariance, co-activation counts for the PMI graph)
and K x d per-task counts, each with a float32 / int32 twin on the device for the sums not yet
flushed (RunningStats); nothing grows with the number of tokens unless `--save-acts N` asks
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
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from engine.runtime.sparsity.sources import Layer, Source
from engine.runtime.sparsity.tasks import TaskWindows


# Pending sums are flushed into the float64 totals every this many tokens: float32 keeps the counts
# exact (< 2^24) and the covariance sums to ~1e-6 relative, while the hot path never leaves the device.
FLUSH_TOKENS = 1 << 15
# The d x d sums (x^T x, on^T on) are symmetric: only the block rows' upper parts are multiplied,
# (GRAM_BLOCKS + 1) / (2 GRAM_BLOCKS) of the FLOPs (4: 62.5 %, 0.45 instead of 0.63 ms per 1024 x 512
# batch on one core); the lower part is mirrored when the sums are flushed.
GRAM_BLOCKS = 4


def gram_blocks(d: int) -> list[tuple[int, int]]:
    """Row ranges [r0, r1) of the block rows of a d x d Gram matrix."""
    edges = sorted({round(i * d / GRAM_BLOCKS) for i in range(GRAM_BLOCKS + 1)})
    return list(zip(edges[:-1], edges[1:]))


def add_gram_upper(acc: torch.Tensor, a: torch.Tensor) -> None:
    """acc += a^T a on and above the block diagonal (block row [r0, r1): columns r0..d)."""
    for r0, r1 in gram_blocks(acc.shape[0]):
        acc[r0:r1, r0:].addmm_(a[:, r0:r1].T, a[:, r0:])


def mirror_gram_upper(total: np.ndarray) -> None:
    """Fill the part below the block diagonal from the part above it (total is symmetric)."""
    for r0, r1 in gram_blocks(total.shape[0]):
        total[r0:r1, :r0] = total[:r0, r0:r1].T


class RunningStats:
    """Streaming statistics of one layer's activations x [N, d], each token labelled with a task.

    Per batch, everything is accumulated in float32 / int32 tensors on the activations' device with
    in-place fused ops (`addmm_` for the upper blocks of the symmetric d x d sums, one compare +
    integer column sum for the counts): no host copy, no device sync, no d x d temporary. Every FLUSH_TOKENS tokens, and
    whenever a total is read (`total`, `second`, ... are properties), the pending sums are added
    into float64 numpy totals. Converting each batch's d x d product to float64 and adding it in
    numpy, and counting with count_nonzero (an int64 copy of the mask), were about half of the
    capture's overhead (benchmarks/sparsity_capture.py); on CUDA the old `.to("cpu")` of every
    activation was a host sync per layer and batch."""

    def __init__(self, width: int, n_tasks: int, threshold: float = 0.0, with_coactivation: bool = True,
                 pr_stride: int = 1, with_tasks: bool = True, device: str | torch.device = "cpu"):
        self.width, self.n_tasks, self.threshold = width, n_tasks, threshold
        self.pr_stride = pr_stride  # covariance from tokens whose running index is a multiple of this
        self.with_tasks = with_tasks  # per-task counts (the si stage); the capture stage needs none
        self.device = torch.device(device)
        self.n = 0
        self.n_cov = 0  # tokens in the covariance sample
        d, K = width, n_tasks
        shapes = {"total": (d,), "second": (d, d), "active": (d,), "task_active": (K, d), "task_tokens": (K,),
                  "null_active": (K, d), "null_tokens": (K,)}
        if with_coactivation:
            shapes["coactive"] = (d, d)
        counts = ("active", "task_tokens", "null_tokens")  # integers: exact in int32
        self._totals = {name: np.zeros(shape) for name, shape in shapes.items()}
        self._pending = {name: torch.zeros(shape, device=self.device, dtype=torch.int32 if name in counts else torch.float32)
                         for name, shape in shapes.items()}
        self._unflushed = 0  # tokens in the pending sums
        self._dirty = False  # anything pending at all (count_tokens adds without tokens of its own)
        self._buffers: dict[str, torch.Tensor] = {}  # per-batch work space (_scratch), not statistics
        # The covariance sums are of x - shift, the first sample's mean: E[x x^T] - m m^T of raw x
        # cancels digits when the mean is large next to the spread, which float32 sums cannot spare.
        self.shift: torch.Tensor | None = None

    def _total(name: str, doc: str) -> property:  # noqa: N805 - a property factory used in the class body only
        def read(self) -> np.ndarray | None:
            self.flush()
            return self._totals.get(name)

        return property(read, doc=doc)

    total = _total("total", "[d] sum of x - shift over the covariance sample")
    second = _total("second", "[d, d] sum of (x - shift)(x - shift)^T over the covariance sample")
    active = _total("active", "[d] tokens with x > threshold, per neuron")
    task_active = _total("task_active", "[K, d] tokens with x > threshold, per task and neuron")
    task_tokens = _total("task_tokens", "[K] tokens per task (the SI's normalisation)")
    null_active = _total("null_active", "[K, d] as task_active under the shuffled task labels")
    null_tokens = _total("null_tokens", "[K] tokens per shuffled task label")
    coactive = _total("coactive", "[d, d] tokens where both neurons are active; None without co-activation")
    del _total

    def update(self, x: torch.Tensor, task: torch.Tensor, null_task: torch.Tensor,
               tokens_task: torch.Tensor | None = None, tokens_null: torch.Tensor | None = None) -> None:
        """x [N, d] (any float dtype), task / null_task [N] int64 labels. `tokens_task` / `tokens_null`,
        when given, are the labels of every token of the batch (an MoE expert layer sees only the
        tokens routed to it; for the others its neurons are not computed, i.e. inactive, and the
        SI's per-task normalisation must count them, or a few stray tokens of a task would weigh
        as much as the whole task)."""
        p = self._pending
        x = x.detach().to(self.device)
        above = torch.gt(x, self.threshold, out=self._scratch("above", x.shape[0], torch.bool))
        p["active"].add_(above.sum(0, dtype=torch.int32))  # while the mask is still in cache (it was 2-5x slower after the Gram)
        first = (-self.n) % self.pr_stride  # keep the global sample rule across batch boundaries
        rows = x[first::self.pr_stride]
        sample = self._scratch("sample", rows.shape[0], torch.float32).copy_(rows)
        if self.shift is None and len(sample):
            self.shift = sample.mean(0)
        if self.shift is not None:
            sample.sub_(self.shift)
        self.n += x.shape[0]
        self.n_cov += sample.shape[0]
        self._unflushed += x.shape[0]
        self._dirty = True
        p["total"].add_(sample.sum(0))
        add_gram_upper(p["second"], sample)
        if self.with_tasks:
            task, null_task = task.to(self.device), null_task.to(self.device)
            on = self._scratch("on", x.shape[0], torch.float32).copy_(above)
            onehot = torch.nn.functional.one_hot(task, self.n_tasks).to(torch.float32)
            null_onehot = torch.nn.functional.one_hot(null_task, self.n_tasks).to(torch.float32)
            p["task_active"].addmm_(onehot.T, on)
            p["null_active"].addmm_(null_onehot.T, on)
            self.count_tokens(task if tokens_task is None else tokens_task, null_task if tokens_null is None else tokens_null)
            if "coactive" in p:
                add_gram_upper(p["coactive"], on)
        if self._unflushed >= FLUSH_TOKENS:
            self.flush()

    def _scratch(self, name: str, rows: int, dtype: torch.dtype) -> torch.Tensor:
        """A [rows, d] work buffer kept from batch to batch instead of megabytes allocated fresh in
        every hook call (2 points less capture overhead in benchmarks/sparsity_capture.py)."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape[0] < rows:
            buf = self._buffers[name] = torch.empty(rows, self.width, dtype=dtype, device=self.device)
        return buf[:rows]

    def count_tokens(self, task: torch.Tensor, null_task: torch.Tensor) -> None:
        """Per-task token counts (the SI's normalisation), also for a batch the layer did not see."""
        p = self._pending
        self._dirty = True
        p["task_tokens"].add_(torch.bincount(task.to(self.device), minlength=self.n_tasks).to(torch.int32))
        p["null_tokens"].add_(torch.bincount(null_task.to(self.device), minlength=self.n_tasks).to(torch.int32))

    def flush(self) -> None:
        """Add the pending device sums into the float64 totals (one host transfer per sum)."""
        if not self._dirty:
            return
        for name, acc in self._pending.items():
            self._totals[name] += acc.cpu().numpy()  # numpy casts in small chunks: no d x d float64 temporary
            acc.zero_()
            if name in ("second", "coactive"):
                mirror_gram_upper(self._totals[name])
        self._unflushed, self._dirty = 0, False

    def nbytes(self) -> int:
        """Memory held by the statistics: the float64 totals and the pending sums (nothing per token;
        the work buffers of one batch, _scratch, are not statistics and not counted)."""
        return sum(a.nbytes for a in self._totals.values()) + sum(t.numel() * t.element_size() for t in self._pending.values())

    def covariance(self) -> np.ndarray:
        mean = self.total / max(self.n_cov, 1)  # of x - shift: the covariance is the same
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
        x, labels = x[keep], labels.to(x.device)[keep]
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
            stats[layer.label] = RunningStats(x.shape[1], K, threshold, coactivation, pr_stride, tasks, x.device)
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
            if masked:  # every token's labels: the per-task counts of the MoE expert layers
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
    for st in stats.values():
        st.flush()  # inside the timed span: the capture's cost includes its one host transfer
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
        tasks.append(task.cpu())

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
