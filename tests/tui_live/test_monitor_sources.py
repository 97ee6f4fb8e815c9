"""The Monitor tab on runs other trainers write (TensorBoard events from torch's SummaryWriter,
grown while the tab tails them; a Lightning CSV), and its keys: x axis, smoothing, log y, overlay,
machine metric, config panel, stop."""

from __future__ import annotations

import signal
import time

from engine.runtime.train import rundir

from app.tabs.monitor import MonitorTab
from tests.tui_live.conftest import wait_until


def status_text(view) -> str:
    return str(view.query_one("#run-status").render())


async def test_tensorboard_run_grown_while_watched(app_factory, tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(tmp_path / "tb"), flush_secs=3600)
    for step in range(20):
        w.add_scalar("train/loss", 4.0 - step * 0.05, step)
        w.add_scalar("train/learning_rate", 1e-3, step)
        w.add_scalar("train/grad_norm", 0.5, step)
    w.flush()
    app = app_factory(initial_tab="monitor")
    async with app.run_test(size=(160, 50)) as pilot:
        tab = app.query_one(MonitorTab)
        view = tab.view
        assert tab.attach_path(str(tmp_path / "tb"))
        await wait_until(pilot, lambda: view.n_metrics == 60, what="the first 20 steps (3 tags each)")
        loss = view.charts["loss"]
        assert len(loss.series("train")) == 20
        assert len(view.charts["lr"].series("lr")) == 20 and len(view.charts["grad"].series("grad norm")) == 20
        assert "[tensorboard]" in status_text(view) and "running" in status_text(view)
        for step in range(20, 30):
            w.add_scalar("train/loss", 3.0, step)
            if step >= 27:
                w.add_scalar("custom/throughput", 123.0, step)
        w.flush()
        await wait_until(pilot, lambda: len(loss.series("train")) == 30, what="the 10 steps appended since")
        assert "step     29" in status_text(view)
        # a tag LSDT has no chart for is still a series to pick
        await pilot.press("t")
        assert view.picked_series == "custom/throughput" and view.charts["grad"].title == "custom/throughput"
        assert len(view.charts["grad"].series("custom/throughput")) == 3 and "grad norm" in view.charts["grad"].hidden
        await pilot.press("t")
        assert view.picked_series == "grad norm"
        # TensorBoard's smoothing: an EMA drawn over the raw loss, which goes grey
        await pilot.press("s")
        assert view.smoothing == 0.6 and len(loss.series("smoothed")) == 30 and loss._style["train"]["color"] == "gray"
        w.add_scalar("train/loss", 3.0, 30)
        w.flush()
        await wait_until(pilot, lambda: len(loss.series("smoothed")) == 31, what="the EMA follows new points")
        for _ in range(3):
            await pilot.press("s")
        assert view.smoothing == 0.0 and "smoothed" not in loss.series_names()
        await pilot.press("y")
        assert loss.log_y
        await wait_until(pilot, lambda: "(log y)" in str(loss._text or ""), what="the log-y chart drawn")
        await pilot.press("ctrl+l")
        assert loss.x_key == "tokens"
        await pilot.press("ctrl+l")
        assert loss.x_key == "minutes" and len(loss.series("train", "minutes")) == 31  # SummaryWriter's wall time
        w.close()
        assert app.failures == []


