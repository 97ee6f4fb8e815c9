#!/usr/bin/env python3
"""Does a probe predict training speed? Probe tok/s vs a 300-step `lsdt train` run of the same config.

Target (issue #6, on an H100): the probe's tok/s within 3% of the run's. Both use the same model
(band_spec), the same TrainStep, device batch and grad_accum 1 (the probe runs one micro-batch per
optimizer step; the run is told --grad-accum 1 to match). The run's speed is taken from its
metrics.jsonl between step 50 and its last logged step (tokens / wall time, so warm-up and
compilation are excluded); eval is pushed past the end so it never runs inside the window.

CUDA: nanochat-d12 shape (depth 12, head_dim 128, vocab 65536) at seq 2048, batch 16.
CPU (no GPU): a tiny shape (depth 2, head_dim 16, vocab 256, seq 64, batch 8), to show the path;
on a shared 2-core CPU the figure is noisy and is not the GPU target.

Run once from the repository root: `python benchmarks/probe_vs_train.py [--device cpu|cuda] [--compile]`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = 0.03
SKIP_STEPS = 50  # steps excluded from the run's window (warm-up, allocator, compile)

GPU = {"depth": 12, "head_dim": 128, "vocab": 65536, "seq": 2048, "batch": 16}
CPU = {"depth": 2, "head_dim": 16, "vocab": 256, "seq": 64, "batch": 8}


def has_cuda() -> bool:
    code = "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def lsdt(*args: str) -> None:
    r = subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True, cwd=REPO)
    if r.returncode != 0:
        sys.exit(f"lsdt {args[0]} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--steps", type=int, default=300)
    args = p.parse_args()
    device = ("cuda" if has_cuda() else "cpu") if args.device == "auto" else args.device
    c = GPU if device == "cuda" else CPU
    shape = ["--head-dim", str(c["head_dim"]), "--vocab", str(c["vocab"])]
    extra = ["--compile"] if args.compile else []
    with tempfile.TemporaryDirectory() as tmp:
        probe_out = Path(tmp) / "probe.json"
        lsdt("probe", "--depths", str(c["depth"]), "--seqs", str(c["seq"]), *shape, "--device", device,
             "--max-batch", str(c["batch"]), "--batch-tokens", str(c["batch"] * c["seq"]), "--out", str(probe_out), *extra)
        row = json.loads(probe_out.read_text())["results"][0]
        if row["status"] != "ok":
            sys.exit(f"probe: {row['status']}: {row.get('error')}")
        run_dir = Path(tmp) / "run"
        lsdt("train", "--depth", str(c["depth"]), *shape, "--seq", str(c["seq"]), "--device-batch", str(row["device_batch"]),
             "--grad-accum", "1", "--steps", str(args.steps), "--device", device, "--run-dir", str(run_dir),
             "--eval-every", str(10 * args.steps), "--ckpt-every", str(10 * args.steps), "--log-every", "10", *extra)
        metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    window = [m for m in metrics if m["step"] >= SKIP_STEPS]
    first, last = window[0], window[-1]
    train_tok_s = (last["tokens"] - first["tokens"]) / (last["time"] - first["time"])
    ratio = row["tok_per_s"] / train_tok_s
    print(f"device {row['device']!r} (profile {row['hardware']}); d{c['depth']} seq {c['seq']} head_dim {c['head_dim']} "
          f"vocab {c['vocab']} batch {row['device_batch']}{' compiled' if args.compile else ''}")
    print(f"probe: {row['tok_per_s']:,.0f} tok/s ({row['steps']} timed steps); MFU {row['mfu']}")
    print(f"train: {train_tok_s:,.0f} tok/s (steps {first['step']}-{last['step']} of {args.steps})")
    print(f"probe / train = {ratio:.3f} (target within {TARGET:.0%} on an H100: "
          f"{'met' if abs(ratio - 1) <= TARGET else 'missed'}{'' if device == 'cuda' else '; CPU figure, not the GPU target'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
