"""A stand-in trainer: writes a run directory in the documented schema (engine.runtime.train.rundir)
at a fixed rate, from a separate process, so the TUI is tested against "a run someone else wrote".

    python tests/tui_live/run_writer.py RUN_DIR [--rate 20] [--lines N] [--end completed]

Without --lines it writes until killed (no end event: the TUI must notice the process is gone).
With --end it writes that end event after the last line.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from engine.runtime.train.rundir import RunWriter  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("run_dir")
    p.add_argument("--rate", type=float, default=20.0, help="metric lines per second")
    p.add_argument("--lines", type=int, default=0, help="0 = until killed")
    p.add_argument("--end", default=None, help="end reason written after --lines")
    p.add_argument("--eval-every", type=int, default=50)
    args = p.parse_args()
    w = RunWriter(args.run_dir)
    w.write_config({"model": {"name": "fake", "n_layer": 1}, "steps": args.lines or 10**9, "writer": "run_writer.py"})
    w.event("start", step=0, params=1000, device="cpu")
    t0 = time.monotonic()
    step = 0
    while not args.lines or step < args.lines:
        step += 1
        rec = {"step": step, "time": time.time(), "loss": 5.0 * math.exp(-step / 300) + 0.1 * math.sin(step),
               "lr": 1e-3, "tokens": step * 2048, "tok_per_s": 40_000 + 1000 * math.sin(step / 7), "mfu": None,
               "vram_alloc_bytes": None, "vram_peak_bytes": None, "eta_s": 1.0}
        if step % args.eval_every == 0:
            rec["val_loss"] = rec["loss"] + 0.05
            w.event("eval", step=step, val_loss=rec["val_loss"])
        w.metric(rec)
        sleep = t0 + step / args.rate - time.monotonic()
        if sleep > 0:
            time.sleep(sleep)
    if args.end:
        w.event("end", reason=args.end, step=step, message=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
