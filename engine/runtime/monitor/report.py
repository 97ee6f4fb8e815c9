"""A run (any source the Monitor reads) and the machine, as one snapshot and as the text `lsdt monitor` prints.

The CLI (engine/commands/monitor.py) and the TUI (app/widgets/run_view.py, `lsdt-tui --monitor`)
both show this text, so the two views agree. Torch-free.
"""

from __future__ import annotations

import time
from dataclasses import asdict

from engine import fmt
from engine.runtime.monitor import telemetry
from engine.runtime.monitor.predicted import compare
from engine.runtime.monitor.reader import STALL_AFTER_S, RunReader
from engine.runtime.train import rundir


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
