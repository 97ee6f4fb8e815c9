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


async def palette_go_to(pilot, title: str) -> None:
    await pilot.press("ctrl+p")
    await pilot.pause()
    await pilot.press(*title)
    await pilot.pause(0.3)
    await pilot.press("enter")
    for _ in range(50):
        await pilot.pause(0.02)
        if pilot.app.focused is not None:
            return


async def test_palette_go_to_a_tab_lands_in_its_first_field(app_factory):
    """ctrl+p "Go to Bands", then "Go to Plan": the focus was None after each, so the Plan tab's
    ctrl+s did nothing (and the footer lost its keys) until the user tabbed into the tab."""
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await palette_go_to(pilot, "Go to Bands")
        bands = app.query_one("#bands-tab")
        assert app.query_one("#tabs").active == "bands"
        assert app.focused is not None and bands in app.focused.ancestors
        await palette_go_to(pilot, "Go to Plan")
        assert app.focused is app.query_one("#hardware-filter")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert type(app.screen).__name__ == "SaveScreen"


async def test_palette_save_plan_from_another_tab_then_escape_leaves_the_focus_in_plan(app_factory):
    """ctrl+p "Save plan" on the Bands tab switches to Plan and opens the dialog; Escape closed it
    onto the tab bar (the dialog had remembered no focus), so ctrl+s then did nothing."""
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await palette_go_to(pilot, "Go to Bands")
        await palette_go_to(pilot, "Save plan")
        assert type(app.screen).__name__ == "SaveScreen"
        await pilot.press("escape")
        await pilot.pause()
        tab = app.query_one(PlanTab)
        assert app.focused is not None and tab in app.focused.ancestors
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert type(app.screen).__name__ == "SaveScreen"
