"""kill -9 at whatever moment, checkpoints being written all the time: --resume then starts from a
checkpoint that verifies, sweeps what the killed writer left half-done, and finishes."""

from __future__ import annotations

import subprocess

from engine.runtime.train import checkpoint as C
from engine.runtime.train import rundir
from engine.runtime.train.loop import main as train_main
from tests.runtime.train_helpers import REPO, base_args, train_cmd, wait_for


def test_kill_9_while_checkpointing_every_step(tmp_path):
    run = tmp_path / "run"
    args = base_args(tmp_path, **{"--steps": 3000, "--ckpt-every": 1, "--eval-every": 1000, "--log-every": 1})
    for kills in range(1, 3):  # two kills at different moments of the write cycle
        resume = ["--resume"] if kills > 1 else []
        cmd = train_cmd(*args, *resume) if not resume else train_cmd("--run-dir", str(run), "--resume")
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        target = 3 * kills
        assert wait_for(lambda: any(s >= target for s, _ in C.list_checkpoints(run)), timeout=120)
        proc.kill()
        proc.wait(timeout=30)
    newest_before = C.list_checkpoints(run)[0][0]
    assert train_main(["--run-dir", str(run), "--resume", "--steps", str(newest_before + 2)]) == 0
    resume = [e for e in rundir.read_events(run) if e["event"] == "resume"][-1]
    assert resume["checkpoint"] is not None and resume["step"] >= 3
    left = [p.name for p in (run / rundir.CHECKPOINT_DIR).iterdir()
            if p.name.endswith((".tmp", ".partial")) or p.name.startswith(".")]
    assert left == []
    assert rundir.run_status(run).state == "ended"
    for _, p in C.list_checkpoints(run):
        C.read_checkpoint(p)  # every checkpoint kept verifies
