"""Multi-process training on CPU: 2 ranks on gloo under torchrun, DDP and FSDP2; rank 0 alone writes the run dir."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from engine.runtime.train import rundir
from engine.runtime.train.checkpoint import load_latest
from tests.runtime.train_helpers import REPO, base_args, run_torchrun


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "engine.runtime.train.loop", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return run_torchrun(cmd, cwd=REPO, capture_output=True, text=True, timeout=240, env=env)


def test_ddp_and_fsdp_on_two_cpu_ranks(tmp_path):
    """DDP: rank 0 writes one run dir counting both ranks' tokens. FSDP2 (sharded) takes the same
    steps as DDP (replicated) from the same seeds and data, to float rounding, and resumes."""
    common = {"--steps": 6, "--eval-every": 3, "--ckpt-every": 3}
    r = _torchrun(*base_args(tmp_path, "ddp", **common))
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "ddp"
    assert rundir.read_events(run)[0]["world_size"] == 2 and rundir.read_config(run)["env"]["world_size"] == 2
    ddp = rundir.read_metrics(run)
    assert [m["step"] for m in ddp] == list(range(1, 7))  # one line per step: rank 0 only
    assert ddp[-1]["tokens"] == 6 * 2 * 4 * 32  # both ranks' tokens count
    assert [m["step"] for m in ddp if "val_loss" in m] == [3, 6]
    assert rundir.read_events(run)[-1]["reason"] == "completed"
    assert r.stdout.count("step 6/6") == 1
    ref, _, _ = load_latest(run)
    assert ref["step"] == 6 and not any(k.startswith("module.") for k in ref["model"])  # unwrapped weights

    r = _torchrun(*base_args(tmp_path, "fsdp", **common, **{"--fsdp": True}))
    assert r.returncode == 0, r.stderr[-3000:]
    fsdp = rundir.read_metrics(tmp_path / "fsdp")
    assert [m["loss"] for m in fsdp] == pytest.approx([m["loss"] for m in ddp], rel=1e-4)
    assert fsdp[-1]["val_loss"] == pytest.approx(ddp[-1]["val_loss"], rel=1e-4)
    full, _, _ = load_latest(tmp_path / "fsdp")  # gathered to full tensors on rank 0
    assert set(full["model"]) == set(ref["model"])
    assert all(torch.allclose(full["model"][k], ref["model"][k], atol=1e-5) for k in ref["model"])

    r = _torchrun("--run-dir", str(tmp_path / "fsdp"), "--resume", "--steps", "8")
    assert r.returncode == 0, r.stderr[-3000:]
    m = rundir.read_metrics(tmp_path / "fsdp")
    assert [x["step"] for x in m][-2:] == [7, 8] and all(x["loss"] < 6 for x in m)
    assert rundir.read_events(tmp_path / "fsdp")[-1]["reason"] == "completed"
