"""The exported torchrun command runs: LSDT's trainer, launched with exactly the flags
`lsdt export --to torchrun` wrote, trains two steps on 2 CPU ranks (gloo) with the sharding the
plan assumed (ZeRO 2: FSDP2 keeping gathered weights through the step; ZeRO 3: resharding them)."""

from __future__ import annotations

import os
import sys

import pytest

from engine.runtime.train import rundir
from engine.sizing import export
from tests.runtime.train_helpers import REPO, make_inputs, run_torchrun

LAYOUT = {"gpus": 2, "dp": 2, "tp": 1, "pp": 1, "micro_batch": 2, "recompute": "none", "interleave": 1,
          "sequence_parallel": False}


@pytest.mark.slow
@pytest.mark.parametrize("zero,keep_weights", [(2, True), (3, False)])
def test_exported_command_trains_two_steps_on_two_gloo_ranks(tmp_path, zero, keep_weights):
    model, data, cache = make_inputs(tmp_path)
    cmd = export.torchrun_command(str(model), {**LAYOUT, "zero": zero}, global_batch=8, steps=2, gpus_per_node=8, seq_len=32)
    assert cmd[:5] == ["torchrun", "--nnodes", "1", "--nproc-per-node", "2"]
    # torchrun is `python -m torch.distributed.run`; --standalone picks a free port on this host.
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", *cmd[1:]]
    run = tmp_path / "run"
    local = ["--data", str(data), "--data-cache", str(cache), "--run-dir", str(run), "--device", "cpu", "--threads", "1",
             "--warmup", "0", "--eval-every", "2", "--eval-batches", "1", "--log-every", "1"]
    r = run_torchrun(launch + local, cwd=REPO, capture_output=True, text=True, timeout=240,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    config = rundir.read_config(run)
    assert config["fsdp"] is True and config["fsdp_keep_weights"] is keep_weights
    assert config["env"]["world_size"] == 2 and config["device_batch"] == 2 and config["grad_accum"] == 2
    metrics = rundir.read_metrics(run)
    assert [m["step"] for m in metrics] == [1, 2]
    assert metrics[-1]["tokens"] == 2 * 2 * 2 * 2 * 32  # steps x ranks x micro-batch x accumulation x seq
    assert rundir.read_events(run)[-1]["reason"] == "completed"
