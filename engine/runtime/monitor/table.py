"""A generic metrics file, CSV or JSONL, with an optional column mapping; and the CSV tail that
the Lightning reader shares.

Columns are mapped to LSDT's series by tags.py (so `train_loss` draws as `loss`), and a user's
`--columns step=iter,loss=train/loss` (series=column) overrides that. A row needs a step: a
`step` column, or one mapped to it; `time` (Unix seconds) is optional.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

from engine.errors import UserError
from engine.runtime.monitor.lsdt import backlog
from engine.runtime.monitor.reader import RunReader
from engine.runtime.monitor.tags import series_name
from engine.runtime.train import rundir

TABLE_SUFFIXES = (".csv", ".jsonl")
BYTES_PER_ROW = 120  # turns a record budget into a read size


def parse_columns(text: str | None) -> dict[str, str]:
    """`step=iter,loss=train_loss` -> {"step": "iter", "loss": "train_loss"} (series -> column)."""
    if not text:
        return {}
    out: dict[str, str] = {}
    for item in text.split(","):
        series, sep, column = item.partition("=")
        if not sep or not series.strip() or not column.strip():
            raise UserError(f"--columns {text!r}: {item.strip()!r} is not SERIES=COLUMN; "
                            "accepted: e.g. step=iter,loss=train_loss")
        out[series.strip()] = column.strip()
    return out


def _number(text: str):
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


class CsvTail:
    """Rows appended to a CSV file since the last poll, as dicts of numbers (non-numbers: None).

    A file whose header changed or that shrank was rewritten (Lightning's CSVLogger rewrites
    metrics.csv whole when a new metric appears): it is read again and the rows already returned
    are skipped, so no row is returned twice.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.header: list[str] | None = None
        self.header_bytes = b""
        self.offset = 0
        self.rows_read = 0
        self.backlog = False

    def poll(self, max_rows: int) -> list[dict]:
        self.backlog = False
        try:
            with open(self.path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                first = fh.readline()
                if not first.endswith(b"\n"):
                    return []  # the header itself is still being written
                skip = 0
                if first != self.header_bytes or size < self.offset:
                    self.header_bytes = first
                    self.header = next(csv.reader([first.decode("utf-8", "replace")]))
                    self.offset, skip, self.rows_read = len(first), self.rows_read, 0
                fh.seek(self.offset)
                budget = max(1 << 16, (max_rows + skip) * BYTES_PER_ROW)
                data = fh.read(budget)
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self.offset += end
        self.backlog = size - self.offset > 0 and end > 0 and len(data) == budget
        rows = []
        for values in csv.reader(io.StringIO(data[:end].decode("utf-8", "replace"))):
            if not values:
                continue
            self.rows_read += 1
            if skip:
                skip -= 1
                continue
            rows.append({k: _number(v) for k, v in zip(self.header, values)})
        return rows


class TableReader(RunReader):
    source = "table"
    label = "metrics file"

    def __init__(self, path: str | os.PathLike, columns: dict[str, str] | None = None) -> None:
        super().__init__(path)
        if self.path.suffix not in TABLE_SUFFIXES:
            raise UserError(f"{self.path}: not a metrics file; accepted: {', '.join(TABLE_SUFFIXES)} "
                            "(a directory of a known kind, or a CSV/JSONL file with --columns)")
        self.columns = dict(columns or {})
        self.is_csv = self.path.suffix == ".csv"
        self.csv = CsvTail(self.path) if self.is_csv else None
        self.jsonl = None if self.is_csv else rundir.JsonlTail(self.path)
        self._checked = False
        self._check_first_line()

    def _check_first_line(self) -> None:
        """A file that already has a header (CSV) or a first record (JSONL) is checked at once, so a
        wrong --columns is an error when the run is opened, not a silent empty chart."""
        try:
            with open(self.path, "rb") as fh:
                first = fh.readline()
        except OSError as exc:
            raise UserError(f"{self.path}: cannot read ({exc.strerror})") from None
        if not first.endswith(b"\n"):
            return
        if self.is_csv:
            names = next(csv.reader([first.decode("utf-8", "replace")]), [])
        else:
            try:
                record = json.loads(first)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise UserError(f"{self.path}: line 1 is not JSON; accepted: one JSON object per line") from None
            names = list(record) if isinstance(record, dict) else []
        if names:
            self.check_columns(names)
            self._checked = True

    @staticmethod
    def detect(path: Path) -> bool:
        return path.is_file() and path.suffix in TABLE_SUFFIXES

    def files(self) -> list[Path]:
        return [self.path]

    def check_columns(self, names: list[str]) -> None:
        """Every mapped column exists, and there is a step: else a one-line UserError."""
        for series, column in self.columns.items():
            if column not in names:
                raise UserError(f"{self.path}: column {column!r} (for {series}) not found; "
                                f"columns: {', '.join(names) or 'none'}")
        if "step" not in self.columns and "step" not in names:
            raise UserError(f"{self.path}: no 'step' column; columns: {', '.join(names) or 'none'}; "
                            "map one with --columns step=COLUMN")

    def _map(self, row: dict) -> dict:
        by_column = {c: s for s, c in self.columns.items()}
        out = {"step": None, "time": None}
        for key, value in row.items():
            name = by_column.get(key) or (key if key in ("step", "time") else series_name(key))
            if value is not None and not isinstance(value, bool) and isinstance(value, (int, float)):
                out[name] = value
        if isinstance(out.get("step"), float) and out["step"].is_integer():
            out["step"] = int(out["step"])
        return out

    def _read(self, max_records: int) -> list[dict]:
        if self.is_csv:
            rows = self.csv.poll(max_records)
            self.backlog = self.csv.backlog
            if self.csv.header is not None and not self._checked:
                self.check_columns(self.csv.header)
                self._checked = True
        else:
            before = self.jsonl.offset
            rows = self.jsonl.poll(max_bytes=max(1 << 16, max_records * BYTES_PER_ROW))
            self.backlog = backlog(self.jsonl, before)
            if rows and not self._checked:
                self.check_columns(list(rows[0]))
                self._checked = True
        return [r for r in map(self._map, rows) if r.get("step") is not None]
