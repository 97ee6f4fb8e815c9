"""The one interface every run reader has, and what they share (torch-free: the TUI imports it).

A reader watches one run, whoever wrote it. `poll()` returns the metric records that arrived since
the last call, each a dict shaped like a line of LSDT's metrics.jsonl: `step`, `time` (Unix
seconds, None where the source has no wall clock), LSDT series names where the source's tag maps
to one (engine/runtime/monitor/tags.py), and every other tag under its own name. `poll` reads at
most `max_records` per call and sets `backlog` when more are waiting, so a viewer attached to a long
run draws its first frame at once and catches up slice by slice.

`status()` says how the run stands with rundir.RunStatus's states plus "stalled": for a source
with no end marker, "running" while data keeps arriving, "stalled" when none arrived for
`stall_after_s` but a process still writes there, "ended" when none did and nothing writes there.
`problems` holds one-line notes about what could not be read (a corrupt event file, a CSV that
lost a column); the reader keeps going with the rest.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

from engine import fmt
from engine.runtime.train.rundir import RunStatus

STALL_AFTER_S = 300.0  # no new data for 5 min: "stalled" (a slow eval or a checkpoint save is shorter)
WRITER_CHECK_S = 10.0  # a quiet run's writer process is looked for at most this often (a process scan)
DEFAULT_MAX_RECORDS = 20_000  # records per poll: one slice of a long run (~0.1-0.2 s of parsing)


class RunReader:
    """Base of the adapters (lsdt, tensorboard, hf, lightning, table). Subclasses set `source` and
    implement `_read(max_records)`; they may override `config()`, `events_since()` and `status()`."""

    source = "?"
    label = "?"  # what the user reads: "LSDT run dir", "TensorBoard events", ...

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.backlog = False
        self.problems: list[str] = []
        self.n_records = 0
        self.last: dict = {}  # the latest value of every series
        self.last_val: dict | None = None  # the latest record with a val_loss (eval steps only)
        self._writer: int | None = None
        self._writer_checked_at = float("-inf")
        # A run the TUI watches from its launch has no directory until the trainer makes it: only a
        # path seen once and gone since was "deleted while watched".
        self._seen = self.path.exists()

    # -- reading
    def poll(self, max_records: int = DEFAULT_MAX_RECORDS) -> list[dict]:
        if not self.path.exists():
            if self._seen:
                self.note(f"{self.path}: deleted while watched")
            return []
        self._seen = True
        records = self._read(max_records)
        if records:
            self.n_records += len(records)
            # The latest value of every series (sources that log one tag per record spread a step over
            # several records); the tail of the slice is enough, and keeps a catch-up slice cheap.
            for r in records[-64:]:
                self.last.update(r)
            self.last_val = next((r for r in reversed(records) if r.get("val_loss") is not None), self.last_val)
        return records

    def read_all(self) -> list[dict]:
        out: list[dict] = []
        while True:
            out += self.poll()
            if not self.backlog:
                return out

    def _read(self, max_records: int) -> list[dict]:
        raise NotImplementedError

    def note(self, problem: str) -> None:
        """Record a one-line problem once (a poll loop would otherwise repeat it twice a second)."""
        if problem not in self.problems:
            self.problems.append(problem)

    def events_since(self) -> list[dict]:
        """Run events (start, eval, checkpoint, end) that arrived since the last call; LSDT only."""
        return []

    def config(self) -> dict:
        """The run's configuration as the source stores it ({} when it stores none)."""
        return {}

    def files(self) -> list[Path]:
        """The files this reader follows (their mtimes say whether the run is still writing)."""
        return []

    # -- how the run stands
    def ended_marker(self) -> str | None:
        """A reason when the source itself says the run ended (HF: global_step reached max_steps)."""
        return None

    def newest_write(self) -> float | None:
        times = []
        for f in self.files():
            try:
                times.append(f.stat().st_mtime)
            except OSError:
                pass
        return max(times, default=None)

    def status(self, stall_after_s: float = STALL_AFTER_S, now: float | None = None, look_for_writer: bool = True) -> RunStatus:
        """`look_for_writer=False` (a list of many runs: no process scan per run) answers "idle"
        where the scan would tell stalled from ended."""
        now = time.time() if now is None else now
        base = dict(last_step=self.last.get("step"), last_metrics=dict(self.last))
        if not self.path.exists():
            if not self._seen:
                return RunStatus("not_started", **base)
            return RunStatus("gone", "deleted", f"{self.path} was deleted while watched", **base)
        written = self.newest_write()
        if written is None:
            return RunStatus("not_started", **base)
        idle_s = max(0.0, now - written)
        marker = self.ended_marker()
        if marker:
            return RunStatus("ended", marker, None, ended_at=written, **base)
        if idle_s < stall_after_s:
            return RunStatus("running", **base)
        if not look_for_writer:
            return RunStatus("idle", "no_new_data", f"no new data for {fmt.duration(idle_s)}", **base)
        if now - self._writer_checked_at > WRITER_CHECK_S:
            self._writer = writer_process(self.path, self.files())
            self._writer_checked_at = now
        writer = self._writer
        if writer is not None:
            return RunStatus("stalled", "no_new_data", f"no new data for {fmt.duration(idle_s)} (pid {writer} still open)",
                             pid=writer, **base)
        return RunStatus("ended", "no_new_data", f"no new data for {fmt.duration(idle_s)}, no process writing there",
                         ended_at=written, **base)


def writer_process(run_dir: Path, files: list[Path]) -> int | None:
    """A live process that holds one of `files` open or works in `run_dir` (its cwd), else None.

    Only asked once a run went quiet (a scan of every process costs ~10-50 ms). Processes of other
    users are skipped silently (psutil raises AccessDenied for them).
    """
    wanted = {str(f.resolve()) for f in files}
    try:
        root = str(run_dir.resolve())
    except OSError:
        return None
    me = os.getpid()
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        try:
            cwd = proc.cwd()
            if cwd == root or cwd.startswith(root + os.sep):
                return proc.pid
            if wanted and any(f.path in wanted for f in proc.open_files()):
                return proc.pid
        except (psutil.Error, OSError):
            continue
    return None
