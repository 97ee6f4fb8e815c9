"""The Monitor tab's side at 80x24 and its recent-runs list kept current (issue 17, tmux QA walk:
an error squeezed the list to zero rows; the ages were stale until ctrl+r; a run that finished
was neither attached nor shown as ended)."""

from __future__ import annotations

from pathlib import Path

import app.tabs.monitor as monitor_module
from app.tabs.monitor import MonitorTab
from tests.tui_live.conftest import wait_until


async def test_a_long_error_leaves_the_runs_list_its_rows(app_factory, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LSDT_RUNS_DIR", raising=False)
    app = app_factory(initial_tab="monitor", only_tabs=("monitor",))
    async with app.run_test(size=(80, 24)) as pilot:
        tab = app.query_one(MonitorTab)
        await pilot.pause()
        assert not tab.attach_path(str(tmp_path / ("a-long-directory-name-" * 4) / "run"))
        await pilot.pause(0.2)
        error = tab.query_one("#monitor-error")
        assert "no such file or directory" in str(error.render())
        assert tab.query_one("#recent-runs").region.height >= 6
        assert error.region.height >= 4  # the whole message, wrapped (the side scrolls to it)


async def test_the_list_follows_a_run_to_its_end_without_a_key(app_factory, run_writer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LSDT_RUNS_DIR", raising=False)
    monkeypatch.setattr(monitor_module, "RESCAN_S", 0.3)
    app = app_factory(initial_tab="monitor", only_tabs=("monitor",))
    async with app.run_test(size=(80, 24)) as pilot:
        tab = app.query_one(MonitorTab)
        await wait_until(pilot, lambda: tab.view is not None, what="the tab")
        assert tab.view.run_dir is None
        run = tmp_path / "runs" / "fresh"
        run_writer(run, "--lines", "40", "--rate", "40", "--end", "completed")  # ~1 s of writing, then an end event

        def option_text() -> str:
            options = tab.query_one("#recent-runs")
            return str(options.get_option_at_index(0).prompt) if options.option_count else ""

        # The new run is listed and attached with no key pressed; when it ends, the list says so.
        await wait_until(pilot, lambda: tab.view.run_dir is not None, timeout_s=15, what="the new run attached")
        assert Path(tab.view.run_dir).resolve() == run.resolve()
        assert "attached the newest run" in str(tab.query_one("#monitor-error").render())
        await wait_until(pilot, lambda: "ended" in option_text(), timeout_s=15, what="the list showing the run ended")
        await wait_until(pilot, lambda: tab.view.status is not None and tab.view.status.state == "ended", what="the view ended")
        first_age = option_text()
        await wait_until(pilot, lambda: option_text() != first_age, timeout_s=10, what="the age to move on")
        assert app.failures == []


async def test_a_newest_run_that_cannot_be_attached_is_tried_once(app_factory, run_writer, tmp_path, monkeypatch):
    """Review: an automatic attach that failed stayed armed, so every rescan retook the path field
    (overwriting what the user was typing) and repeated the error."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LSDT_RUNS_DIR", raising=False)
    monkeypatch.setattr(monitor_module, "RESCAN_S", 0.2)
    run_writer(tmp_path / "runs" / "only", "--lines", "3", "--rate", "500", "--end", "completed").wait(timeout=20)
    tries = []
    monkeypatch.setattr(MonitorTab, "attach_path", lambda self, path, by_user=True: tries.append(path) and False)
    app = app_factory(initial_tab="monitor", only_tabs=("monitor",))
    async with app.run_test(size=(80, 24)) as pilot:
        tab = app.query_one(MonitorTab)
        await wait_until(pilot, lambda: len(tries) == 1, timeout_s=10, what="the one automatic attach")
        tab.query_one("#monitor-path").value = "runs/typing"
        await pilot.pause(1.0)  # five rescans
        assert len(tries) == 1 and tab.query_one("#monitor-path").value == "runs/typing"


async def test_events_wrap_at_80x24_and_rewrap_when_resized(app_factory, run_writer, tmp_path):
    """The events pane (Train, Monitor and MoE runs share it) wraps; it never cuts a line ("@12"
    read "@1" at 80x24), and a line written while wide is wrapped again when the terminal narrows."""
    from engine.runtime.train import rundir

    from app.widgets.run_view import describe_event

    run = tmp_path / "done"
    run_writer(run, "--lines", "30", "--rate", "500", "--eval-every", "10", "--end", "completed").wait(timeout=20)
    expected = [describe_event(e) for e in rundir.read_events(run)]
    app = app_factory(monitor=run, only_tabs=("monitor",))
    async with app.run_test(size=(140, 42)) as pilot:
        tab = app.query_one(MonitorTab)
        await wait_until(pilot, lambda: tab.view.status is not None and tab.view.status.state == "ended", what="ended")
        log = tab.view.query_one("#run-events")
        for size in ((140, 42), (80, 24)):
            await pilot.resize_terminal(*size)
            await pilot.pause(0.3)
            width = log.scrollable_content_region.width
            shown = [line.text.rstrip() for line in log.lines]
            assert all(len(line) <= width for line in shown), (size, shown)
            joined = " ".join(shown)
            for text in expected:
                assert " ".join(text.split()) in " ".join(joined.split()), (size, text, shown)
            # The charts side by side keep a column between them (their titles ran together).
            charts = [tab.view.charts[name] for name in ("loss", "speed", "memory")]
            assert all(a.region.right < b.region.x for a, b in zip(charts, charts[1:])), [c.region for c in charts]
