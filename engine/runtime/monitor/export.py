"""Write a run, whatever read it, out for other tools: a CSV file or a TensorBoard event file.

CSV: `metrics.csv`, columns `step`, `time`, then every other series in order of first appearance,
empty cells where a row has no value. TensorBoard: one `events.out.tfevents.<time>.lsdt` file of
scalar summaries (tag = the series name, step, wall time), written with the tensorboard package's
own RecordWriter and Event protobuf (`lsdt[monitor]`), so TensorBoard reads it as its own.
Both are written atomically, and an existing file of that name is never overwritten.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from engine.atomic import write_atomic
from engine.errors import UserError

FORMATS = ("csv", "tensorboard")
CSV_NAME = "metrics.csv"


def _target(out_dir: Path, name: str) -> Path:
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--export {out_dir}: not a directory")
    target = out_dir / name
    if target.exists():
        raise UserError(f"--export {out_dir}: {name} exists already; accepted: a directory without one")
    return target


def to_csv(records: list[dict], out_dir: Path) -> Path:
    target = _target(out_dir, CSV_NAME)
    columns = ["step", "time"]
    seen = set(columns)
    for r in records:
        for k in r:
            if k not in seen:
                seen.add(k)
                columns.append(k)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: ("" if r.get(k) is None else r[k]) for k in columns})
    return write_atomic(target, buf.getvalue())


def to_tensorboard(records: list[dict], out_dir: Path) -> Path:
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter
    except ImportError:
        raise UserError("--to tensorboard needs the tensorboard package: pip install 'lsdt[monitor]'") from None
    now = time.time()
    target = _target(out_dir, f"events.out.tfevents.{int(now)}.lsdt")
    buf = io.BytesIO()
    writer = RecordWriter(buf)
    # The first record of every event file names its format version (TensorBoard checks it).
    writer.write(event_pb2.Event(wall_time=now, file_version="brain.Event:2").SerializeToString())
    for r in records:
        step = r.get("step")
        if not isinstance(step, (int, float)):
            continue
        values = [summary_pb2.Summary.Value(tag=k, simple_value=float(v)) for k, v in r.items()
                  if k not in ("step", "time") and isinstance(v, (int, float)) and not isinstance(v, bool)]
        if values:
            wall = r.get("time") if isinstance(r.get("time"), (int, float)) else now
            writer.write(event_pb2.Event(wall_time=wall, step=int(step), summary=summary_pb2.Summary(value=values))
                         .SerializeToString())
    return write_atomic(target, buf.getvalue())


def export(records: list[dict], out_dir: str | Path, fmt: str) -> Path:
    if fmt not in FORMATS:
        raise UserError(f"--to {fmt}: unknown; accepted: {', '.join(FORMATS)}")
    return (to_csv if fmt == "csv" else to_tensorboard)(records, Path(out_dir).expanduser())