async def test_overlay_config_and_machine_metric(app_factory, run_writer, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    run_writer(runs / "a", "--lines", "40", "--rate", "1000", "--end", "completed").wait(timeout=20)
    lit = runs / "b" / "version_0"
    lit.mkdir(parents=True)
    (lit / "metrics.csv").write_text("epoch,step,train_loss\n" + "".join(f"0,{s},{3 - s / 100}\n" for s in range(50)))
    (lit / "hparams.yaml").write_text("lr: 0.0003\nn_layer: 2\n")
    monkeypatch.setenv("LSDT_RUNS_DIR", str(runs))
    app = app_factory(initial_tab="monitor")
    async with app.run_test(size=(160, 50)) as pilot:
        tab = app.query_one(MonitorTab)
        view = tab.view
        await wait_until(pilot, lambda: len(tab.runs) == 2, what="both runs listed")
        assert [(p.name, source) for p, source, _, _ in tab.runs] == [("b", "lightning"), ("a", "lsdt")]
        assert tab.runs[1][2] == "ended"
        assert tab.attach_path(str(runs / "a"))
        await wait_until(pilot, lambda: view.n_metrics == 40, what="run a read")
        tab.query_one("#recent-runs").highlighted = 0  # the Lightning run
        await pilot.press("o")
        assert view.overlays == ["b"]
        loss = view.charts["loss"]
        await wait_until(pilot, lambda: "b" in loss.series_names() and len(loss.series("b")) == 50, what="the overlay")
        await pilot.press("o")
        assert view.overlays == [] and "b" not in loss.series_names()
        await pilot.press("c")
        text = str(app.screen.query_one("#run-config-text").render())
        assert "model.name = 'fake'" in text and "writer = 'run_writer.py'" in text
        await pilot.press("escape")
        await pilot.press("m")
        assert view.machine_metric == "memory GB"
        assert view.charts["machine"].title == "machine: memory GB"
        await pilot.press("ctrl+t")  # an ended run: nothing to stop
        assert "only an LSDT run running on this host" in str(tab.query_one("#monitor-error").render())
        assert app.failures == []


async def test_stop_a_running_lsdt_run_and_memory_of_a_cpu_run(app_factory, run_writer, tmp_path):
    run = tmp_path / "live"
    proc = run_writer(run, "--rate", "50")
    deadline = time.monotonic() + 10
    while not (run / rundir.METRICS_FILE).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    app = app_factory(initial_tab="monitor")
    async with app.run_test(size=(160, 50)) as pilot:
        tab = app.query_one(MonitorTab)
        view = tab.view
        assert tab.attach_path(str(run))
        await wait_until(pilot, lambda: view.status is not None and view.status.state == "running", what="running")
        mem = view.charts["memory"]
        # no torch VRAM on a CPU run, but the process's RSS is charted (psutil)
        await wait_until(pilot, lambda: len(mem.series("process RSS")) >= 1, timeout_s=10, what="RSS sampled")
        await wait_until(pilot, lambda: any(n.endswith("process CPU %") for n in view.charts["machine"].series_names()),
                         timeout_s=10, what="the process's CPU in the machine history")
        await pilot.press("ctrl+t")
        assert proc.wait(timeout=10) == -signal.SIGINT  # the graceful signal, as the Train tab's stop
        await wait_until(pilot, lambda: view.status.state == "gone", what="the run seen stopped")
        assert app.failures == []


async def test_predicted_beside_measured_and_the_calibration_key(app_factory, tmp_path):
    from tests.runtime.test_monitor import write_gpu_run

    run = tmp_path / "gpu-run"
    write_gpu_run(run)
    app = app_factory(initial_tab="monitor")
    async with app.run_test(size=(160, 50)) as pilot:
        tab = app.query_one(MonitorTab)
        assert tab.attach_path(str(run))
        panel = tab.query_one("#monitor-model")
        await wait_until(pilot, lambda: "tok/s" in str(panel.render()), timeout_s=10, what="the comparison")
        text = str(panel.render())
        assert "predicted · measured" in text and "60 k" in text and "35%" in text
        await pilot.press("p")
        written = list(run.glob("calibration_step_100.json"))
        assert written and "lsdt plan --calibrate" in str(tab.query_one("#monitor-error").render())
        await pilot.press("p")  # never over the file already written
        assert "exists already" in str(tab.query_one("#monitor-error").render())
        assert app.failures == []


async def test_gpu_process_list_opens_the_run_a_process_writes(app_factory, tmp_path):
    """No GPU here: the NVML sample is built by hand, with the PID of a real process that holds a
    TensorBoard event file open (as a training script's SummaryWriter does); finding its run is real."""
    import subprocess
    import sys

    from engine.runtime.monitor import telemetry

    script = ("import sys, time\nfrom torch.utils.tensorboard import SummaryWriter\n"
              "w = SummaryWriter(sys.argv[1])\nw.add_scalar('train/loss', 2.0, 0)\nw.flush()\n"
              "print('ready', flush=True)\ntime.sleep(60)\n")
    trainer = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "tb-run")], stdout=subprocess.PIPE, text=True,
                               cwd=tmp_path)
    try:
        assert trainer.stdout.readline().strip() == "ready"
        app = app_factory(initial_tab="monitor")
        async with app.run_test(size=(160, 50)) as pilot:
            tab = app.query_one(MonitorTab)
            gpu = telemetry.GpuSample(0, "NVIDIA GeForce RTX 4090", None, 97.0, 40.0, 20e9, 24e9, 400.0, 450.0, 70.0, 2500, 10000,
                                      processes=(telemetry.GpuProcess(trainer.pid, "python", 19e9, "python -c ... tb-run"),))
            tab.view._ensure_sampler = lambda: None  # keep the hand-made sample on screen
            tab.view._stop_sampler()
            tab.view.machine = telemetry.Sample(time.time(), (gpu,), None, "550.54", None, None)
            await pilot.press("g")
            options = app.screen.query_one("#gpu-processes")
            assert f"pid {trainer.pid}" in str(options.get_option_at_index(0).prompt)
            await pilot.press("enter")
            await wait_until(pilot, lambda: tab.reader is not None, what="the run opened")
            assert tab.reader.source == "tensorboard" and tab.reader.path == tmp_path / "tb-run"
            assert "its command line names" in str(tab.query_one("#monitor-error").render())
            await wait_until(pilot, lambda: tab.view.n_metrics == 1, what="its loss read")
    finally:
        trainer.kill()
        trainer.wait()


def test_gpu_process_rows_without_a_gpu():
    from app.screens.gpu_processes import process_rows
    from engine.runtime.monitor import telemetry

    sample = telemetry.sample(interval_s=0)
    rows = process_rows(sample)
    if not sample.gpus:
        assert rows == [(None, sample.gpu_error)] and rows[0][1].startswith("no NVIDIA GPU/driver")


async def test_a_run_deleted_or_corrupt_while_watched_one_line_and_the_rest_shown(app_factory, tmp_path):
    import shutil

    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(tmp_path / "tb"))
    for step in range(10):
        w.add_scalar("train/loss", 3.0, step)
    w.close()
    (event_file,) = (tmp_path / "tb").glob("events.*")
    event_file.write_bytes(event_file.read_bytes()[:-5])  # the last record cut short
    app = app_factory(initial_tab="monitor")
    async with app.run_test(size=(160, 50)) as pilot:
        tab = app.query_one(MonitorTab)
        view = tab.view
        assert tab.attach_path(str(tmp_path / "tb"))
        await wait_until(pilot, lambda: "unreadable record at byte" in status_text(view), timeout_s=10, what="the problem line")
        assert view.n_metrics == 9 and len(view.charts["loss"].series("train")) == 9
        shutil.rmtree(tmp_path / "tb")
        await wait_until(pilot, lambda: view.status.state == "gone", what="the deletion noticed")
        assert "deleted while watched" in status_text(view) and len(view.charts["loss"].series("train")) == 9
        assert app.failures == []
