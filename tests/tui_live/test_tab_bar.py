"""Arrowing along the tab bar reaches every tab (found in tmux: the Probe tab took the focus when
shown, so the next → moved the cursor in its depths field and Train, Monitor and Quantize could not
be reached from the keyboard that way). "Go to <tab>" still lands in the tab's first field."""

from __future__ import annotations

from textual.widgets import Tabs

from app.tabs import available_tabs
from tests.tui_live.conftest import wait_until


async def test_right_arrow_on_the_tab_bar_visits_every_tab(app_factory):
    app = app_factory()
    ids = [t.id for t in available_tabs()]
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        tabs = app.query_one("#tabs")
        app.query_one(Tabs).focus()
        visited = [tabs.active]
        for _ in ids:
            await pilot.press("right")
            await wait_until(pilot, lambda: tabs.active != visited[-1], timeout_s=5, what="the next tab")
            await pilot.pause()
            visited.append(tabs.active)
            assert isinstance(app.focused, Tabs), (tabs.active, app.focused)
        assert visited == ids + ids[:1]


async def test_go_to_a_live_tab_still_lands_in_its_first_field(app_factory):
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await app.show_tab("probe")
        await wait_until(pilot, lambda: app.focused is not None, timeout_s=5, what="a focus")
        assert app.focused is app.query_one("#probe-depths")


async def test_go_to_monitor_lands_in_its_recent_runs_not_the_path_field(app_factory):
    """The Monitor tab lands in its recent-runs list (Enter attaches the newest): 'Go to' focused
    the first widget of the focus chain instead, the path field (the list, still empty while its
    scan ran, was not in the chain yet), so Tab then went to 'attach' and Enter attached ''."""
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await app.show_tab("monitor")
        await wait_until(pilot, lambda: app.focused is not None, timeout_s=5, what="a focus")
        await pilot.pause(0.2)
        assert app.focused is app.query_one("#recent-runs")
