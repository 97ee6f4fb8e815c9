"""Enter on the Monitor tab's recent runs attaches the newest run (found in tmux: the list had the
focus but nothing highlighted, so Enter did nothing until an arrow key was pressed)."""

from __future__ import annotations

from pathlib import Path

from app.tabs.monitor import MonitorTab
from tests.tui_live.conftest import wait_until


async def test_enter_attaches_the_newest_run(app_factory, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LSDT_RUNS_DIR", raising=False)
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "events.jsonl").write_text("")
    app = app_factory(initial_tab="monitor", only_tabs=("monitor",))
    async with app.run_test(size=(100, 30)) as pilot:
        tab = app.query_one(MonitorTab)
        await wait_until(pilot, lambda: bool(getattr(tab, "runs", None)), what="the recent runs")
        assert app.focused is app.query_one("#recent-runs")
        await pilot.press("enter")
        await wait_until(pilot, lambda: tab.view.run_dir is not None, timeout_s=5, what="the run attached")
        assert Path(tab.view.run_dir).resolve() == run.resolve()
