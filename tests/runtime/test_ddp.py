"""DDP: 2 CPU ranks on gloo under torchrun train one model; rank 0 alone writes the run directory."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from engine.runtime import rundir
from engine.runtime.checkpoint import load_latest
from tests.runtime.train_helpers import REPO, base_args


def test_torchrun_two_cpu_ranks_on_gloo(tmp_path):
    args = base_args(tmp_path, **{"--steps": 6, "--eval-every": 3, "--ckpt-every": 3})
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "engine.runtime.train", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "run"
    start = rundir.read_events(run)[0]
    assert start["world_size"] == 2
    metrics = rundir.read_metrics(run)
    assert [m["step"] for m in metrics] == list(range(1, 7))  # one line per step: rank 0 only
    assert metrics[-1]["tokens"] == 6 * 2 * 4 * 32  # both ranks' tokens count
    assert [m["step"] for m in metrics if "val_loss" in m] == [3, 6]
    assert rundir.read_events(run)[-1]["reason"] == "completed"
    assert rundir.read_config(run)["env"]["world_size"] == 2
    state, _, _ = load_latest(run)
    assert state["step"] == 6 and not any(k.startswith("module.") for k in state["model"])  # unwrapped weights
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert r.stdout.count("step 6/6") == 1
