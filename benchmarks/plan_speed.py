#!/usr/bin/env python3
"""Foundation targets: `lsdt plan` wall time (< 0.3 s) and auto-size up to ~100,000 devices in the engine (< 0.1 s).

Prints the median of repeated runs. Run from the repository root with the project installed.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.sizing.design import run_design  # noqa: E402
from engine.sizing.physics import physics  # noqa: E402
from engine.specs import Goal, load_hardware, load_model  # noqa: E402


def wall_plan(runs: int = 15, extra: tuple[str, ...] = ()) -> float:
    exe = shutil.which("lsdt") or str(Path(sys.executable).parent / "lsdt")
    cmd = [exe, "plan", "--model", "llama-13b", "--hardware", "a100-80g-sxm", *extra]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def engine_auto_size(runs: int = 50) -> tuple[float, int]:
    # llama3-405b, 30T tokens in 30 days, 64M-token batches: the answer is an ~86,000-GPU cluster.
    b = physics(load_model("llama3-405b"), load_hardware("h100-sxm"),
                Goal(tokens=30e12, deadline_s=30 * 86400, global_batch_tokens=8192 * 8192))
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        r = run_design(b)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), r["solution"]["G"]


if __name__ == "__main__":
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"lsdt plan (llama-13b, a100-80g-sxm) wall, median of 15: {wall_plan() * 1e3:.0f} ms  (target < 300 ms)")
    # --objective cost compares every cluster size up to 8x the smallest (engine/sizing/objective.py).
    print(f"lsdt plan --objective cost, same model, wall, median of 5: {wall_plan(5, ('--objective', 'cost')) * 1e3:.0f} ms")
    t, G = engine_auto_size()
    print(f"run_design auto-size, llama3-405b -> G = {G:,}, median of 50: {t * 1e3:.2f} ms  (target < 100 ms)")
