"""Every answer on the Plan tab is dimmed while it is stale, not only the Result panel: Step 0
physics and the refined layouts kept full colour for inputs that no longer hold (found in tmux:
tokens 'abc' dimmed the Result panel but not the table of refined layouts beside it)."""

from __future__ import annotations

from textual.widgets import Input

from app.widgets.layouts_table import RefinedSection
from app.widgets.result_panel import ResultPanel
from tests.tui.conftest import settle


def stale(app) -> dict[str, bool]:
    parts = {"result": app.query_one("#result", ResultPanel), "physics": app.query_one("#physics"),
             "refined": app.query_one(RefinedSection)}
    return {name: w.has_class("-stale") for name, w in parts.items()}


async def test_an_invalid_field_dims_physics_and_refined_layouts_too(app_factory):
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert not any(stale(app).values())
        tokens = app.query_one("#input-tokens", Input)
        tokens.focus()
        await pilot.press(*"abc")
        await settle(pilot)
        assert all(stale(app).values()), stale(app)
        tokens.value = "300e9"
        await settle(pilot)
        assert not any(stale(app).values()), stale(app)


async def test_an_engine_error_dims_them_as_well(app_factory):
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.query_one("#input-batch", Input).value = "100"  # less than one sequence: the engine refuses it
        await settle(pilot)
        assert all(stale(app).values()), stale(app)
        app.query_one("#input-batch", Input).value = ""
        await settle(pilot)
        assert not any(stale(app).values()), stale(app)


async def test_save_and_pin_refuse_a_stale_plan(app_factory, plans_dir):
    """With a field in red, ctrl+s saved (and ctrl+t pinned) the last good plan, which is not what
    the form says: a file that does not reopen to the inputs on screen."""
    from app.tabs.plan import PlanTab

    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.query_one("#input-tokens", Input).value = "abc"
        await settle(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert type(app.screen).__name__ != "SaveScreen"
        await pilot.press("ctrl+t")
        await settle(pilot)
        assert app.query_one(PlanTab).pinned == []
        assert any("nothing to save" in n.message for n in app._notifications)
        app.query_one("#input-tokens", Input).value = "300e9"
        await settle(pilot)
        await pilot.press("ctrl+t")
        await settle(pilot)
        assert [p.goal.tokens for p in app.query_one(PlanTab).pinned] == [300e9]
