"""Charts against steps or tokens tick at whole numbers (issue 17: the x axis read 1.5, 2.5)."""

from __future__ import annotations

import re

from textual.app import App, ComposeResult

from app.widgets.live_chart import LiveChart, count_ticks


def test_count_ticks_are_whole_and_round():
    assert count_ticks(1, 3) == [1, 2, 3]
    assert count_ticks(0.5, 2.5) == [1, 2]
    assert count_ticks(1, 4) == [1, 2, 3, 4]
    assert count_ticks(0, 10) == [0, 5, 10]
    assert count_ticks(1, 200) == [50, 100, 150, 200]
    assert count_ticks(7, 7) == [7]
    for lo, hi in ((1, 3), (3, 1000), (0, 524288), (2.2, 2.7)):
        ticks = count_ticks(lo, hi)
        assert ticks and all(isinstance(t, int) for t in ticks)
        assert len(ticks) <= 5 or hi - lo < 1


class ChartApp(App):
    def compose(self) -> ComposeResult:
        yield LiveChart("loss", ("step", "minutes"), id="chart")


async def test_a_three_step_run_has_no_fractional_step_ticks():
    app = ChartApp()
    async with app.run_test(size=(60, 16)) as pilot:
        chart = app.query_one(LiveChart)
        chart.add_series("train")
        for step, loss in ((1, 5.0), (2, 4.2), (3, 3.9)):
            chart.append("train", {"step": step, "minutes": step / 7}, loss)
        await pilot.pause()
        chart.rebuild_now()
        text = chart._text.plain
        x_axis = text.splitlines()[-2]  # the tick labels' row, above the "step" label
        assert re.search(r"\b1\b.*\b2\b.*\b3\b", x_axis), text
        assert not re.search(r"\d\.\d", x_axis), text


class NarrowChartsApp(App):
    """Three charts side by side in 52 columns: the Monitor's first row at 80x24."""

    CSS = "Horizontal { height: 14; } LiveChart { width: 1fr; margin-right: 1; }"

    def compose(self) -> ComposeResult:
        from textual.containers import Horizontal

        with Horizontal():
            for title in ("loss", "tok/s · MFU %", "memory GB"):
                yield LiveChart(title)


async def test_a_narrow_chart_keeps_its_title():
    """plotext centres a title over the plot area and drops one longer than it: at 80x24 the
    speed chart showed no title. The title is drawn over the whole chart, wrapped if need be."""
    app = NarrowChartsApp()
    async with app.run_test(size=(52, 16)) as pilot:
        await pilot.pause()
        for chart in app.query(LiveChart):
            chart.add_series("a")
            for step in range(1, 30):
                chart.append("a", {"step": step}, 1000.0 / step)
            chart.rebuild_now()
            lines = chart._text.plain.splitlines()
            assert chart.title in " ".join(line.strip() for line in lines[:2]), (chart.title, lines[:3])
            assert all(len(line) <= chart.size.width for line in lines)
