"""`lsdt monitor --once` on run directories written by hand in the documented schema (no trainer
involved: any program writing these files can be monitored), on the machine alone, and on bad paths."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest


def write_run(path, *, end: dict | None = None, pid: int | None = None, host: str | None = None) -> None:
    """A run directory as a foreign trainer would write it: config.toml, metrics.jsonl, events.jsonl."""
    path.mkdir(parents=True)
    (path / "config.toml").write_text('[model]\nname = "d2"\n[train]\nsteps = 300\n')
    t = time.time() - 60
    base = {"lr": 3e-4, "mfu": None, "vram_alloc_bytes": None, "vram_peak_bytes": None}
    metrics = [
        {"step": 100, "time": t, "loss": 3.5, "tokens": 51200, "tok_per_s": 1000.0, **base},
        {"step": 200, "time": t + 10, "loss": 2.9, "tokens": 102400, "tok_per_s": 1200.0, "val_loss": 3.0123, **base},
        {"step": 250, "time": t + 20, "loss": 2.75, "tokens": 128000, "tok_per_s": 123456.0, **base,
         "mfu": 0.4125, "vram_alloc_bytes": 12_300_000_000, "vram_peak_bytes": 14_100_000_000},
    ]
    lines = [json.dumps(m) for m in metrics]
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n" + '{"step": 260, "ti')  # a line still being written
    events = [{"event": "start", "time": t - 5, "pid": pid or 999_999_999, "host": host or socket.gethostname()},
              {"event": "eval", "time": t + 10, "step": 200, "val_loss": 3.0123}]
    if end:
        events.append({"event": "end", "time": t + 30, **end})
    (path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (path / "checkpoints").mkdir()
    (path / "checkpoints" / "step_00000200.pt").write_bytes(b"x")


def test_finished_run_text(lsdt, tmp_path):
    run = tmp_path / "run"
    write_run(run, end={"reason": "completed", "step": 250})
    r = lsdt("monitor", "--once", str(run))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "ended: completed" in out
    assert "step     250" in out and "loss 2.7500" in out
    assert "val_loss 3.0123 (step 200)" in out  # the last eval, not the last line
    assert "123 ktok/s" in out and "MFU 41%" in out and "tokens 128k" in out
    assert "alloc 12.30 GB" in out and "peak 14.10 GB" in out
    assert "last step_00000200.pt" in out
    assert "process" not in out  # a finished run's PID is not watched
    assert ("GPU      no NVIDIA GPU/driver:" in out) or ("GPU 0" in out)
    assert "host     CPU" in out


def test_failed_run_json(lsdt, tmp_path):
    run = tmp_path / "run"
    write_run(run, end={"reason": "nan_loss", "message": "loss is nan at step 251"})
    r = lsdt("monitor", "--once", "--json", str(run))
    assert r.returncode == 0, r.stderr
    snap = json.loads(r.stdout)
    assert set(snap) == {"run", "machine"}
    run_ = snap["run"]
    assert run_["state"] == "failed" and run_["reason"] == "nan_loss" and "nan" in run_["message"]
    assert run_["last_step"] == 250 and run_["last_metrics"]["tok_per_s"] == 123456.0
    assert run_["val_loss"] == 3.0123 and run_["val_step"] == 200 and run_["n_metrics"] == 3
    m = snap["machine"]
    assert m["host"]["ram_total_bytes"] > 0
    if not m["gpus"]:
        assert m["gpu_error"].startswith("no NVIDIA GPU/driver: ")


def test_running_run_watches_the_training_process(lsdt, tmp_path):
    trainer = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<20: pass"])
    try:
        run = tmp_path / "run"
        write_run(run, pid=trainer.pid)
        r = lsdt("monitor", "--once", "--json", str(run))
        snap = json.loads(r.stdout)
        assert snap["run"]["state"] == "running" and snap["run"]["pid"] == trainer.pid
        proc = snap["machine"]["process"]
        assert proc["pid"] == trainer.pid and proc["alive"] and proc["rss_bytes"] > 1e6
        assert proc["cpu_pct"] > 10  # a spinning loop, measured over the one-shot's CPU window
        text = lsdt("monitor", "--once", str(run)).stdout
        assert f"running (pid {trainer.pid})" in text and f"process  pid {trainer.pid}" in text
    finally:
        trainer.kill()
        trainer.wait()


def test_killed_run_is_gone(lsdt, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = tmp_path / "run"
    write_run(run, pid=dead.pid)
    out = lsdt("monitor", "--once", str(run)).stdout
    assert "gone: process_gone" in out and "without an end event" in out


def test_machine_only(lsdt):
    r = lsdt("monitor", "--once", "--json")
    snap = json.loads(r.stdout)
    assert r.returncode == 0 and snap["run"] is None and snap["machine"]["host"]["cpu_count"] >= 1


def test_started_run_without_metrics(lsdt, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "events.jsonl").write_text(json.dumps({"event": "start", "time": time.time(), "pid": os.getpid(),
                                                  "host": socket.gethostname()}) + "\n")
    out = lsdt("monitor", "--once", str(run)).stdout
    assert f"running (pid {os.getpid()})" in out and "no metrics yet" in out


@pytest.mark.parametrize("make, words", [
    (lambda p: p / "missing", "no such file or directory"),
    (lambda p: p, "not a run of any known kind"),
    (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "not a run of any known kind"),
])
def test_bad_run_dir_one_line_exit_2(lsdt, tmp_path, make, words):
    r = lsdt("monitor", "--once", str(make(tmp_path)))
    assert r.returncode == 2 and words in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""


def test_refresh_loop_prints_until_interrupted(tmp_path):
    run = tmp_path / "run"
    write_run(run, end={"reason": "completed"})
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "monitor", "--json", "--interval", "0.1", str(run)],
                            stdout=subprocess.PIPE, text=True)
    lines = [proc.stdout.readline() for _ in range(3)]
    proc.send_signal(2)  # SIGINT, what Ctrl-C sends
    proc.communicate(timeout=20)
    assert proc.returncode == 0
    snaps = [json.loads(line) for line in lines]
    assert all(s["run"]["last_step"] == 250 for s in snaps)
    assert snaps[0]["machine"]["time"] < snaps[2]["machine"]["time"]


def test_gpu_lines_render_from_a_fake_nvml():
    from engine.runtime.monitor.report import render_machine
    from engine.runtime.monitor import telemetry
    from tests.runtime.test_telemetry import make_fake_nvml

    fake = make_fake_nvml(unsupported=("nvmlDeviceGetTemperature",))
    machine = telemetry.sample(pid=4242, interval_s=0, nvml=telemetry.Nvml(fake)).to_dict()
    text = "\n".join(render_machine(machine))
    assert "GPU 0    NVIDIA H100 80GB HBM3: util 97%, mem 30.0/85.0 GB, 612 W / 700 W, n/a C, SM 1980 MHz, mem 2619 MHz" in text
    assert "pid 4242" in text and "29.00 GB" in text
    assert "driver   550.54.15" in text and "no NVIDIA GPU/driver" not in text


def write_tensorboard_run(path, steps=range(3)):
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(path))
    for step in steps:
        w.add_scalar("train/loss", 3.0 - 0.5 * step, step)
        w.add_scalar("eval/loss", 3.5 - 0.5 * step, step)
    w.close()


def test_foreign_run_json_and_text(lsdt, tmp_path):
    write_tensorboard_run(tmp_path / "tb")
    r = lsdt("monitor", "--once", "--json", str(tmp_path / "tb"))
    assert r.returncode == 0, r.stderr
    run_ = json.loads(r.stdout)["run"]
    assert run_["source"] == "tensorboard" and run_["state"] == "running" and run_["last_step"] == 2
    assert run_["last_metrics"]["loss"] == 2.0 and run_["val_loss"] == 2.5 and run_["problems"] == []
    text = lsdt("monitor", "--once", str(tmp_path / "tb")).stdout
    assert "[tensorboard]" in text and "loss 2.0000" in text and "val_loss 2.5000 (step 2)" in text
    assert "running (new data within --stall-after)" in text


def test_no_argument_picks_the_newest_run(lsdt, tmp_path):
    write_run(tmp_path / "runs" / "old", end={"reason": "completed"})
    old = time.time() - 7200
    for f in (tmp_path / "runs" / "old").iterdir():
        os.utime(f, (old, old))
    write_tensorboard_run(tmp_path / "runs" / "new")
    r = lsdt("monitor", "--once", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["run"]["dir"].endswith("new")


def test_export_csv_and_tensorboard_read_back_by_tensorboard(lsdt, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    write_run(run, end={"reason": "completed"})
    r = lsdt("monitor", str(run), "--export", str(tmp_path / "out"), "--to", "tensorboard")
    assert r.returncode == 0, r.stderr
    acc = EventAccumulator(str(tmp_path / "out"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(100, 3.5), (200, pytest.approx(2.9)), (250, 2.75)]  # float32
    assert [e.step for e in acc.Scalars("val_loss")] == [200]
    # and the TensorBoard export read back as CSV through the Monitor's own reader
    r = lsdt("monitor", str(tmp_path / "out"), "--export", str(tmp_path / "csv"), "--to", "csv")
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("step,time,") and "loss" in lines[0] and len(lines) > 3
    # an existing export is never overwritten
    before = (tmp_path / "csv" / "metrics.csv").read_bytes()
    r = lsdt("monitor", str(tmp_path / "out"), "--export", str(tmp_path / "csv"))
    assert r.returncode == 2 and "metrics.csv exists already" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert (tmp_path / "csv" / "metrics.csv").read_bytes() == before


@pytest.mark.parametrize("args, words", [
    (["--source", "hf"], "not a Hugging Face Trainer dir (--source hf); detected: lsdt"),
    (["--columns", "step"], "is not SERIES=COLUMN"),
    (["--columns", "step=it"], "--columns: only for a CSV/JSONL metrics file"),
    (["--to", "parquet", "--export", "x"], "invalid choice: 'parquet'"),
])
def test_bad_monitor_flags_one_line_exit_2(lsdt, tmp_path, args, words):
    write_run(tmp_path / "run")
    r = lsdt("monitor", "--once", str(tmp_path / "run"), *args)
    assert r.returncode == 2 and words in r.stderr, r.stderr
    assert r.stdout == ""


def write_gpu_run(path, *, hardware="rtx4090", tok_per_s=60_000.0):
    """An LSDT run dir as `lsdt train --depth 12` on an RTX 4090 writes it (config.toml from the
    real writer; the GPU part of the config is what the trainer records there)."""
    from engine.runtime.train.rundir import RunWriter
    from engine.sizing.shapes import band_spec

    w = RunWriter(path)
    w.write_config({"model": band_spec(12, seq_len=1024).to_dict(), "device_batch": 8, "grad_accum": 4, "fsdp": False,
                    "env": {"device": "NVIDIA GeForce RTX 4090", "device_type": "cuda", "hardware": hardware, "world_size": 1}})
    w.event("start", step=0)
    w.metric({"step": 100, "time": time.time(), "loss": 3.0, "lr": 1e-3, "tokens": 100 * 32768, "tok_per_s": tok_per_s,
              "mfu": 0.35, "vram_alloc_bytes": 8e9, "vram_peak_bytes": 11e9})
    w.event("end", reason="completed", step=100)


def test_predicted_beside_measured_and_calibration_back_into_plan(lsdt, tmp_path):
    run = tmp_path / "gpu-run"
    write_gpu_run(run)
    snap = json.loads(lsdt("monitor", "--once", "--json", str(run)).stdout)
    model = snap["run"]["model"]
    assert model["why_na"] is None and model["basis"]["hardware"] == "rtx4090"
    p, m = model["predicted"], model["measured"]
    assert p["tok_per_s"] > 0 and 0 < p["mfu"] < 1 and 1e9 < p["memory_bytes"] < 24e9
    assert m == {"tok_per_s": 60_000.0, "mfu": 0.35, "memory_bytes": 11e9}
    text = lsdt("monitor", "--once", str(run)).stdout
    assert "model    predicted " in text and "measured 60 ktok/s MFU 35% peak 11.0 GB" in text
    # the measurement fed back: a probe file `lsdt plan --calibrate` takes
    out = tmp_path / "cal.json"
    r = lsdt("monitor", str(run), "--calibration-out", str(out))
    assert r.returncode == 0 and "lsdt plan --calibrate" in r.stdout, r.stderr
    from engine.sizing.calibrate import calibrated_efficiency  # what `lsdt plan --calibrate` calls
    from engine.specs import load_hardware

    eff = calibrated_efficiency(out, load_hardware("rtx4090"))
    assert "calibrated from 1 probe result" in eff.source
    # slower measured -> lower GEMM efficiency: the calibration follows the measurement
    write_gpu_run(tmp_path / "slow", tok_per_s=20_000.0)
    lsdt("monitor", str(tmp_path / "slow"), "--calibration-out", str(tmp_path / "slow.json"))
    assert calibrated_efficiency(tmp_path / "slow.json", load_hardware("rtx4090")).eta_gemm < eff.eta_gemm
    r = lsdt("monitor", str(run), "--calibration-out", str(out))  # never over an existing file
    assert r.returncode == 2 and "exists already" in r.stderr


def test_prediction_na_on_cpu_and_for_foreign_runs(lsdt, tmp_path):
    write_gpu_run(tmp_path / "cpu", hardware=None)
    snap = json.loads(lsdt("monitor", "--once", "--json", str(tmp_path / "cpu")).stdout)
    assert snap["run"]["model"]["predicted"] is None
    assert "no hardware profile for device" in snap["run"]["model"]["why_na"]
    r = lsdt("monitor", str(tmp_path / "cpu"), "--calibration-out", str(tmp_path / "x.json"))
    assert r.returncode == 2 and "nothing to calibrate from" in r.stderr and not (tmp_path / "x.json").exists()
    write_tensorboard_run(tmp_path / "tb")
    snap = json.loads(lsdt("monitor", "--once", "--json", str(tmp_path / "tb")).stdout)
    assert "do not name both the model's shape and the GPU" in snap["run"]["model"]["why_na"]


def test_nan_from_foreign_writers_reads_as_no_point(lsdt, tmp_path):
    """A NaN loss in a TensorBoard file or trainer_state.json (Python's json writes NaN): --json
    must not choke on it (JSON has no NaN)."""
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(str(tmp_path / "tb"))
    w.add_scalar("train/loss", 2.0, 0)
    w.add_scalar("train/loss", float("nan"), 1)
    w.close()
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "trainer_state.json").write_text(
        '{"global_step": 2, "max_steps": 10, "log_history": [{"loss": 2.0, "step": 1}, {"loss": NaN, "step": 2}]}')
    for run, source in ((tmp_path / "tb", "tensorboard"), (tmp_path / "hf", "hf")):
        r = lsdt("monitor", "--once", "--json", str(run))
        assert r.returncode == 0, r.stderr
        run_ = json.loads(r.stdout)["run"]
        assert run_["source"] == source and run_["last_metrics"]["loss"] == 2.0
