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
from dataclasses import asdict
from pathlib import Path

from engine import fmt
from engine.commands.common import path_arg, positive_float, print_json
from engine.errors import UserError
from engine.runtime.monitor import telemetry
from engine.runtime.monitor.export import FORMATS, export
from engine.runtime.monitor.predicted import compare, write_calibration
from engine.runtime.monitor.reader import STALL_AFTER_S, RunReader
from engine.runtime.monitor.runs import SOURCES, newest_run, open_run, runs_roots
from engine.runtime.monitor.table import parse_columns
from engine.runtime.train import rundir


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
    p.add_argument("--interval", type=positive_float, default=2.0, metavar="S", help="refresh period (default %(default)g s)")


def check_run_dir(path: str) -> Path:
    """A path the Monitor can read (any known source), or a one-line UserError saying what is accepted."""
    return open_run(path).path


def run_snapshot(reader: RunReader, stall_after_s: float = STALL_AFTER_S) -> dict:
    """What the run's files say now: its source, state and last metrics (and last val_loss, which
    is only on eval steps, so usually not on the last line). Reads what arrived since the last call."""
    reader.read_all()
    last_val = reader.last_val
    status = reader.status(stall_after_s)
    return {
        "dir": str(reader.path),
        "source": reader.source,
        **asdict(status),
        "val_loss": None if last_val is None else last_val["val_loss"],
        "val_step": None if last_val is None else last_val.get("step"),
        "n_metrics": reader.n_records,
        "checkpoints": [p.name for p in rundir.list_checkpoints(reader.path)] if reader.source == "lsdt" else [],
        "problems": list(reader.problems),
        "model": compare(reader).to_dict(),
    }


def snapshot(reader: RunReader | None, sampler: telemetry.Sampler, window_s: float = 0.0,
             stall_after_s: float = STALL_AFTER_S) -> dict:
    """The run and the machine now. `window_s` > 0 first opens a CPU % window of that length (a
    one-shot needs it; a refresh loop's previous sample already opened one)."""
    run = run_snapshot(reader, stall_after_s) if reader else None
    # Watch the training process only while it runs on this host (a finished run's PID may be reused).
    pid = run["pid"] if run and run["state"] == "running" else None
    if pid != sampler.pid or window_s > 0:
        sampler.pid = pid
        sampler.prime()
        time.sleep(window_s)
    return {"run": run, "machine": sampler.sample_now().to_dict()}


def _ago(t: float | None) -> str:
    return "n/a" if t is None else f"{fmt.duration(max(0.0, time.time() - t))} ago"


def _num(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def render_run(run: dict) -> list[str]:
    state = run["state"]
    running = f"running (pid {run['pid']})" if run["pid"] else "running (new data within --stall-after)"
    head = {"running": running, "not_started": "not started (no start event yet)",
            "unknown": "started on another host (state unknown from here)"}.get(state, state)
    if state == "stalled" or run["reason"] == "no_new_data":  # a foreign run: the message says how long
        head += f": {run['message']}"
    elif state in ("ended", "failed", "gone"):
        head += f": {run['reason'] or 'no reason given'}"
        if run["message"]:
            head += f" - {run['message']}"
        head += f" ({_ago(run['ended_at'])})" if run["ended_at"] else ""
    elif run["started_at"]:
        head += f", started {_ago(run['started_at'])}"
    source = f"[{run['source']}] " if run.get("source") not in (None, "lsdt") else ""
    lines = [f"run      {source}{run['dir']}  {head}"]
    lines += [f"problem  {p}" for p in run.get("problems", ())]
    m = run["last_metrics"]
    if not m:
        lines.append("step     no metrics yet")
        return lines
    val = "n/a" if run["val_loss"] is None else f"{run['val_loss']:.4f} (step {run['val_step']:,})"
    lines += [
        f"step     {m.get('step', 0):,}   loss {_num(m.get('loss'), '.4f')}   val_loss {val}   lr {_num(m.get('lr'), '.3g')}"
        f"   ({_ago(m.get('time'))})",
        f"speed    {fmt.si(m.get('tok_per_s'), 'tok/s')}   MFU {fmt.pct(m.get('mfu'))}   tokens {fmt.count(m.get('tokens'))}",
        f"VRAM     alloc {fmt.gb(m.get('vram_alloc_bytes'), 2)}   peak {fmt.gb(m.get('vram_peak_bytes'), 2)}",
    ]
    if run["checkpoints"]:
        lines.append(f"ckpt     {len(run['checkpoints'])} kept, last {run['checkpoints'][-1]}")
    if run.get("model"):
        lines.append("model    " + render_comparison(run["model"]))
    return lines


def render_comparison(c: dict) -> str:
    """Predicted beside measured, one line (per GPU)."""
    p, m = c["predicted"], c["measured"]
    if p is None:
        return f"predicted {c['why_na']}"
    return (f"predicted {fmt.si(p['tok_per_s'], 'tok/s')} MFU {fmt.pct(p['mfu'])} mem {fmt.gb(p['memory_bytes'], 1)}   "
            f"measured {fmt.si(m['tok_per_s'], 'tok/s')} MFU {fmt.pct(m['mfu'])} peak {fmt.gb(m['memory_bytes'], 1)}   (per GPU)")


def render_machine(machine: dict) -> list[str]:
    lines = []
    p = machine["process"]
    if p is not None:
        if p["alive"]:
            gpu_mem = f", GPU mem {fmt.gb(p['gpu_memory_bytes'], 2)}" if p["gpu_memory_bytes"] is not None else ""
            lines.append(f"process  pid {p['pid']} {p['name'] or ''}: CPU {_num(p['cpu_pct'], '.0f')}%, "
                         f"RSS {fmt.gb(p['rss_bytes'], 2)}{gpu_mem}")
        else:
            lines.append(f"process  pid {p['pid']} is gone")
    if machine["gpu_error"]:
        lines.append(f"GPU      {machine['gpu_error']}")
    for g in machine["gpus"]:
        used, total = g["memory_used_bytes"], g["memory_total_bytes"]
        mem = "n/a" if used is None or total is None else f"{used / 1e9:.1f}/{total / 1e9:.1f} GB"
        power = f"{_num(g['power_w'], '.0f')} W / {_num(g['power_limit_w'], '.0f')} W"
        lines.append(
            f"GPU {g['index']:<4} {g['name'] or 'n/a'}: util {_num(g['utilization_pct'], '.0f')}%, mem {mem}, {power}, "
            f"{_num(g['temperature_c'], '.0f')} C, SM {_num(g['sm_clock_mhz'], 'd')} MHz, mem {_num(g['mem_clock_mhz'], 'd')} MHz"
        )
        for proc in g["processes"]:
            command = f"  {proc['command'][:100]}" if proc.get("command") else ""
            lines.append(f"           pid {proc['pid']} {proc['name'] or '?'} {fmt.gb(proc['used_memory_bytes'], 2)}{command}")
    if machine["driver_version"]:
        lines.append(f"driver   {machine['driver_version']}")
    h = machine["host"]
    lines.append(f"host     CPU {h['cpu_pct']:.0f}% of {h['cpu_count']} cores, RAM {h['ram_used_bytes'] / 1e9:.1f}/"
                 f"{h['ram_total_bytes'] / 1e9:.1f} GB")
    return lines


def render(snap: dict) -> str:
    return "\n".join((render_run(snap["run"]) if snap["run"] else []) + render_machine(snap["machine"]))


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
