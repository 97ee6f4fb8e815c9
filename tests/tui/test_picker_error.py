"""A profile picker's error is about the text that was submitted: it goes once that text changes
(found in tmux: '/tmp/nope.toml: no such file' stayed under the Model list after the search box
was cleared, next to the built-ins it lists again)."""

from __future__ import annotations

from textual.widgets import Input

from app.widgets.profile_picker import ProfilePicker
from tests.tui.conftest import settle, text_of


async def test_picker_error_clears_when_the_search_text_changes(app_factory, tmp_path):
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        picker = app.query_one("#model", ProfilePicker)
        search = app.query_one("#model-filter", Input)
        search.focus()
        search.value = str(tmp_path / "nope.toml")
        await pilot.press("enter")
        await settle(pilot)
        assert picker.has_class("-invalid") and "no such file" in text_of(picker.query_one(".picker-error"))
        await pilot.press("ctrl+u")  # clear the search: the built-ins are listed again
        await settle(pilot)
        assert search.value == ""
        assert not picker.has_class("-invalid") and text_of(picker.query_one(".picker-error")).strip() == ""
        await pilot.press(*"qqq", "enter")  # a search that matches nothing still says so
        await settle(pilot)
        assert picker.has_class("-invalid") and "no built-in model matches 'qqq'" in text_of(picker.query_one(".picker-error"))
