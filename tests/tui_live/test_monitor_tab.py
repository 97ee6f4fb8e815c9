"""The Monitor tab against a run written by another process, which is then killed."""

from __future__ import annotations

import time

from engine.runtime.train import rundir

from app.tabs.monitor import MonitorTab, check_run_dir, recent_runs
from tests.tui_live.conftest import wait_until


async def test_monitor_tails_a_run_then_shows_it_gone(app_factory, run_writer, tmp_path):
    run = tmp_path / "runs" / "ext"
    proc = run_writer(run, "--rate", "40")
    deadline = time.monotonic() + 10
    while not (run / rundir.METRICS_FILE).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    app = app_factory(monitor=run)  # what `lsdt-tui --monitor RUN_DIR` builds
    async with app.run_test(size=(120, 40)) as pilot:
        tab = app.query_one(MonitorTab)
        view = tab.view
        loss = view.charts["loss"]
        await wait_until(pilot, lambda: view.status is not None and view.status.state == "running", what="running state")
        seen = view.n_metrics
        await wait_until(pilot, lambda: view.n_metrics > seen + 10, what="new metric lines")
        await wait_until(pilot, lambda: loss.redraws > 1 and len(loss.series("train")) > 10, what="the loss chart drawn")
        proc.kill()
        proc.wait()
        await wait_until(pilot, lambda: view.status.state == "gone", what="the run seen as gone")
        status = str(view.query_one("#run-status").render())
        assert "gone" in status and "without an end event" in status
        n = view.n_metrics
        assert n == len(rundir.read_metrics(run))  # every line written reached the view, once
        assert len(loss.series("train")) == n
        assert "start" in "\n".join(str(line.text) for line in view.query_one("#run-events").lines)
        assert app.failures == []


async def test_monitor_shows_how_a_run_ended_and_rejects_bad_paths(app_factory, run_writer, tmp_path):
    run = tmp_path / "done"
    run_writer(run, "--lines", "30", "--rate", "500", "--eval-every", "10", "--end", "completed").wait(timeout=20)
    app = app_factory(initial_tab="monitor")
    async with app.run_test(size=(120, 40)) as pilot:
        tab = app.query_one(MonitorTab)
        assert not tab.attach_path(str(tmp_path / "nope"))
        assert "no such file or directory" in str(tab.query_one("#monitor-error").render())
        assert tab.attach_path(str(run))
        await wait_until(pilot, lambda: tab.view.status is not None and tab.view.status.state == "ended", what="ended")
        assert tab.view.n_metrics == 30
        assert "completed" in str(tab.view.query_one("#run-status").render())
        assert "val" in tab.view.charts["loss"]._series and len(tab.view.charts["loss"].series("val")) == 3


def test_recent_runs_newest_first(tmp_path):
    for name in ("a", "b"):
        rundir.RunWriter(tmp_path / name).event("start")
        time.sleep(0.02)
    (tmp_path / "not-a-run").mkdir()
    found = recent_runs([tmp_path, tmp_path / "missing"])
    assert [(p.name, source) for p, source, _, _ in found] == [("b", "lsdt"), ("a", "lsdt")]
    assert {state for _, _, state, _ in found} == {"running"}  # this process wrote the start events
    assert check_run_dir(str(tmp_path / "a")).path.name == "a"


async def test_charts_redraw_on_the_timer_and_hidden_views_do_not_poll(app_factory, run_writer, tmp_path):
    from app.widgets.live_chart import REDRAW_HZ

    run = tmp_path / "fast"
    run_writer(run, "--rate", "200")
    deadline = time.monotonic() + 10
    while not (run / rundir.METRICS_FILE).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    app = app_factory(initial_tab="monitor")
    async with app.run_test(size=(120, 40)) as pilot:
        tab = app.query_one(MonitorTab)
        view = tab.view
        assert tab.attach_path(str(run))
        t0 = time.monotonic()
        await wait_until(pilot, lambda: view.n_metrics > 300, what="a burst of lines")
        elapsed = time.monotonic() - t0
        loss = view.charts["loss"]
        # hundreds of points, a handful of plots: redraws follow the timer, not the data
        assert loss.redraws <= elapsed * REDRAW_HZ + 3 < view.n_metrics / 10
        await app.show_tab("plan")
        await pilot.pause(0.6)
        polls, lines = view.polls, view.n_metrics
        await pilot.pause(1.5)
        assert view.polls == polls and view.n_metrics == lines  # hidden: nothing read
        await app.show_tab("monitor")
        await wait_until(pilot, lambda: view.n_metrics > lines + 100, what="catching up once shown")
        assert app.failures == []


async def test_no_polling_under_a_modal(app_factory, tmp_path, run_writer):
    run = tmp_path / "m"
    run_writer(run, "--lines", "10", "--rate", "1000", "--end", "completed").wait(timeout=20)
    app = app_factory(initial_tab="monitor")
    async with app.run_test(size=(120, 40)) as pilot:
        view = app.query_one(MonitorTab).view
        assert app.query_one(MonitorTab).attach_path(str(run))
        await wait_until(pilot, lambda: view.polls >= 1, what="the first read")
        app.action_help()
        await pilot.pause(0.3)
        polls = view.polls
        await pilot.pause(2.5)  # an ended run is re-read every 2 s when shown
        assert view.polls == polls
        await app.pop_screen()
        await wait_until(pilot, lambda: view.polls > polls, timeout_s=5, what="polling again")


async def test_attaching_to_a_long_run_catches_up_in_slices(app_factory, tmp_path):
    import json

    from app.widgets.run_view import RunPolled

    run = tmp_path / "long"
    w = rundir.RunWriter(run)
    w.event("start", step=0)
    lines = []
    for step in range(1, 30_001):
        lines.append(json.dumps({"step": step, "time": 1.7e9 + step, "loss": 3.0 + (step % 97) / 97, "lr": 1e-3,
                                 "tokens": step * 4096, "tok_per_s": 5e4, "mfu": 0.4, "vram_alloc_bytes": 2e9,
                                 "vram_peak_bytes": 3e9}))
    (run / rundir.METRICS_FILE).write_text("\n".join(lines) + "\n")
    w.event("end", reason="completed", step=30_000)
    batches = []
    app = app_factory(initial_tab="monitor")
    async with app.run_test(size=(120, 40), message_hook=lambda m: isinstance(m, RunPolled) and batches.append(len(m.metrics))) as pilot:
        tab = app.query_one(MonitorTab)
        assert tab.attach_path(str(run))
        await wait_until(pilot, lambda: tab.view.n_metrics == 30_000, timeout_s=30, what="all 30k lines")
        assert max(batches) < 8_000 and len([b for b in batches if b]) >= 3  # slices, not one freeze
        assert len(tab.view.charts["loss"].series("train")) <= 2048  # bounded
        assert tab.view.charts["loss"].series("train").y_range() == (3.0, 3.0 + 96 / 97)  # extremes kept
        assert tab.view.status.state == "ended"
