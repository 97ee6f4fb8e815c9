"""The run directory: the one contract between a training run and whatever watches it (torch-free).

A run directory holds

    config.toml       the fully resolved configuration (written once, atomically, at start)
    metrics.jsonl     one JSON object per logged step (keys in METRIC_KEYS; `val_loss` on eval steps)
    events.jsonl      one JSON object per event: start, resume, checkpoint_skipped, stale_tmp_removed, eval,
                      checkpoint, error, end
    checkpoints/      step_XXXXXXXX.pt files (+ .sha256), atomic writes, the last 3 kept; bad ones moved
                      aside as *.corrupt
    run.lock          held (flock) by the one process writing the run (engine/runtime/train/runlock.py)

Any trainer that writes this schema can be watched by `lsdt monitor` and the TUI, whoever launched it
(docs/runtime.md documents every key). Lines are appended with one write() each, so a reader sees
whole lines, except possibly a last line still being written: readers skip it until it is complete.
This module imports only the standard library (and tomli_w to write TOML): the TUI imports it.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.atomic import write_atomic
from engine.errors import UserError
from engine.specs import read_toml

CONFIG_FILE = "config.toml"
METRICS_FILE = "metrics.jsonl"
EVENTS_FILE = "events.jsonl"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_NAME = re.compile(r"step_(\d{8,})\.pt")  # the step, zero-padded to 8 digits (more past 99,999,999)

# Keys every metrics line carries (values may be null where unknown: mfu off a known GPU, VRAM on CPU).
METRIC_KEYS = ("step", "time", "loss", "lr", "tokens", "tok_per_s", "mfu", "vram_alloc_bytes", "vram_peak_bytes")
EVENT_KINDS = ("start", "resume", "checkpoint_skipped", "stale_tmp_removed", "eval", "checkpoint", "error", "end")
END_REASONS = ("completed", "time_limit", "signal", "nan_loss", "error")


# --------------------------------------------------------------------------- writing


def _json_line(record: dict) -> bytes:
    """One JSON line; non-finite floats become null (JSON has no NaN; readers must not choke)."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
    return (json.dumps(clean, separators=(",", ":"), allow_nan=False, default=str) + "\n").encode("utf-8")


def _toml_ready(value: Any) -> Any:
    """TOML has no null: drop None values (a reader treats a missing key as unknown)."""
    if isinstance(value, dict):
        return {k: _toml_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_toml_ready(v) for v in value if v is not None]
    return value


class RunWriter:
    """Appends metrics and events to a run directory (rank 0 of a run only)."""

    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        try:
            (self.run_dir / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"--run-dir {self.run_dir}: cannot create ({exc.strerror})") from None

    def write_config(self, config: dict) -> Path:
        import tomli_w

        return write_atomic(self.run_dir / CONFIG_FILE, tomli_w.dumps(_toml_ready(config)))

    def _append(self, name: str, record: dict) -> None:
        # O_APPEND + a single write: concurrent readers see whole lines (POSIX append semantics).
        path = self.run_dir / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)  # the umask decides
            try:
                os.write(fd, _json_line(record))
            finally:
                os.close(fd)
        except OSError as exc:  # a full disk: one line naming the file, not a traceback
            raise UserError(f"{path}: cannot write ({exc.strerror})") from None

    def metric(self, record: dict) -> None:
        missing = [k for k in METRIC_KEYS if k not in record]
        if missing:
            raise ValueError(f"metrics record lacks {missing}")
        self._append(METRICS_FILE, record)

    def event(self, kind: str, **fields: Any) -> dict:
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event {kind!r}; accepted: {', '.join(EVENT_KINDS)}")
        record = {"event": kind, "time": time.time(), **fields}
        if kind == "start":
            record.setdefault("pid", os.getpid())
            record.setdefault("host", socket.gethostname())
        self._append(EVENTS_FILE, record)
        return record

    def resume_event(self, step: int, checkpoint: str | None) -> None:
        """The "resume" event of a --resume: the checkpoint continued from, or None when none was usable."""
        self.event("resume", step=step, checkpoint=checkpoint,
                   message=None if checkpoint else "no usable checkpoint: starting from step 0")

    def checkpoint_events(self, completed) -> None:
        """One "checkpoint" event per (step, path) that checkpoint.CheckpointWriter.completed() returned."""
        for step, path in completed:
            self.event("checkpoint", step=step, path=str(path))


# --------------------------------------------------------------------------- reading


