"""The Monitor's readers on a long run: first frame, catch-up, refresh cost, memory.

Targets (issue #18): the first frame of a run with 1,000,000 metric lines (LSDT JSONL and
TensorBoard) under 1 s; each refresh costs time in proportion to the new lines only; memory bounded
whatever the run length.

What is timed, as the Monitor tab does it (app/widgets/run_view.py), without the terminal:
  * first frame (1M-line run): open it (detection + reader), read the first slice (READ_SLICE_RECORDS),
    feed it to the loss chart's bounded series (app/series.py MinMaxSeries) and build the plot
    once (LiveChart.build_text: plotext, 100x25). The view then reads the rest slice by slice.
  * catch-up: records/s over the next 20 slices (the view reads them back to back, live meanwhile).
  * refresh: k lines appended to a caught-up run of 10k and of 100k lines, then poll + feed, for
    k = 100, 1000, 10000: the cost follows k, not the length of the run.
  * memory: points the chart keeps, and the process RSS growth, after 100k+ lines.

    python benchmarks/monitor_speed.py [--lines 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.series import MinMaxSeries  # noqa: E402
from app.widgets.live_chart import LiveChart  # noqa: E402
from app.widgets.run_view import READ_SLICE_RECORDS  # noqa: E402
from engine.runtime.monitor.runs import open_run  # noqa: E402


def loss_at(step: int) -> float:
    return 2.0 + 3.0 * math.exp(-step / 2e5) + 0.05 * math.sin(step)


def write_lsdt(run: Path, first: int, n: int) -> None:
    run.mkdir(parents=True, exist_ok=True)
    t0 = 1.7e9
    with open(run / "metrics.jsonl", "a") as fh:
        for step in range(first, first + n):
            fh.write(json.dumps({"step": step, "time": t0 + step * 0.05, "loss": loss_at(step), "lr": 3e-4,
                                 "tokens": step * 8192, "tok_per_s": 1.6e5, "mfu": 0.41, "vram_alloc_bytes": 9.1e9,
                                 "vram_peak_bytes": 1.2e10}) + "\n")


def write_tensorboard(run: Path, first: int, n: int) -> None:
    """One scalar event per line, TensorBoard's own record writer and Event proto (what
    SummaryWriter.add_scalar writes, ~10x faster than going through torch for a million)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    run.mkdir(parents=True, exist_ok=True)
    path = run / "events.out.tfevents.1700000000.bench"
    with open(path, "ab") as fh:
        w = RecordWriter(fh)
        if first == 0:
            w.write(event_pb2.Event(wall_time=1.7e9, file_version="brain.Event:2").SerializeToString())
        for step in range(first, first + n):
            value = summary_pb2.Summary.Value(tag="train/loss", simple_value=loss_at(step))
            w.write(event_pb2.Event(wall_time=1.7e9 + step * 0.05, step=step,
                                    summary=summary_pb2.Summary(value=[value])).SerializeToString())


def feed(series: MinMaxSeries, records: list[dict]) -> None:
    for r in records:
        series.append(r.get("step"), r.get("loss"))


def build(series: MinMaxSeries) -> float:
    chart = LiveChart("loss")
    xs, ys = series.view(50)
    spec = {"lines": [("train", xs, ys, {"color": "cyan"})], "limits": {}, "title": "loss", "x_label": "step",
            "y_label": "", "size": (100, 25), "theme": "dark", "log_y": False}
    t0 = time.perf_counter()
    chart.build_text(spec)
    return time.perf_counter() - t0


def first_frame(run: Path) -> tuple[float, float, int]:
    """Open + first slice + one plot build: (seconds, of which plot build, records in the slice)."""
    series = MinMaxSeries()
    t0 = time.perf_counter()
    reader = open_run(run)
    first = reader.poll(max_records=READ_SLICE_RECORDS)
    feed(series, first)
    build_s = build(series)
    return time.perf_counter() - t0, build_s, len(first)


def catch_up_rate(run: Path, slices: int = 20) -> float:
    """Records per second while catching up (the first `slices` slices after the first frame)."""
    reader = open_run(run)
    series = MinMaxSeries()
    t0 = time.perf_counter()
    for _ in range(slices):
        feed(series, reader.poll(max_records=READ_SLICE_RECORDS))
    return reader.n_records / (time.perf_counter() - t0)


def refresh_costs(run: Path, lines: int, writer) -> tuple[dict[int, float], int, float]:
    """Catch up on a run of `lines`, then time the poll + feed of k appended lines.
    Also: points the chart keeps, and the process's RSS growth meanwhile (MB)."""
    writer(run, 0, lines)
    rss0 = psutil.Process().memory_info().rss
    series = MinMaxSeries()
    reader = open_run(run)
    while True:
        feed(series, reader.poll(max_records=READ_SLICE_RECORDS))
        if not reader.backlog:
            break
    assert reader.n_records == lines, (reader.n_records, lines)
    costs, step = {}, lines
    for k in (100, 1000, 10000):
        writer(run, step, k)
        step += k
        t0 = time.perf_counter()
        got = 0
        while True:
            records = reader.poll(max_records=READ_SLICE_RECORDS)
            feed(series, records)
            got += len(records)
            if not reader.backlog:
                break
        costs[k] = time.perf_counter() - t0
        assert got == k, (got, k)
    return costs, len(series), (psutil.Process().memory_info().rss - rss0) / 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--only", choices=("lsdt", "tensorboard"))
    p.add_argument("--keep", type=Path, help="keep the generated runs in DIR and reuse them next time "
                   "(writing a million TensorBoard records takes a minute: its record writer's CRC is pure Python)")
    args = p.parse_args()
    cpu = f"{psutil.cpu_count()}-core CPU ({platform.processor() or platform.machine()}), load {os.getloadavg()[0]:.1f}"
    print(f"machine: {cpu}; python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        for kind, writer in (("lsdt", write_lsdt), ("tensorboard", write_tensorboard)):
            if args.only and kind != args.only:
                continue
            big = base / f"{kind}-{args.lines}"
            t0 = time.perf_counter()
            if not big.exists():
                writer(big, 0, args.lines)
            write_s = time.perf_counter() - t0
            frame_s, build_s, n_first = first_frame(big)
            rate = catch_up_rate(big)
            print(f"{kind}: {args.lines:,} lines (written in {write_s:.0f} s)\n"
                  f"  first frame {frame_s:.2f} s: the first {n_first:,} records + one plot build ({build_s * 1e3:.0f} ms); "
                  f"target < 1 s\n"
                  f"  catch-up {rate:,.0f} records/s, slice by slice with the UI live: all {args.lines:,} in "
                  f"~{args.lines / rate:.0f} s", flush=True)
            for lines in (10_000, 100_000):
                with tempfile.TemporaryDirectory() as small:
                    costs, kept, rss_mb = refresh_costs(Path(small) / kind, lines, writer)
                refresh = ", ".join(f"{k:,} new: {v * 1e3:.0f} ms" for k, v in costs.items())
                print(f"  after {lines:>7,} lines read: refresh {refresh}; chart keeps {kept:,} points; "
                      f"RSS +{rss_mb:.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
