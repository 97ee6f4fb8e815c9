"""Fixtures for the TUI tests: an app on a temporary plans directory, cursor blink off, and a
`settle` that waits for the Plan tab's debounce and workers instead of sleeping."""

from __future__ import annotations

import pytest

from app.app import make_app
from app.tabs.plan import PlanTab


@pytest.fixture
def plans_dir(tmp_path):
    d = tmp_path / "plans"
    d.mkdir()
    return d


# The planning tabs (this suite's); the live tabs have their own suite (tests/tui_live).
PLANNING_TABS = ("plan", "bands", "moe")


@pytest.fixture
def app_factory(plans_dir):
    def make(**kwargs):
        kwargs.setdefault("plans_dir", plans_dir)
        kwargs.setdefault("only_tabs", PLANNING_TABS)
        return make_app(cursor_blink=False, **kwargs)
    return make


async def settle(pilot, max_rounds: int = 400) -> None:
    """Until the Plan tab shows the answer to its latest inputs: pending debounce fired, every
    worker done, every message handled. Polls the app's own state; never a fixed sleep."""
    await settle_tab(pilot, pilot.app.query_one(PlanTab), max_rounds)


def text_of(widget) -> str:
    """The plain text a Static-like widget shows now."""
    from rich.console import Console

    console = Console(width=200, record=True, file=open("/dev/null", "w"), color_system=None)
    content = widget.content
    if isinstance(content, str):
        return content
    console.print(content)
    return console.export_text()


async def settle_tab(pilot, tab, max_rounds: int = 400) -> None:
    """settle() for any tab with `idle` (Plan, Bands, MoE): its debounce fired and its answer shown."""
    app = pilot.app
    for _ in range(max_rounds):
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        if tab.idle:
            return
        await pilot.pause(0.01)  # let the debounce timer come due
    raise AssertionError(f"{type(tab).__name__} never settled")


def screen_text(app) -> list[str]:
    """The screen as the terminal shows it, one string per row (what a tmux capture reads).
    Textual has no public call for it; the compositor renders the strips the driver writes."""
    return ["".join(segment.text for segment in strip) for strip in app.screen._compositor.render_strips()]
