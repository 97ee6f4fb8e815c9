"""Sparsity lab targets for the capture stage (issue 19):

  1. capture costs <= 15 % over a plain forward pass of the same model and batch (hooks + statistics);
  2. capture memory stays flat as tokens grow (shown at 2 sizes).

Usage: python benchmarks/sparsity_capture.py --model RUN_DIR [--layers auto] [--repeats 15] [--malloc settled|default]

(1) times the same windows through the model with no hooks and through `capture` (hooks, running
statistics without the co-activation matrix, as the capture stage runs) in --repeats pairs, the
order alternating; the figure is the median over pairs of the CPU-time ratio (one thread, so CPU
time is the work done; wall time on a shared machine also counts other processes' turns, and is
printed beside it), with glibc malloc's thresholds fixed first (settle_malloc) and the page faults
per pass printed. (2) runs the capture at N and 4N tokens per task and reports the statistics' bytes
and the process's peak-RSS growth during each.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def settle_malloc() -> None:
    """Fix glibc malloc's M_MMAP_THRESHOLD (32 MB, its maximum) and M_TRIM_THRESHOLD (1 GB). Left
    dynamic, they grow with the largest block freed so far, so whether a pass gets its activations'
    memory back from the heap or faults in fresh pages from the OS depends on what ran before it:
    here a plain forward pass took up to 100,000 page faults or none, from run to run, and that,
    not the hooks, decided the overhead figure (between -17 % and +52 % per pair)."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        raise SystemExit("no glibc here; run with --malloc default") from None
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # malloc.h
    if not (libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)):
        raise SystemExit("mallopt refused; run with --malloc default")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--layers", default="auto")
    ap.add_argument("--tokens", type=int, default=4096, help="tokens per task for the overhead figure")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--malloc", choices=("settled", "default"), default="settled",
                    help="settled: fix glibc's mmap/trim thresholds first, so neither pass re-faults its pages (default)")
    args = ap.parse_args()
    if args.malloc == "settled":
        settle_malloc()

    import numpy as np
    import torch

    from engine.runtime.sparsity.capture import batches, capture
    from engine.runtime.sparsity.sources import load_source, select_layers
    from engine.runtime.sparsity.tasks import parse_tasks, tokenize_tasks

    torch.set_num_threads(1)
    src = load_source(args.model)
    layers = select_layers(src, args.layers)
    seq = min(128, src.seq_len)
    tasks = parse_tasks("builtin")
    tw = tokenize_tasks(tasks, src.encode, seq, args.tokens, src.vocab_size)

    def plain() -> None:
        with torch.no_grad():
            for x, _, _, _ in batches(tw, args.batch, 0):
                src.forward(x)

    def hooked() -> None:
        capture(src, layers, tw, batch=args.batch, coactivation=False, tasks=False)  # as the capture stage

    faults = {plain: [], hooked: []}

    def timed(fn) -> tuple[float, float]:
        """(wall s, process CPU s). One thread: CPU time leaves out the time other processes on a
        shared machine take the core, which wall time cannot."""
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        faults[fn].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
        return wall, cpu

    for _ in range(2):  # warm-up, both in turn
        plain(), hooked()
    p, h = [], []
    for i in range(args.repeats):  # pairs, the order alternating, so drift hits both alike
        first, second = (plain, hooked) if i % 2 == 0 else (hooked, plain)
        a, b = timed(first), timed(second)
        p.append(a if first is plain else b)
        h.append(b if first is plain else a)
    p_wall, p_cpu = (np.array(v) for v in zip(*p))
    h_wall, h_cpu = (np.array(v) for v in zip(*h))
    tokens = sum(tw.tokens(k) for k in range(len(tw.names)))
    print(f"model {src.name} ({src.kind}), layers {[l.label for l in layers]}, {tokens} tokens, batch {args.batch} x {seq}, "
          f"1 thread, malloc {args.malloc}")
    for clock, pt, ht in (("CPU time", p_cpu, h_cpu), ("wall time", p_wall, h_wall)):
        print(f"{clock:9s}: plain forward median {np.median(pt):.3f} s (best {pt.min():.3f}), "
              f"capture median {np.median(ht):.3f} s (best {ht.min():.3f})")
    print(f"page faults per pass, median: plain forward {np.median(faults[plain]):.0f}, capture {np.median(faults[hooked]):.0f}")
    per_pair = h_cpu / p_cpu - 1
    overhead = float(np.median(per_pair))
    print(f"capture overhead (CPU time, median of {args.repeats} pairs) {100 * overhead:+.1f} %  "
          f"[pairs {100 * per_pair.min():+.1f} .. {100 * per_pair.max():+.1f} %; best/best {100 * (h_cpu.min() / p_cpu.min() - 1):+.1f} %; "
          f"wall median of pairs {100 * float(np.median(h_wall / p_wall - 1)):+.1f} %]  "
          f"target <= 15 %: {'met' if overhead <= 0.15 else 'NOT met'}")

    for n in (args.tokens // 4, args.tokens):
        tw_n = tokenize_tasks(tasks, src.encode, seq, n, src.vocab_size)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        res = capture(src, layers, tw_n, batch=args.batch, coactivation=True)
        grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        stat_bytes = sum(s.nbytes() for s in res.stats.values())
        print(f"memory at {res.tokens:>7} tokens: statistics {stat_bytes / 1e6:.2f} MB, peak RSS growth {grew / 1e3:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
