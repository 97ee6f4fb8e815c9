"""A field's error is said once, under the field; the form's status line points at it instead of
repeating it (tmux QA walk, issue 17: the Bands form showed "hours: '36h': accepted: ..." twice; 36h is a duration now, 36x is not)."""

from __future__ import annotations

from app.tabs.bands import BandsTab
from tests.tui.conftest import settle_tab, text_of


async def test_a_field_error_is_not_repeated_in_the_status(app_factory):
    app = app_factory(initial_tab="bands")
    async with app.run_test(size=(80, 24)) as pilot:
        tab = app.query_one(BandsTab)
        await settle_tab(pilot, tab)
        app.query_one("#input-b_hours").value = "36x"
        await settle_tab(pilot, tab)
        field = app.query_one("#field-b_hours")
        assert field.has_class("-invalid") and "accepted" in field.error
        status = text_of(tab.query_one(".form-status"))
        assert field.error not in status and "fix the field marked in red" in status
