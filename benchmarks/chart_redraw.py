"""How long a live chart takes to redraw with 10,000 points (target < 20 ms).

A LiveChart (app/widgets/live_chart.py) is mounted headless at a typical pane size; 10,000 points
(a noisy loss curve with spikes) are appended; then each sample appends one point and times
`rebuild_now()`: thinning the series to the chart's width (UI thread in the app) plus plotext's
build and its conversion to a rich Text (a worker thread in the app; here both on one thread).
render() then only returns that Text. For comparison it times plotext drawing all 10,000 raw points the same way.

    python benchmarks/chart_redraw.py [--points 10000] [--repeats 30] [--size 80x20]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual.app import App, ComposeResult  # noqa: E402

from app.widgets.live_chart import LiveChart  # noqa: E402


def loss_at(i: int) -> float:
    spike = 3.0 if i % 1777 == 0 else 0.0
    return 4.0 * math.exp(-i / 3000) + 1.5 + 0.05 * math.sin(i * 0.37) + spike


class ChartApp(App):
    def compose(self) -> ComposeResult:
        yield LiveChart("loss", ("step", "tokens"), id="chart")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


async def measure(points: int, repeats: int, size: tuple[int, int]) -> dict:
    app = ChartApp()
    async with app.run_test(size=size) as pilot:
        chart = app.query_one(LiveChart)
        chart.add_series("train", "cyan")
        chart.add_series("val", "orange")
        for i in range(points):
            chart.append("train", {"step": i, "tokens": i * 2048}, loss_at(i))
            if i % 50 == 0:
                chart.append("val", {"step": i, "tokens": i * 2048}, loss_at(i) + 0.1)
        await pilot.pause()
        times, kept = [], len(chart.series("train"))
        for r in range(repeats):
            i = points + r
            chart.append("train", {"step": i, "tokens": i * 2048}, loss_at(i))
            t0 = time.perf_counter()
            chart.rebuild_now()
            chart.render()
            times.append(time.perf_counter() - t0)
        raw = []
        plt = chart.plt
        xs = list(range(points))
        ys = [loss_at(i) for i in xs]
        for _ in range(max(3, repeats // 5)):
            t0 = time.perf_counter()
            plt.clear_figure()
            plt.plot(xs, ys, marker="braille")
            plt.plotsize(chart.size.width, chart.size.height)
            plt.build()
            raw.append(time.perf_counter() - t0)
    return {"median_ms": 1e3 * statistics.median(times), "p95_ms": 1e3 * pct(times, 0.95), "max_ms": 1e3 * max(times),
            "kept_points": kept, "raw_median_ms": 1e3 * statistics.median(raw), "chart_size": f"{size[0]}x{size[1]}"}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--points", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--size", default="80x20", help="terminal size the chart fills")
    args = p.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    r = asyncio.run(measure(args.points, args.repeats, (w, h)))
    print(f"chart redraw, {args.points:,} points appended (series keeps {r['kept_points']:,}), chart {r['chart_size']}, "
          f"{args.repeats} redraws")
    print(f"  rebuild + render: median {r['median_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, max {r['max_ms']:.1f} ms (target < 20 ms)")
    print(f"  for comparison, plotext drawing all {args.points:,} raw points: median {r['raw_median_ms']:.1f} ms")
    print(f"  machine: {platform.processor() or platform.machine()}, {__import__('os').cpu_count()} CPUs, Python {platform.python_version()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
