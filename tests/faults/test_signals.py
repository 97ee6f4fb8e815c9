"""Signals: SIGTERM ends `lsdt train` with 143 (SIGINT 130) after a checkpoint and an end event, also
inside one long optimizer step (the stop flag is read between micro-batches); MoE jobs likewise.
Before: exit 0, and a huge grad-accum step ran to its end (still alive 20 s later)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

from engine.runtime.train import rundir
from engine.runtime.train.checkpoint import checkpoint_path, read_checkpoint
from tests.runtime.train_helpers import REPO, base_args, wait_for


def _lsdt_train(*args):
    return subprocess.Popen([sys.executable, "-m", "engine.cli", "train", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigterm_inside_a_long_step_stops_within_a_micro_batch(tmp_path):
    run = tmp_path / "run"
    # ~thousands of micro-batches in one optimizer step: minutes of work for step 1 on this machine
    proc = _lsdt_train(*base_args(tmp_path, **{"--steps": 5, "--grad-accum": 10000, "--warmup": 1}))
    try:
        assert wait_for(lambda: any(e["event"] == "start" for e in rundir.read_events(run)), timeout=120)
        time.sleep(1.0)  # well inside step 1
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert took < 20, f"SIGTERM took {took:.1f} s to honour"
    end = rundir.read_events(run)[-1]
    assert end["event"] == "end" and end["reason"] == "signal" and end["step"] == 0 and "SIGTERM" in end["message"]
    assert read_checkpoint(checkpoint_path(run, 0))["step"] == 0  # the state before the abandoned step
    assert not rundir.read_metrics(run)


def test_sigterm_and_sigint_exit_codes_of_lsdt_train(tmp_path):
    for sig in (signal.SIGTERM, signal.SIGINT):
        run = tmp_path / f"run-{sig.name}"
        proc = _lsdt_train(*base_args(tmp_path, run.name, **{"--steps": 3000, "--eval-every": 1000}))
        try:
            assert wait_for(lambda: len(rundir.read_metrics(run)) >= 2, timeout=120)
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 128 + sig, (sig, err)
        end = rundir.read_events(run)[-1]
        assert end["reason"] == "signal" and checkpoint_path(run, end["step"]).exists()


def test_moe_job_process_exits_128_plus_the_signal(monkeypatch):
    from engine.runtime.moe import train as moe_train
    from engine.runtime.train.signals import Stopped

    def stopped(*a, **kw):
        raise Stopped(signal.SIGTERM)

    monkeypatch.setattr(moe_train, "read_config", lambda d: None)
    monkeypatch.setattr(moe_train, "run_job", stopped)
    assert moe_train.main(["--run-dir", "x", "--job", "trunk"]) == 143
