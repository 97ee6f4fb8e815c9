#!/usr/bin/env python3
"""Wall time of a 15-config `lsdt probe` sweep (target: < 5 min on an H100 for the seed's M0 grid).

On CUDA it runs the seed's grid: depths 12,14,16,18,20 x seqs 512,1024,2048, 30 timed steps after
5 warm-up (the `lsdt probe` defaults). Without a GPU it runs a tiny 15-config grid on the CPU
(depths 1-5 x seqs 32,64,128, head_dim 16, vocab 256, 3 steps after 1 warm-up, batch <= 8) and
says that the GPU figure is unmeasured: the CPU time shows the per-config overhead (a fresh
Python + torch process per config) and that the whole path works, not the H100 number.

Run once from the repository root: `python benchmarks/probe_sweep.py [--device cpu|cuda]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_S = 300.0  # issue #6: "a 15-config probe sweep in < 5 minutes" (H100)

GPU_ARGS = ["--depths", "12,14,16,18,20", "--seqs", "512,1024,2048"]
CPU_ARGS = ["--depths", "1,2,3,4,5", "--seqs", "32,64,128", "--head-dim", "16", "--vocab", "256",
            "--steps", "3", "--warmup", "1", "--max-batch", "8"]


def has_cuda() -> bool:
    code = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args = p.parse_args()
    device = ("cuda" if has_cuda() else "cpu") if args.device == "auto" else args.device
    grid = GPU_ARGS if device == "cuda" else CPU_ARGS
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "probe.json"
        cmd = [sys.executable, "-m", "engine.cli", "probe", *grid, "--device", device, "--jsonl", "--out", str(out)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        wall_s = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return proc.returncode
        doc = json.loads(out.read_text())
    rows = doc["results"]
    per_config = [r.get("wall_s") or 0.0 for r in rows]
    timed = [r["step_time_s"] * (r.get("steps", 0) + r.get("warmup", 0)) for r in rows if r["status"] == "ok"]
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, device {doc['device']!r} (profile {doc['hardware']})")
    print(f"configs: {len(rows)} ({sum(r['status'] == 'ok' for r in rows)} ok, "
          f"{sum(r['status'] == 'oom' for r in rows)} oom, {sum(r['status'] == 'error' for r in rows)} error)")
    print(f"sweep wall time: {wall_s:.1f} s ({wall_s / len(rows):.2f} s per config; slowest config {max(per_config):.1f} s)")
    print(f"of which warm-up + timed steps: {sum(timed):.1f} s; the rest is process start, model build and batch search")
    if device == "cuda":
        verdict = "meets" if wall_s < TARGET_S else "MISSES"
        print(f"target < {TARGET_S:.0f} s on an H100: {verdict}")
    else:
        print(f"GPU figure (seed grid on an H100, target < {TARGET_S:.0f} s): unmeasured here (no GPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