def _finite_or_none(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


def _parse_lines(data: bytes) -> tuple[list[dict], int]:
    """Complete JSON lines of `data` and the number of bytes they span (a partial tail is left)."""
    records: list[dict] = []
    end = data.rfind(b"\n") + 1
    for raw in data[:end].splitlines():
        if not raw.strip():
            continue
        try:
            # NaN/Infinity (Python's json writes them) and overflowing numbers read as null, as
            # LSDT's writer stores them: `lsdt monitor --json` raised on a NaN from another tool.
            obj = json.loads(raw, parse_constant=lambda _: None, parse_float=_finite_or_none)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            continue  # a line torn by a crash mid-write (or absurdly nested): skip it, keep the rest
        if isinstance(obj, dict):
            records.append(obj)
    return records, end


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Every complete record of a JSONL file ([] when it does not exist yet)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    return _parse_lines(data)[0]


class JsonlTail:
    """Incremental reader: each `poll()` returns the records appended since the last one.

    A partial last line is held back until its newline arrives. A file that shrank (rewritten or
    truncated) is read again from the start.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.offset = 0

    def poll(self, max_bytes: int = 16 * 1024 * 1024) -> list[dict]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self.offset:
            self.offset = 0
        if size == self.offset:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(max_bytes)
        records, used = _parse_lines(data)
        self.offset += used
        return records


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    return read_jsonl(Path(run_dir) / METRICS_FILE)


def read_events(run_dir: str | os.PathLike) -> list[dict]:
    return read_jsonl(Path(run_dir) / EVENTS_FILE)


def read_config(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / CONFIG_FILE
    if not path.exists():
        raise UserError(f"{path}: no such file (not a run directory, or the run has not started)")
    return read_toml(path)  # every other failure (a directory, no permission, bad UTF-8/TOML): one line too


def is_run_dir(path: str | os.PathLike) -> bool:
    p = Path(path)
    return p.is_dir() and any((p / n).exists() for n in (CONFIG_FILE, METRICS_FILE, EVENTS_FILE))


def checkpoint_steps(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint file (checkpoints/step_XXXXXXXX.pt), newest first."""
    d = Path(run_dir) / CHECKPOINT_DIR
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := CHECKPOINT_NAME.fullmatch(p.name))]
    return sorted(found, reverse=True)


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Checkpoint files, oldest step first."""
    return [p for _, p in reversed(checkpoint_steps(run_dir))]


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is gone for our purposes
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@dataclass
class RunStatus:
    """How a run stands.

    state: "not_started" (no start event) | "running" | "ended" (end event; see `reason`) |
    "failed" (error event) | "gone" (started here, no end event, process no longer exists) |
    "unknown" (started on another host, no end event: cannot tell from here).
    """

    state: str
    reason: str | None = None
    message: str | None = None
    pid: int | None = None
    last_step: int | None = None
    last_metrics: dict = field(default_factory=dict)
    started_at: float | None = None
    ended_at: float | None = None


def run_status(run_dir: str | os.PathLike, events: list[dict] | None = None, metrics: list[dict] | None = None) -> RunStatus:
    events = read_events(run_dir) if events is None else events
    metrics = read_metrics(run_dir) if metrics is None else metrics
    last = metrics[-1] if metrics else {}
    starts = [e for e in events if e.get("event") == "start"]
    base = dict(last_step=last.get("step"), last_metrics=last)
    if not starts:
        return RunStatus("not_started", **base)
    start = starts[-1]
    after = events[events.index(start):]
    pid = start.get("pid")
    common = dict(pid=pid, started_at=start.get("time"), **base)
    errors = [e for e in after if e.get("event") == "error"]
    ends = [e for e in after if e.get("event") == "end"]
    if ends:
        end = ends[-1]
        state = "failed" if errors or end.get("reason") in ("error", "nan_loss") else "ended"
        msg = errors[-1].get("message") if errors else end.get("message")
        return RunStatus(state, end.get("reason"), msg, ended_at=end.get("time"), **common)
    if errors:
        return RunStatus("failed", "error", errors[-1].get("message"), ended_at=errors[-1].get("time"), **common)
    if start.get("host") not in (None, socket.gethostname()) or not isinstance(pid, int):
        return RunStatus("unknown", **common)
    if _process_alive(pid):
        return RunStatus("running", **common)
    return RunStatus("gone", "process_gone", f"process {pid} exited without an end event (killed or crashed)", **common)


def export_csv(run_dir: str | os.PathLike, out_path: str | os.PathLike | None = None) -> Path:
    """metrics.jsonl as CSV (columns: METRIC_KEYS first, then any other key in order of appearance)."""
    run_dir = Path(run_dir)
    rows = read_metrics(run_dir)
    if not rows and not (run_dir / METRICS_FILE).exists():
        raise UserError(f"{run_dir / METRICS_FILE}: no such file (not a run directory?)")
    columns = list(METRIC_KEYS)
    for row in rows:
        columns += [k for k in row if k not in columns]
    out = Path(out_path) if out_path else run_dir / "metrics.csv"
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return write_atomic(out, buf.getvalue())
