"""Faults: kill -9 then --resume loses nothing beyond the last checkpoint; SIGTERM/SIGINT checkpoint and end;
a corrupt checkpoint is skipped for the previous good one."""

from __future__ import annotations

import signal
import subprocess

import pytest

from engine.runtime.train import rundir
from engine.runtime.train.checkpoint import checkpoint_path
from engine.runtime.train.loop import main as train_main
from tests.runtime.train_helpers import REPO, base_args, train_cmd, wait_for

LONG = {"--steps": 3000, "--ckpt-every": 5, "--eval-every": 1000, "--warmup": 2}


def _losses_by_step(run_dir) -> dict[int, float]:
    return {m["step"]: m["loss"] for m in rundir.read_metrics(run_dir)}


def test_kill_9_then_resume_loses_nothing_beyond_the_last_checkpoint(tmp_path):
    args = base_args(tmp_path, "killed", **{**LONG, "--steps": 60})
    proc = subprocess.Popen(train_cmd(*args), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = tmp_path / "killed"
    try:
        assert wait_for(lambda: checkpoint_path(run, 10).exists(), timeout=60)
        proc.kill()  # SIGKILL: no handler runs, no end event
    finally:
        proc.wait(timeout=30)
    assert rundir.run_status(run).state in ("gone", "ended")  # "ended" only if it beat the kill
    last_ckpt = int(rundir.list_checkpoints(run)[-1].stem.split("_")[1])
    assert train_main(["--run-dir", str(run), "--resume"]) == 0
    resume = [e for e in rundir.read_events(run) if e["event"] == "resume"][-1]
    assert resume["step"] == last_ckpt

    assert train_main(base_args(tmp_path, "reference", **{**LONG, "--steps": 60})) == 0
    ref = _losses_by_step(tmp_path / "reference")
    resumed = {m["step"]: m["loss"] for m in rundir.read_metrics(run)[::-1]}  # the resumed run's value wins
    assert set(resumed) == set(ref)
    assert all(resumed[s] == ref[s] for s in ref), "resumed losses differ from an uninterrupted run"
    assert rundir.run_status(run).state == "ended"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_writes_a_checkpoint_and_an_end_event(tmp_path, sig):
    run = tmp_path / "run"
    proc = subprocess.Popen(train_cmd(*base_args(tmp_path, **LONG)), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: len(rundir.read_metrics(run)) >= 7, timeout=60)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, err  # 143 SIGTERM / 130 SIGINT: a scheduler tells stopped from done
    end = rundir.read_events(run)[-1]
    assert end["event"] == "end" and end["reason"] == "signal" and signal.Signals(sig).name in end["message"]
    assert checkpoint_path(run, end["step"]).exists() and 7 <= end["step"] < 3000
    assert rundir.run_status(run).state == "ended"


def test_corrupt_checkpoint_is_skipped_for_the_previous_good_one(tmp_path):
    run = tmp_path / "run"
    assert train_main(base_args(tmp_path, **{"--steps": 12, "--ckpt-every": 4})) == 0
    newest = checkpoint_path(run, 12)
    data = bytearray(newest.read_bytes())
    data[len(data) // 3] ^= 0x55
    newest.write_bytes(bytes(data))
    assert train_main(["--run-dir", str(run), "--resume", "--steps", "14"]) == 0
    events = rundir.read_events(run)
    skipped = [e for e in events if e["event"] == "checkpoint_skipped"]
    assert len(skipped) == 1 and skipped[0]["path"] == str(newest) and "checksum" in skipped[0]["reason"]
    assert [e for e in events if e["event"] == "resume"][-1]["step"] == 8
    assert [m["step"] for m in rundir.read_metrics(run)][-6:] == [9, 10, 11, 12, 13, 14]


def test_resume_without_any_checkpoint_starts_over_and_says_so(tmp_path):
    run = tmp_path / "run"
    assert train_main(base_args(tmp_path, **{"--steps": 4, "--ckpt-every": 100})) == 0
    for p in (run / "checkpoints").iterdir():
        p.unlink()  # as if killed before the first checkpoint
    assert train_main(["--run-dir", str(run), "--resume"]) == 0
    resume = [e for e in rundir.read_events(run) if e["event"] == "resume"][-1]
    assert resume["step"] == 0 and resume["checkpoint"] is None and "starting from step 0" in resume["message"]
    assert [m["step"] for m in rundir.read_metrics(run)] == [1, 2, 3, 4, 1, 2, 3, 4]
