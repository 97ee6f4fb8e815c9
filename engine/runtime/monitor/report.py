"""A run directory and the machine, as one snapshot and as the text `lsdt monitor` prints.

The CLI (engine/commands/monitor.py) and the TUI (app/widgets/run_view.py, `lsdt-tui --monitor`)
both show this text, so the two views agree. Torch-free.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from engine import fmt
from engine.errors import UserError
from engine.runtime.monitor import telemetry
from engine.runtime.train import rundir


def check_run_dir(path: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"{path}: no such directory")
    if not p.is_dir():
        raise UserError(f"{path}: not a directory; accepted: a run directory (config.toml, metrics.jsonl, events.jsonl)")
    if not rundir.is_run_dir(p):
        raise UserError(f"{path}: not a run directory (none of {rundir.CONFIG_FILE}, {rundir.METRICS_FILE}, {rundir.EVENTS_FILE})")
    return p


def run_snapshot(run_dir: Path) -> dict:
    """What the run's files say now: its state and its last metrics (and last val_loss, which is
    only on eval steps, so usually not on the last line)."""
    metrics = rundir.read_metrics(run_dir)
    status = rundir.run_status(run_dir, metrics=metrics)
    last_val = next((m for m in reversed(metrics) if m.get("val_loss") is not None), None)
    return {
        "dir": str(run_dir),
        **asdict(status),
        "val_loss": None if last_val is None else last_val["val_loss"],
        "val_step": None if last_val is None else last_val.get("step"),
        "n_metrics": len(metrics),
        "checkpoints": [p.name for p in rundir.list_checkpoints(run_dir)],
    }


def snapshot(run_dir: Path | None, sampler: telemetry.Sampler, window_s: float = 0.0) -> dict:
    """The run and the machine now. `window_s` > 0 first opens a CPU % window of that length (a
    one-shot needs it; a refresh loop's previous sample already opened one)."""
    run = run_snapshot(run_dir) if run_dir else None
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
    head = {"running": f"running (pid {run['pid']})", "not_started": "not started (no start event yet)",
            "unknown": "started on another host (state unknown from here)"}.get(state, state)
    if state in ("ended", "failed", "gone"):
        head += f": {run['reason'] or 'no reason given'}"
        if run["message"]:
            head += f" - {run['message']}"
        head += f" ({_ago(run['ended_at'])})" if run["ended_at"] else ""
    elif run["started_at"]:
        head += f", started {_ago(run['started_at'])}"
    lines = [f"run      {run['dir']}  {head}"]
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
    return lines


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
            lines.append(f"           pid {proc['pid']} {proc['name'] or '?'} {fmt.gb(proc['used_memory_bytes'], 2)}")
    if machine["driver_version"]:
        lines.append(f"driver   {machine['driver_version']}")
    h = machine["host"]
    lines.append(f"host     CPU {h['cpu_pct']:.0f}% of {h['cpu_count']} cores, RAM {h['ram_used_bytes'] / 1e9:.1f}/"
                 f"{h['ram_total_bytes'] / 1e9:.1f} GB")
    return lines


def render(snap: dict) -> str:
    return "\n".join((render_run(snap["run"]) if snap["run"] else []) + render_machine(snap["machine"]))
