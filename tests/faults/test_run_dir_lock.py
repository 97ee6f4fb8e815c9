"""One writer per run directory: a second trainer and a --resume of a live run are refused with one
line, before they write anything; the lock dies with its holder (kill -9 included)."""

from __future__ import annotations

import subprocess

from engine.runtime.train import rundir
from engine.runtime.train.checkpoint import checkpoint_path
from tests.runtime.train_helpers import REPO, base_args, run_train, train_cmd, wait_for

LONG = {"--steps": 3000, "--ckpt-every": 5, "--eval-every": 1000, "--warmup": 2}


def _start_long(tmp_path):
    proc = subprocess.Popen(train_cmd(*base_args(tmp_path, **LONG)), cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = tmp_path / "run"
    assert wait_for(lambda: checkpoint_path(run, 5).exists(), timeout=60)
    return proc, run


def _refused(res, run, why="in use by another run"):
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and why in lines[0] and str(run) in lines[0], res.stderr
    assert "Traceback" not in res.stderr


def test_two_trainers_started_together_one_runs_one_is_refused(tmp_path):
    args = base_args(tmp_path, **{**LONG, "--steps": 40})
    procs = [subprocess.Popen(train_cmd(*args), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    err = next(e for code, e in results if code == 2).strip().splitlines()
    # refused at the lock (both passed the early "holds a run" check) or by it (the other already wrote)
    assert len(err) == 1 and ("in use by another run" in err[0] or "already holds a run" in err[0]), err
    events = rundir.read_events(tmp_path / "run")
    assert [e["event"] for e in events].count("start") == 1 and [e["event"] for e in events].count("end") == 1
    assert [m["step"] for m in rundir.read_metrics(tmp_path / "run")] == list(range(1, 41))  # one writer's lines


def test_resume_of_a_live_run_is_refused(tmp_path):
    proc, run = _start_long(tmp_path)
    try:
        before = [e["event"] for e in rundir.read_events(run)]
        _refused(run_train(*base_args(tmp_path, **LONG)), run)  # the same flags again: a second trainer
        _refused(run_train("--run-dir", str(run), "--resume"), run)
        events = rundir.read_events(run)
        assert [e["event"] for e in events][:len(before)] == before
        assert sum(e["event"] == "start" for e in events) == 1 and not any(e["event"] == "end" for e in events)
        assert rundir.run_status(run).state == "running"  # not "completed" by a refused second writer
        holder = (run / "run.lock").read_text().strip()
        assert holder == str(proc.pid)
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_lock_of_a_killed_run_does_not_block_resume(tmp_path):
    proc, run = _start_long(tmp_path)
    proc.kill()  # SIGKILL: the kernel drops the flock, the lock file stays
    proc.wait(timeout=30)
    assert (run / "run.lock").exists()
    res = run_train("--run-dir", str(run), "--resume", "--steps", "12")
    assert res.returncode == 0, res.stderr
    assert rundir.run_status(run).state == "ended"
