#!/usr/bin/env python3
"""Issue #4 target: `lsdt bands` and `lsdt moe` answer in < 0.3 s wall (subprocess, as a user runs them).

Also times the engine calls the TUI makes (plan_bands, size_moe) and `lsdt bands` with a probe file and
a 20,000-line pilot metrics.jsonl. Prints medians. Run from the repository root with the project installed.
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.sizing.bands import plan_bands  # noqa: E402
from engine.sizing.moe import size_moe  # noqa: E402
from engine.sizing.pilot import read_metrics  # noqa: E402
from engine.specs import load_hardware, load_model  # noqa: E402

EXE = shutil.which("lsdt") or str(Path(sys.executable).parent / "lsdt")


def wall(args: list[str], runs: int = 15) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([EXE, *args], check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def engine(fn, runs: int = 50) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fixtures(tmp: Path) -> tuple[Path, Path]:
    probe = {"device": "NVIDIA GeForce RTX 4090", "hardware": "rtx4090", "results": [
        {"depth": d, "seq_len": s, "device_batch": 8, "tok_per_s": 4e13 / (d * d * 1e6), "step_time_s": 1.0,
         "peak_vram_bytes": 1e10, "mfu": 0.4, "status": "ok"} for d in (12, 14, 16, 18, 20) for s in (512, 1024, 2048)]}
    probe_path = tmp / "probe.json"
    probe_path.write_text(json.dumps(probe))
    rng = random.Random(0)
    pilot_path = tmp / "metrics.jsonl"
    with pilot_path.open("w") as fh:
        for i in range(1, 20_001):
            t = i * 0.54  # a 3 h pilot
            fh.write(json.dumps({"step": i, "time": t, "loss": 2.6 + 25 * t**-0.4 + rng.gauss(0, 0.05),
                                 "tokens": i * 32768, "tok_per_s": 60000.0}) + "\n")
    return probe_path, pilot_path


if __name__ == "__main__":
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as d:
        probe_path, pilot_path = fixtures(Path(d))
        print(f"lsdt bands (rtx4090, 24 h, 5 depths) wall, median of 15:   {wall(['bands']) * 1e3:.0f} ms  (target < 300 ms)")
        print(f"lsdt bands --json                       wall, median of 15:   {wall(['bands', '--json']) * 1e3:.0f} ms  (target < 300 ms)")
        t = wall(["bands", "--probe", str(probe_path), "--pilot", str(pilot_path)])
        print(f"lsdt bands --probe + 20,000-line --pilot wall, median of 15:  {t * 1e3:.0f} ms  (target < 300 ms)")
        print(f"lsdt moe (s7-moe-140m, a100-40g-sxm)    wall, median of 15:   {wall(['moe']) * 1e3:.0f} ms  (target < 300 ms)")
        print(f"lsdt moe --json                         wall, median of 15:   {wall(['moe', '--json']) * 1e3:.0f} ms  (target < 300 ms)")
        hw, s7, a100 = load_hardware("rtx4090"), load_model("s7-moe-140m"), load_hardware("a100-40g-sxm")
        records = read_metrics(pilot_path)
        print(f"engine plan_bands(rtx4090), median of 50:                    {engine(lambda: plan_bands(hw)) * 1e3:.2f} ms")
        print(f"engine plan_bands + 20,000-point pilot fit, median of 50:    "
              f"{engine(lambda: plan_bands(hw, pilot=records)) * 1e3:.2f} ms")
        print(f"engine size_moe(s7-moe-140m), median of 50:                  {engine(lambda: size_moe(s7, a100)) * 1e3:.2f} ms")
