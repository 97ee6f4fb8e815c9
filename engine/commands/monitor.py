"""`lsdt monitor [RUN_DIR] [--once] [--json]`: a run's latest metrics and the machine's GPU state.

The run is read through engine.runtime.train.rundir (any trainer writing that schema can be watched);
the machine through engine.runtime.monitor.telemetry (NVML + psutil). Torch-free. Without --once it
re-prints every --interval seconds until Ctrl-C (with --json: one JSON object per line). The full
live view (charts) is the TUI's Monitor tab.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from engine.commands.common import path_arg, print_json, seconds
from engine.runtime.monitor import telemetry
from engine.runtime.monitor.report import check_run_dir, render, snapshot


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", nargs="?", type=path_arg, metavar="RUN_DIR", help="a run directory (omit for the machine only)")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.add_argument("--json", action="store_true", help="JSON: one object (--once) or one per line")
    p.add_argument("--interval", type=seconds, default=2.0, metavar="S", help="refresh period (default %(default)g s)")


def _show(snap: dict, as_json: bool, clear: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(snap, allow_nan=False, default=str) + "\n")
    else:
        if clear:
            sys.stdout.write("\x1b[H\x1b[2J")  # home + clear screen (ANSI), only on a terminal
        sys.stdout.write(render(snap) + "\n")
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    run_dir = check_run_dir(args.run_dir) if args.run_dir else None
    sampler = telemetry.Sampler(interval_s=args.interval, history=1)
    if args.once:
        snap = snapshot(run_dir, sampler, window_s=0.2)
        if args.json:
            print_json(snap)
        else:
            print(render(snap))
        return 0
    clear = sys.stdout.isatty() and not args.json
    try:
        sampler.prime()
        while True:
            _show(snapshot(run_dir, sampler), args.json, clear)
            if not clear and not args.json:
                print("--- Ctrl-C to quit", flush=True)
            time.sleep(args.interval)
    except KeyboardInterrupt:  # the normal way out of a live view
        return 0
