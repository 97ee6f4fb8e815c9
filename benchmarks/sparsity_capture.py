"""Sparsity lab targets for the capture stage (issue 19):

  1. capture costs <= 15 % over a plain forward pass of the same model and batch (hooks + statistics);
  2. capture memory stays flat as tokens grow (shown at 2 sizes).

Usage: python benchmarks/sparsity_capture.py --model RUN_DIR [--layers auto] [--repeats 5]

(1) times the same windows through the model with no hooks and through `capture` (hooks, running
statistics without the co-activation matrix, as the capture stage runs), each the best of
--repeats, interleaved so a noisy machine hits both alike. (2) runs the capture at N and 4N tokens
per task and reports the statistics' bytes and the process's peak-RSS growth during each.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--layers", default="auto")
    ap.add_argument("--tokens", type=int, default=4096, help="tokens per task for the overhead figure")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()

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

    def plain() -> float:
        t0 = time.perf_counter()
        with torch.no_grad():
            for x, _, _, _ in batches(tw, args.batch, 0):
                src.forward(x)
        return time.perf_counter() - t0

    def hooked() -> float:
        return capture(src, layers, tw, batch=args.batch, coactivation=False, tasks=False).seconds  # as the capture stage

    plain(), hooked()  # warm-up
    p, h = [], []
    for _ in range(args.repeats):
        p.append(plain())
        h.append(hooked())
    tokens = sum(tw.tokens(k) for k in range(len(tw.names)))
    overhead = min(h) / min(p) - 1
    print(f"model {src.name} ({src.kind}), layers {[l.label for l in layers]}, {tokens} tokens, batch {args.batch} x {seq}, 1 thread")
    print(f"plain forward  best {min(p):.3f} s  median {np.median(p):.3f} s")
    print(f"capture        best {min(h):.3f} s  median {np.median(h):.3f} s")
    print(f"capture overhead {100 * overhead:+.1f} % (best of {args.repeats}; median {100 * (np.median(h) / np.median(p) - 1):+.1f} %)  "
          f"target <= 15 %: {'met' if overhead <= 0.15 else 'NOT met'}")

    for n in (args.tokens // 4, args.tokens):
        tw_n = tokenize_tasks(tasks, src.encode, seq, n, src.vocab_size)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        res = capture(src, layers, tw_n, batch=args.batch, coactivation=True)
        grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        stat_bytes = sum(v.nbytes for s in res.stats.values() for v in vars(s).values() if isinstance(v, np.ndarray))
        print(f"memory at {res.tokens:>7} tokens: statistics {stat_bytes / 1e6:.2f} MB, peak RSS growth {grew / 1e3:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
