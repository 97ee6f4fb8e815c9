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
            assert [k for k, _ in sections["Train tab"]] == ["ctrl+r", "ctrl+t", "ctrl+y", "ctrl+f", "ctrl+n", "ctrl+l"]
            assert [k for k, _ in sections["Monitor tab"]] == ["ctrl+r", "ctrl+l", "ctrl+t", "s", "y", "o", "t", "m", "c", "g", "p"]
        assert ("? / F1", app.BINDINGS[0].tooltip) in sections["Keys (everywhere)"]
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


def test_binding_rows_follow_the_bindings():
    from textual.binding import Binding

    rows = binding_rows([Binding("ctrl+z", "undo", "undo", tooltip="undo the last change"), ("ctrl+k", "kill", "kill it")])
    assert rows == [("ctrl+z", "undo the last change"), ("ctrl+k", "kill it")]


def test_every_tab_is_in_help_with_its_tab_key(plans_dir):
    """Help says how to reach each tab by key, and every tab with keys has a section (it had no
    Quantize, Bands or MoE section)."""
    app = make_app(plans_dir=plans_dir, cursor_blink=False)
    sections = dict(help_sections(app))
    everywhere = dict(sections["Keys (everywhere)"])
    n = len(app.tabs)
    assert f"F2 … F{n + 1}" in everywhere
    for i, entry in enumerate(app.tabs, 1):
        assert f"F{i + 1} {entry.title}" in everywhere[f"F2 … F{n + 1}"]
        assert f"{entry.title} tab" in sections, entry.id
    assert not any("ctrl+b" in key for rows in sections.values() for key, _ in rows)  # tmux's prefix


async def test_palette_finds_every_action_by_its_word(plans_dir):
    """The palette offers every binding of every tab (the list help shows): stop, launch, sweep
    and export are found by name."""
    from textual.command import CommandPalette

    from app.keys import tab_actions

    app = make_app(plans_dir=plans_dir, cursor_blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for a in tab_actions(app.tabs):
            assert a.title in titles
        live = {t.id for t in app.tabs} >= {"probe", "train", "quantize"}
        words = ("stop", "launch", "sweep", "export") if live else ("save", "open", "pin")
        for word in words:  # the palette matches titles only (textual.system_commands)
            hits = [c for c in app.get_system_commands(app.screen) if word in c.title.lower()]
            assert hits, word
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*words[0])  # typed into the palette: its own search finds the action
        from textual.widgets import OptionList

        for _ in range(100):
            await pilot.pause(0.05)
            shown = [str(o.prompt) for o in app.screen.query_one(OptionList).options]
            if any(words[0] in s.lower() for s in shown):
                break
        assert any(words[0] in s.lower() for s in shown), shown
