"""The help screen lists every key of the App and of every tab, generated from their BINDINGS:
a key added to a tab shows up in help without anyone editing the help screen."""

from __future__ import annotations

from app.app import make_app
from app.screens.help import HelpScreen, binding_rows, help_sections
from app.tabs import tab_class
from tests.tui.conftest import text_of


async def test_help_lists_every_tabs_bindings(plans_dir):
    app = make_app(plans_dir=plans_dir, cursor_blink=False)  # every tab this build has
    async with app.run_test(size=(120, 60)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        shown = "\n".join(text_of(s) for s in app.screen.query(".help-keys"))
        sections = dict(help_sections(app))
        for entry in app.tabs:
            cls = tab_class(entry)
            for binding in getattr(cls, "BINDINGS", []):
                key = binding.key.split(",")[0]
                what = binding.tooltip or binding.description
                assert (key, what) in sections[f"{entry.title} tab"], (entry.id, key)
                assert key in shown and what[:40] in shown, (entry.id, key)
        if any(t.id == "probe" for t in app.tabs):  # the live tabs' keys (issue: help listed only Plan's)
            assert ("ctrl+y", "use the saved probe: its MFU and GEMM efficiency in Plan (η seed, η gemm), its tok/s in Bands") in sections["Probe tab"]
            assert [k for k, _ in sections["Train tab"]] == ["ctrl+r", "ctrl+b", "ctrl+y", "ctrl+f", "ctrl+n", "ctrl+l"]
            assert [k for k, _ in sections["Monitor tab"]] == ["ctrl+r", "ctrl+l", "ctrl+b", "s", "y", "o", "t", "m", "c", "g", "p"]
        assert ("? / F1", app.BINDINGS[0].tooltip) in sections["Keys (everywhere)"]
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


def test_binding_rows_follow_the_bindings():
    from textual.binding import Binding

    rows = binding_rows([Binding("ctrl+z", "undo", "undo", tooltip="undo the last change"), ("ctrl+k", "kill", "kill it")])
    assert rows == [("ctrl+z", "undo the last change"), ("ctrl+k", "kill it")]
