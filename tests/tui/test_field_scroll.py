"""A field whose value fills its box shows the value's start again once the focus leaves (found in
tmux: tabbing through the Bands tab left depths reading '2,14,16,18,20' — the view had scrolled one
cell for the cursor after the last character — while the table still planned d12)."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from tests.tui.conftest import settle_tab

pytest.importorskip("app.tabs.bands")
from app.tabs.bands import BandsTab  # noqa: E402


async def test_a_full_field_scrolls_back_to_its_start_when_left(app_factory):
    app = app_factory(initial_tab="bands")
    async with app.run_test(size=(100, 30)) as pilot:
        tab = app.query_one(BandsTab)
        await settle_tab(pilot, tab)
        depths = app.query_one("#input-b_depths", Input)
        assert len(depths.value) >= depths.content_size.width  # the default value fills the box
        app.query_one("#input-b_hours", Input).focus()
        await pilot.press("tab")  # into depths: the cursor after the last character scrolls the view
        await pilot.pause()
        assert app.focused is depths
        await pilot.press("tab")  # and out again
        await pilot.pause()
        assert app.focused is not depths
        assert depths.scroll_x == 0
        assert depths.value == "12,14,16,18,20"
