"""LSDT's own run directories (config.toml, metrics.jsonl, events.jsonl), through engine.runtime.train.rundir."""

from __future__ import annotations

import os
from pathlib import Path

from engine.errors import UserError
from engine.runtime.monitor.reader import STALL_AFTER_S, RunReader
from engine.runtime.train import rundir
from engine.runtime.train.rundir import RunStatus

MAX_EVENTS = 5000  # events kept for run_status (a run writes a few per checkpoint interval)
BYTES_PER_RECORD = 200  # a metrics line is ~180 bytes: turns a record budget into a read size


def backlog(tail: rundir.JsonlTail, offset_before: int) -> bool:
    """More complete lines may be waiting: this poll made progress and the file goes on. (A torn
    last line that never completes, after a crash, is not a backlog: it would be polled forever.)"""
    try:
        return tail.offset > offset_before and tail.path.stat().st_size > tail.offset
    except FileNotFoundError:
        return False


class LsdtReader(RunReader):
    source = "lsdt"
    label = "LSDT run dir"

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        self.metrics = rundir.JsonlTail(self.path / rundir.METRICS_FILE)
        self.events = rundir.JsonlTail(self.path / rundir.EVENTS_FILE)
        self.all_events: list[dict] = []
        self._new_events: list[dict] = []

    @staticmethod
    def detect(path: Path) -> bool:
        return rundir.is_run_dir(path)

    def _read(self, max_records: int) -> list[dict]:
        budget = max(1 << 16, max_records * BYTES_PER_RECORD)
        before = self.metrics.offset
        records = self.metrics.poll(max_bytes=budget)
        self.backlog = backlog(self.metrics, before)
        events = self.events.poll()
        self._new_events += events
        self.all_events += events
        del self.all_events[:-MAX_EVENTS]
        return records

    def events_since(self) -> list[dict]:
        out, self._new_events = self._new_events, []
        return out

    def config(self) -> dict:
        try:
            return rundir.read_config(self.path)
        except UserError as exc:
            self.note(str(exc))
            return {}

    def files(self) -> list[Path]:
        return [self.path / n for n in (rundir.METRICS_FILE, rundir.EVENTS_FILE, rundir.CONFIG_FILE)]

    def status(self, stall_after_s: float = STALL_AFTER_S, now: float | None = None, look_for_writer: bool = True) -> RunStatus:
        # LSDT names its process and writes an end event: the events say it all (rundir.run_status).
        if not self.path.exists():
            return super().status(stall_after_s, now, look_for_writer)
        status = rundir.run_status(self.path, events=self.all_events, metrics=[self.last] if self.last else [])
        if not self.last:
            status.last_metrics, status.last_step = {}, None
        return status
