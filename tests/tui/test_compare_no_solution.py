"""A pinned design with no solution and no closest candidate says why in the headroom column, as a
pinned design with a closest candidate does (found in tmux: 'layout' sat in the run column)."""

from __future__ import annotations

from textual.widgets import Input

from app.tabs.plan import PlanTab
from app.widgets.layouts_table import COMPARE_COLUMNS, CompareTable
from tests.tui.conftest import settle


async def test_no_split_for_G_reads_no_layout_under_headroom(app_factory):
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+g")
        app.query_one("#input-G", Input).value = "4099"  # prime, above the 2,048-sequence batch and the 40 layers: no split
        await settle(pilot)
        tab = app.query_one(PlanTab)
        reason = tab.current.result["no_solution_reason"]
        assert reason["constraint"] == "layout" and reason.get("closest") is None
        await pilot.press("ctrl+t")
        await settle(pilot)
        row = dict(zip(COMPARE_COLUMNS, (str(c).strip() for c in app.query_one(CompareTable).get_row_at(0))))
        assert row["headroom"] == "no (layout)" and row["run"] == "-"
