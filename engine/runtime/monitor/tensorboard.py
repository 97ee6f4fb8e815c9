"""TensorBoard event files (events.out.tfevents.*), read with the tensorboard package's own reader.

tensorboard.backend.event_processing.event_file_loader.RawEventFileLoader is TensorBoard's
incremental record reader: each Load() yields the records appended since the last one and waits
at a record still being written (it keeps its offset). Records are parsed with TensorBoard's Event
protobuf; a scalar is `simple_value` (torch's SummaryWriter, tensorboardX) or a one-element float
tensor (tf.summary v2). Every event file under the directory is followed (a run dir often holds
one per process restart, or per `runs/<date>` subdirectory as the HF Trainer writes them).

The tensorboard package is the optional extra `lsdt[monitor]`; without it this reader says so in one
line. Its pure-Python reader (no TensorFlow) checks each record's CRC32C in Python: ~100k records/s
on one core, so a long run is read in slices (benchmarks/monitor_speed.py has the figures).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from engine.errors import UserError
from engine.runtime.monitor.reader import RunReader
from engine.runtime.monitor.tags import series_name

EVENT_FILE_MARK = "tfevents"
RECORD_OVERHEAD = 16  # TFRecord framing: u64 length, u32 length CRC, data, u32 data CRC


def event_files(path: Path) -> list[Path]:
    """Event files in `path` or below it (at most 3 levels: run/runs/<date>/...), oldest first."""
    if path.is_file():
        return [path] if EVENT_FILE_MARK in path.name else []
    found = []
    for depth in ("*", "*/*", "*/*/*"):
        found += [p for p in path.glob(depth) if EVENT_FILE_MARK in p.name and p.is_file()]
    return sorted(found, key=lambda p: (p.stat().st_mtime if p.exists() else 0.0, p.name))


def _loader_classes():
    try:
        from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
        from tensorboard.compat.proto import event_pb2
    except ImportError:
        raise UserError("TensorBoard event files need the tensorboard package; install it: "
                        "pip install 'lsdt[monitor]'") from None
    return RawEventFileLoader, event_pb2


def _scalar(value) -> float | None:
    """A Summary.Value's scalar: simple_value, or a one-element float tensor; None otherwise."""
    kind = value.WhichOneof("value")
    if kind == "simple_value":
        return float(value.simple_value)
    if kind == "tensor":
        t = value.tensor
        if len(t.float_val) == 1:
            return float(t.float_val[0])
        if len(t.double_val) == 1:
            return float(t.double_val[0])
        if t.tensor_content and len(t.tensor_content) in (4, 8) and not t.tensor_shape.dim:
            import struct

            return struct.unpack("<f" if len(t.tensor_content) == 4 else "<d", t.tensor_content)[0]
    return None


class _FileTail:
    """One event file: TensorBoard's loader, and how many bytes of it were read (for the problem line)."""

    def __init__(self, path: Path, loader_class) -> None:
        self.path = path
        self.loader = loader_class(str(path))
        self.offset = 0
        self.records = 0
        self.stuck_polls = 0  # polls that read nothing while unread bytes remain


class TensorBoardReader(RunReader):
    source = "tensorboard"
    label = "TensorBoard events"

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        self._loader_class, self._event_pb2 = _loader_classes()
        self.tails: dict[Path, _FileTail] = {}

    @staticmethod
    def detect(path: Path) -> bool:
        return bool(event_files(path))

    def files(self) -> list[Path]:
        return list(self.tails) or event_files(self.path)  # before the first poll too (the recent-runs list)

    def _discover(self) -> None:
        for f in event_files(self.path):
            if f not in self.tails:
                try:
                    self.tails[f] = _FileTail(f, self._loader_class)
                except Exception as exc:  # the reader raises its own error classes (NotFoundError, IOError)
                    self.note(f"{f}: cannot open ({type(exc).__name__}: {exc})")

    def _read(self, max_records: int) -> list[dict]:
        self._discover()
        out: list[dict] = []
        self.backlog = False
        for tail in self.tails.values():
            budget = max_records - len(out)
            if budget <= 0:
                self.backlog = True
                break
            out += self._read_file(tail, budget)
        return out

    def _read_file(self, tail: _FileTail, budget: int) -> list[dict]:
        out: list[dict] = []
        Event = self._event_pb2.Event
        for raw in tail.loader.Load():
            tail.offset += len(raw) + RECORD_OVERHEAD
            tail.records += 1
            try:
                event = Event.FromString(raw)
            except Exception:  # protobuf's DecodeError: a record that passed its CRC but is not an Event
                self.note(f"{tail.path}: record {tail.records} is not a TensorBoard event; skipped")
                continue
            if event.HasField("summary"):
                step, wall = int(event.step), float(event.wall_time) or None
                for value in event.summary.value:
                    y = _scalar(value)
                    if y is not None and math.isfinite(y):  # a NaN loss is no point (JSON has no NaN either)
                        out.append({"step": step, "time": wall, series_name(value.tag): y})
            if len(out) >= budget:
                self.backlog = True
                break
        self._check_stuck(tail, bool(out))
        return out

    def _check_stuck(self, tail: _FileTail, progressed: bool) -> None:
        """The loader stops, silently, at a record it cannot read: a truncated one (the writer is
        mid-write; it resumes when the rest arrives) or a corrupt one (it never will). Unread bytes
        that stay unread for a few polls get a problem line saying where reading stopped."""
        try:
            unread = tail.path.stat().st_size - tail.offset
        except OSError:
            return
        if progressed or unread <= 0:
            tail.stuck_polls = 0
            return
        tail.stuck_polls += 1
        if tail.stuck_polls >= 3:
            self.note(f"{tail.path.name}: unreadable record at byte {tail.offset:,} (truncated or corrupt); "
                      f"showing the {tail.records:,} records before it")
