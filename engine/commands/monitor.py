"""`lsdt monitor [RUN] [--once] [--json] [--source S] [--export DIR --to csv|tensorboard]`: a run's
latest metrics and the machine's GPU state.

The run is read through engine.runtime.monitor's readers: an LSDT run dir, a Hugging Face Trainer
dir, a Lightning CSVLogger dir, TensorBoard event files, or a CSV/JSONL file (detected; `--source`
forces one). Without RUN, the newest run under $LSDT_RUNS_DIR and ./runs (the machine alone when
there is none). The machine comes from engine.runtime.monitor.telemetry (NVML + psutil). Torch-free.
Without --once it re-prints every --interval seconds until Ctrl-C (with --json: one JSON object per
line). `--export DIR --to csv|tensorboard` writes the run out for other tools and exits. The full
live view (charts) is the TUI's Monitor tab.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from engine.commands.common import path_arg, positive_float, print_json, seconds
from engine.errors import UserError
from engine.runtime.monitor import telemetry
from engine.runtime.monitor.export import FORMATS, export
from engine.runtime.monitor.predicted import write_calibration
from engine.runtime.monitor.reader import STALL_AFTER_S, RunReader
from engine.runtime.monitor.report import render, snapshot
from engine.runtime.monitor.runs import SOURCES, newest_run, open_run, runs_roots
from engine.runtime.monitor.table import parse_columns


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", nargs="?", type=path_arg, metavar="RUN",
                   help="a run: an LSDT/HF Trainer/Lightning/TensorBoard dir or a CSV/JSONL file "
                        "(omit for the newest run under $LSDT_RUNS_DIR and ./runs)")
    p.add_argument("--source", choices=SOURCES, help="read RUN as this kind instead of detecting it")
    p.add_argument("--columns", metavar="SERIES=COL,...", help="for a CSV/JSONL file: which column is which "
                   "series, e.g. step=iter,loss=train_loss")
    p.add_argument("--stall-after", type=positive_float, default=STALL_AFTER_S / 60, metavar="MIN",
                   help="a run with no new data for this long is stalled (default %(default)g min)")
    p.add_argument("--export", type=path_arg, metavar="DIR", help="write the run's metrics into DIR and exit")
    p.add_argument("--to", choices=FORMATS, default="csv", help="--export format (default %(default)s)")
    p.add_argument("--calibration-out", type=path_arg, metavar="FILE.json",
                   help="write the run's measured tok/s as a probe file for `lsdt plan --calibrate` and exit")
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


def open_reader(args: argparse.Namespace) -> RunReader | None:
    columns = parse_columns(args.columns)
    if args.run_dir:
        return open_run(args.run_dir, args.source, columns)
    newest = newest_run(runs_roots())
    if newest is None:
        if args.export:
            raise UserError(f"--export: no run given and none found in {', '.join(map(str, runs_roots()))}")
        return None
    return open_run(newest, args.source, columns)


def run(args: argparse.Namespace) -> int:
    reader = open_reader(args)
    if args.calibration_out:
        reader.read_all()
        out = write_calibration(reader, args.calibration_out)
        print(f"wrote {out}: lsdt plan --calibrate {out} (or lsdt predict --calibrate)")
        return 0
    if args.export:
        out = export(reader.read_all(), args.export, args.to)
        print(f"wrote {out} ({reader.n_records:,} records from {reader.label} {reader.path})")
        return 0
    stall_after_s = args.stall_after * 60
    sampler = telemetry.Sampler(interval_s=args.interval, history=1)
    if args.once:
        snap = snapshot(reader, sampler, window_s=0.2, stall_after_s=stall_after_s)
        if args.json:
            print_json(snap)
        else:
            print(render(snap))
        return 0
    clear = sys.stdout.isatty() and not args.json
    try:
        sampler.prime()
        while True:
            _show(snapshot(reader, sampler, stall_after_s=stall_after_s), args.json, clear)
            if not clear and not args.json:
                print("--- Ctrl-C to quit", flush=True)
            time.sleep(args.interval)
    except KeyboardInterrupt:  # the normal way out of a live view
        return 0
