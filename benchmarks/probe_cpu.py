"""The CPU probe: wall time, peak memory, and probe tok/s against `lsdt train` on the same config.

Targets (issue 16): the tiny CPU probe `lsdt probe --device cpu --depths 2 --seqs 64 --head-dim 64
--vocab 256 --steps 3` finishes in seconds with bounded memory (before: 5 minutes, 11.9 GB, then the
kernel's OOM killer), and its tok/s is within 10 % of what `lsdt train` measures on the same model,
device and device batch.

Both run through their real CLIs, one after the other (never at the same time: each gets the whole
CPU, as a user's probe and run would), interleaved over --trials pairs; the figure is the median
ratio. `lsdt train`'s tok/s is the median of its metrics.jsonl lines after warm-up (it includes data
sampling, logging and the LR schedule; eval and checkpoints are pushed past the end). Peak memory is
the highest RSS of the probe's process tree, sampled every 50 ms.

    python benchmarks/probe_cpu.py [--trials 3] [--train-steps 120]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

MODEL = ["--head-dim", "64", "--vocab", "256"]
DEPTH, SEQ = 2, 64


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_probe() -> dict:
    cmd = [sys.executable, "-m", "engine.cli", "probe", "--device", "cpu", "--depths", str(DEPTH), "--seqs", str(SEQ),
           *MODEL, "--steps", "3", "--json"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(ps))
        time.sleep(0.05)
    wall_s = time.perf_counter() - t0
    row = json.loads(proc.stdout.read())["results"][0]
    if row["status"] != "ok":
        raise SystemExit(f"probe failed: {row}")
    return {"wall_s": wall_s, "peak_tree_rss_bytes": peak, "device_batch": row["device_batch"], "tok_per_s": row["tok_per_s"]}


def run_train(device_batch: int, steps: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "engine.cli", "train", "--device", "cpu", "--depth", str(DEPTH), "--seq", str(SEQ),
               *MODEL, "--device-batch", str(device_batch), "--steps", str(steps), "--log-every", "5",
               "--eval-every", str(10 * steps), "--ckpt-every", str(10 * steps), "--run-dir", str(run)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=600)
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    rates = [r["tok_per_s"] for r in rows[2:-1]]  # past warm-up; the last line's window holds the final eval
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--train-steps", type=int, default=120)
    args = ap.parse_args()
    ratios, probes = [], []
    for i in range(args.trials):
        p = run_probe()
        train = run_train(p["device_batch"], args.train_steps)
        probes.append(p)
        ratios.append(p["tok_per_s"] / train)
        print(f"trial {i + 1}: probe {p['wall_s']:.1f} s wall, peak RSS {p['peak_tree_rss_bytes'] / 1e6:.0f} MB, "
              f"batch {p['device_batch']}, {p['tok_per_s']:,.0f} tok/s; lsdt train {train:,.0f} tok/s; "
              f"ratio {p['tok_per_s'] / train:.3f}", flush=True)
    print(f"probe wall median {statistics.median(p['wall_s'] for p in probes):.1f} s, "
          f"peak RSS max {max(p['peak_tree_rss_bytes'] for p in probes) / 1e6:.0f} MB, "
          f"probe/train tok/s median {statistics.median(ratios):.3f} (target 0.90-1.10)")


if __name__ == "__main__":
    main()
