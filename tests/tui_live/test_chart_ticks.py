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
