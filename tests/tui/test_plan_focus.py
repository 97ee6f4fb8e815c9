"""Focus after mode switches and tab switches: the Plan tab's keys keep working (found driving
lsdt-tui in tmux: after these, ctrl+s / ctrl+t / ctrl+g did nothing)."""

from __future__ import annotations

from app.tabs.plan import PlanTab
from tests.tui.conftest import settle


async def test_ctrl_g_back_to_auto_size_from_the_G_field_keeps_the_focus_in_the_tab(app_factory):
    """ctrl+g to fixed G focuses the G field; ctrl+g again disables it. The focus must not be lost
    (it was None: the next ctrl+g / ctrl+t went nowhere)."""
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert app.focused is app.query_one("#input-G")
        await pilot.press("ctrl+g")
        await settle(pilot)
        tab = app.query_one(PlanTab)
        assert app.focused is not None and tab in app.focused.ancestors_with_self
        await pilot.press("ctrl+t")  # the tab's keys still work
        await settle(pilot)
        assert len(tab.pinned) == 1 and tab.pinned[0].G is None
