"""A second sweep does not silently overwrite the first one's file (found in tmux: 'save to' is
filled once when the tab is built, so every later sweep rewrote the same probes/probe-<time>.json,
perhaps the one adopted with "use in plan"). A path the user typed is used as typed, as
`lsdt probe --out` does. No probe runs: `spawn` is replaced by a stand-in."""

from __future__ import annotations

import itertools
from pathlib import Path

from textual.widgets import Input

import app.tabs.child_tab as child_tab
import app.tabs.probe as probe_module
from app.tabs.probe import ProbeTab


class _Done:
    pid = 0

    def poll(self):
        return 0


async def test_a_new_sweep_gets_a_new_default_file(app_factory, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = itertools.count(1)
    monkeypatch.setattr(probe_module, "default_out", lambda: f"probes/p{next(names)}.json")
    commands: list[list[str]] = []
    monkeypatch.setattr(child_tab, "spawn", lambda cmd: commands.append(cmd) or _Done())
    monkeypatch.setattr(ProbeTab, "_read_child", lambda self, proc: None)

    def out_of(cmd: list[str]) -> str:
        return cmd[cmd.index("--out") + 1]

    app = app_factory(initial_tab="probe", only_tabs=("probe",))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        field = app.query_one("#probe-out", Input)
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert out_of(commands[-1]) == "probes/p1.json"
        Path("probes/p1.json").write_text("{}")  # the first sweep wrote its file
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert out_of(commands[-1]) == "probes/p2.json" and field.value == "probes/p2.json"
        field.value = "probes/p1.json"  # typed by the user: theirs to overwrite
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert out_of(commands[-1]) == "probes/p1.json"
