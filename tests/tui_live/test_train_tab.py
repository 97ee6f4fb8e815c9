"""The Train tab runs a tiny CPU training as a child process and charts it; stop, then resume."""

from __future__ import annotations

from engine.runtime.train import rundir
from textual.widgets import Input, Select

from app.tabs.train import TrainTab, train_args
from tests.tui_live.conftest import wait_until

TINY = """name = "tui-tiny"
n_layer = 1
d_model = 32
n_head = 2
vocab_size = 256
seq_len = 32
ffn = "relu2"
"""


def tiny_inputs(tmp_path):
    model = tmp_path / "tiny.toml"
    model.write_text(TINY)
    data = tmp_path / "corpus.txt"
    data.write_text(("the quick brown fox jumps over the lazy dog. " * 400))
    return model, data


def fill(tab, **values):
    for name, value in values.items():
        tab.query_one(f"#train-{name}", Input).value = str(value)


async def test_train_tab_runs_stops_and_resumes(app_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("LSDT_CACHE_DIR", str(tmp_path / "cache"))
    model, data = tiny_inputs(tmp_path)
    run = tmp_path / "run"
    app = app_factory(initial_tab="train")
    async with app.run_test(size=(130, 42)) as pilot:
        app.query_one("#tabs").active = "train"
        tab = app.query_one(TrainTab)
        fill(tab, model=model, data=data, steps=100_000, seq=32, device_batch=2, log_every=2, eval_every=6,
             ckpt_every=50, threads=1, run_dir=run)
        tab.query_one("#train-device", Select).value = "cpu"
        await pilot.pause()
        tab.action_start()
        view = tab.view
        loss = view.charts["loss"]
        await wait_until(pilot, lambda: view.n_metrics >= 4 and len(loss.series("val")) >= 1, timeout_s=60,
                         what="train and val loss points")
        await wait_until(pilot, lambda: loss.redraws > 1 and not loss.no_data, what="the loss chart drawn")
        assert len(view.charts["speed"].series("tok/s")) >= 4
        assert view.status.state == "running"
        tab.action_stop()  # SIGINT: checkpoint + end event
        await wait_until(pilot, lambda: tab.exits == [130], timeout_s=30, what="a graceful stop (exit 128 + SIGINT)")
        await wait_until(pilot, lambda: view.status.state == "ended", what="the end seen in the view")
        assert view.status.reason == "signal"
        status = str(tab.query_one("#train-status").render())
        # What the user does here, not the CLI's flag (issue 17: it said "--resume continues").
        assert status == "stopped, checkpoint written: press resume (ctrl+y) to continue it" and "--" not in status
        stopped_at = view.status.last_step
        assert rundir.list_checkpoints(run), "a stop writes a checkpoint"
        assert not tab.query_one("#train-resume").disabled
        fill(tab, steps=stopped_at + 4)
        tab.action_resume()
        await wait_until(pilot, lambda: tab.exits == [130, 0], timeout_s=60, what="the resumed run to finish")
        await wait_until(pilot, lambda: view.status.state == "ended" and view.status.reason == "completed", what="completed")
        # The trainer's end summary, whole: how it ended, the losses, the checkpoint to pick up.
        status = str(tab.query_one("#train-status").render())
        assert status.startswith("done: ended (completed) at step") and "val loss" in status
        assert str(rundir.list_checkpoints(run)[-1].name) in status, status
        steps = [m["step"] for m in rundir.read_metrics(run)]
        assert steps[-1] == stopped_at + 4
        assert view.n_metrics == len(steps)
        assert any(e["event"] == "resume" for e in rundir.read_events(run))
        assert app.failures == []


async def test_train_tab_shows_trainer_errors_and_keeps_running(app_factory, tmp_path):
    app = app_factory(initial_tab="train")
    async with app.run_test(size=(130, 42)) as pilot:
        tab = app.query_one(TrainTab)
        fill(tab, steps=5, hours=1)
        tab.action_start()
        assert "steps and hours" in str(tab.query_one("#train-status").render())
        fill(tab, hours="", data=tmp_path / "missing.txt", run_dir=tmp_path / "r")
        tab.query_one("#train-device", Select).value = "cpu"
        await pilot.pause()
        tab.action_start()
        await wait_until(pilot, lambda: tab.exits == [2], timeout_s=60, what="the trainer refusing bad data")
        status = str(tab.query_one("#train-status").render())
        assert "exit code 2" in status and "missing.txt" in status
        # The run line says the run did not start (it said "not started (no start event yet)" for ever).
        await wait_until(pilot, lambda: "did not start" in str(tab.query_one("#run-status").render()), what="the run line")
        assert "missing.txt" in str(tab.query_one("#run-status").render())
        assert app.is_running and app.failures == []


def test_train_args_mapping():
    assert train_args({"model": "m.toml", "steps": "10", "device": "cpu"}) == ["--steps", "10", "--model", "m.toml", "--device", "cpu"]
    assert train_args({"hours": "0.5"}) == ["--hours", "0.5"]
    for bad in ({"steps": "0"}, {"model": "a", "depth": "2"}, {"hours": "x"}):
        try:
            train_args(bad)
        except Exception as exc:
            assert type(exc).__name__ == "UserError"
        else:
            raise AssertionError(bad)


async def test_train_form_from_plan_and_from_bands(app_factory, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = app_factory()
    async with app.run_test(size=(130, 42)) as pilot:
        from tests.tui.conftest import settle

        await settle(pilot)  # the Plan tab has computed its default plan
        tab = await app.show_tab("train")
        tab.action_from_bands()
        assert "Bands tab" in str(tab.query_one("#train-status").render())  # not visited yet: nothing to take
        tab.action_from_plan()
        plan = app.query_one("#plan-tab").current
        assert tab.query_one("#train-model", Input).value == plan.model.name
        bands = await app.show_tab("bands")
        await wait_until(pilot, lambda: getattr(bands, "result", None) is not None, what="the Bands table")
        tab.action_from_bands()
        rec = bands.result.recommended.depth
        assert tab.query_one("#train-depth", Input).value == str(rec)
        assert tab.query_one("#train-model", Input).value == ""
        assert train_args(tab.form())[:2] == ["--depth", str(rec)]
        bands.query_one("#input-b_hours", Input).value = "-1"  # the Bands table goes stale (dimmed)
        await wait_until(pilot, lambda: bands.stale, what="the Bands table dimmed")
        tab.query_one("#train-depth", Input).value = ""
        tab.action_from_bands()
        assert tab.query_one("#train-depth", Input).value == ""  # a stale row is not taken
        assert "dimmed" in str(tab.query_one("#train-status").render())


async def test_a_killed_trainer_never_takes_the_tui_down(app_factory, tmp_path, monkeypatch):
    import os
    import signal

    monkeypatch.setenv("LSDT_CACHE_DIR", str(tmp_path / "cache"))
    model, data = tiny_inputs(tmp_path)
    app = app_factory(initial_tab="train")
    async with app.run_test(size=(130, 42)) as pilot:
        tab = app.query_one(TrainTab)
        fill(tab, model=model, data=data, steps=5000, log_every=2, threads=1, run_dir=tmp_path / "k")
        tab.query_one("#train-device", Select).value = "cpu"
        await pilot.pause()
        tab.action_start()
        await wait_until(pilot, lambda: tab.view.n_metrics >= 1, timeout_s=60, what="the run under way")
        os.kill(tab.proc.pid, signal.SIGKILL)  # the OOM killer's way out: no end event, no checkpoint
        await wait_until(pilot, lambda: tab.exits == [-signal.SIGKILL], what="the exit seen")
        assert "killed by SIGKILL" in str(tab.query_one("#train-status").render())
        await wait_until(pilot, lambda: tab.view.status.state == "gone", what="the run seen as gone")
        assert app.is_running and app.failures == []
        assert not tab.query_one("#train-start").disabled


async def test_a_force_stop_is_the_users_not_the_oom_killers(app_factory, tmp_path, monkeypatch):
    """Stop pressed twice ends the trainer with SIGKILL: the tab says force-stopped, not 'killed by
    SIGKILL (the OS out-of-memory killer?)' (issue 17)."""
    import signal

    monkeypatch.setenv("LSDT_CACHE_DIR", str(tmp_path / "cache"))
    model, data = tiny_inputs(tmp_path)
    app = app_factory(initial_tab="train")
    async with app.run_test(size=(130, 42)) as pilot:
        tab = app.query_one(TrainTab)
        fill(tab, model=model, data=data, steps=5000, log_every=2, threads=1, run_dir=tmp_path / "f")
        tab.query_one("#train-device", Select).value = "cpu"
        await pilot.pause()
        tab.action_start()
        await wait_until(pilot, lambda: tab.view.n_metrics >= 1, timeout_s=60, what="the run under way")
        tab.stopping = True  # the first press was taken (its SIGINT may not have been handled yet)
        tab.stop_reason = "stopped"
        tab.action_stop()  # the second press: SIGKILL
        await wait_until(pilot, lambda: tab.exits == [-signal.SIGKILL], what="the exit seen")
        status = str(tab.query_one("#train-status").render())
        assert "force-stopped" in status and "out-of-memory" not in status
        assert app.is_running and app.failures == []
