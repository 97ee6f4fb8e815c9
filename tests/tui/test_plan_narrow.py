"""The Plan tab at 80x24 and 140x42 (issue 17, tmux QA walk): the Goal and Result boxes keep their
bottom border on the first screen (each scrolls inside it), the bars' headroom is labelled, and
the auto-size / fixed G radio marks only the chosen one in its text (not by colour alone)."""

from __future__ import annotations

import pytest
from textual.widgets import RadioButton

from tests.tui.conftest import screen_text, settle, text_of

SIZES = ((80, 24), (140, 42))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_goal_and_result_boxes_are_whole_and_scroll_inside(app_factory, size):
    app = app_factory()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        tab = app.query_one("#plan-tab")
        status = app.query_one("#plan-status")
        rows = screen_text(app)
        for box_id in ("#plan-goal", "#plan-result"):
            box = app.query_one(box_id)
            # the whole box is on the first screen, above the status line: its bottom corner shows
            assert box.region.bottom <= status.region.y, (box_id, box.region, status.region)
            assert rows[box.region.bottom - 1][box.region.x] == "╰", (box_id, rows[box.region.bottom - 1])
        assert tab.scroll_y == 0
        # Tab to the last Goal field: the Goal box scrolls inside its border to show it.
        for _ in range(40):
            if app.focused is not None and app.focused.id == "input-eta_fabric":
                break
            await pilot.press("tab")
        await pilot.pause()
        focused, goal = app.focused, app.query_one("#plan-goal")
        assert focused.id == "input-eta_fabric"
        assert goal.content_region.contains_region(focused.region), (goal.content_region, focused.region)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_headroom_is_labelled_and_bars_fit(app_factory, size):
    app = app_factory()
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        result = app.query_one("#result")
        lines = [line for line in screen_text(app) if "█" in line or "░" in line]
        bars = [line for line in lines if "mem " in line or "step " in line]
        assert len(bars) == 2 and all("% free" in line or "% over" in line for line in bars), bars
        assert "% free" in text_of(result) or "% over" in text_of(result)


async def test_only_the_chosen_mode_has_the_dot(app_factory):
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        auto, fixed = app.query_one("#mode-auto", RadioButton), app.query_one("#mode-fixed", RadioButton)

        def marks() -> tuple[bool, bool]:
            return "●" in auto.render().plain, "●" in fixed.render().plain

        assert marks() == (True, False)
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert marks() == (False, True)
