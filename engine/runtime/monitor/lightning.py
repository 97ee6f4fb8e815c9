"""PyTorch Lightning's CSVLogger: `<save_dir>/<name>/version_N/metrics.csv` and `hparams.yaml`.

metrics.csv has a `step` column (and `epoch`), one column per logged metric, and empty cells for
metrics not logged on that row; CSVLogger appends rows at each flush and rewrites the file whole
when a new metric appears (table.CsvTail handles both). Given the logger's `name` directory, the
newest version_N is read. hparams.yaml is what `save_hyperparameters()` wrote, read with PyYAML
(part of `lsdt[monitor]`, as Lightning itself depends on it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from engine.runtime.monitor.reader import RunReader
from engine.runtime.monitor.table import CsvTail
from engine.runtime.monitor.tags import series_name

METRICS_FILE = "metrics.csv"
HPARAMS_FILE = "hparams.yaml"
VERSION_DIR = re.compile(r"version_(\d+)")


def version_dir(path: Path) -> Path | None:
    """`path` itself when it holds metrics.csv, else its newest version_N that does."""
    if (path / METRICS_FILE).is_file():
        return path
    try:
        versions = [(int(m.group(1)), d) for d in path.iterdir() if (m := VERSION_DIR.fullmatch(d.name))]
    except OSError:
        return None
    for _, d in sorted(versions, reverse=True):
        if (d / METRICS_FILE).is_file():
            return d
    return None


class LightningReader(RunReader):
    source = "lightning"
    label = "Lightning CSVLogger"

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        self.version = version_dir(self.path) or self.path
        self.csv = CsvTail(self.version / METRICS_FILE)

    @staticmethod
    def detect(path: Path) -> bool:
        return path.is_dir() and version_dir(path) is not None

    def files(self) -> list[Path]:
        return [self.version / METRICS_FILE, self.version / HPARAMS_FILE]

    def _read(self, max_records: int) -> list[dict]:
        rows = self.csv.poll(max_records)
        self.backlog = self.csv.backlog
        out = []
        for row in rows:
            if row.get("step") is None:
                continue
            record = {"step": int(row["step"]), "time": None}
            for key, value in row.items():
                if key != "step" and value is not None:
                    record[series_name(key)] = value
            out.append(record)
        return out

    def config(self) -> dict:
        path = self.version / HPARAMS_FILE
        if not path.is_file():
            return {}
        try:
            import yaml
        except ImportError:
            self.note(f"{path}: reading it needs PyYAML: pip install 'lsdt[monitor]'")
            return {}
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            self.note(f"{path}: not readable YAML ({type(exc).__name__}); hyperparameters not shown")
            return {}
        return data if isinstance(data, dict) else {"hparams": data}
