"""Two-phase training: frozen trunk bytes, deterministic weight files, resume, parallel = sequential."""

from __future__ import annotations

import io
import shutil

import pytest
import torch

from engine.errors import UserError
from engine.runtime.moe import train as moe_train
from engine.runtime.train import rundir
from engine.runtime.moe.config import phase2_jobs, weights_path, write_config
from engine.runtime.seal.s7l import load_tensors, verify


def _bytes(t: torch.Tensor) -> bytes:
    return t.detach().float().cpu().contiguous().numpy().tobytes()


def test_phase2_leaves_the_trunk_bytes_identical(trained_run, cfg_factory):
    root, cfg, trunk = trained_run
    sealed, _ = load_tensors(weights_path(root, "trunk"))
    # an expert job in this process: its model's trunk after training == the phase-1 file, byte for byte
    write_config(root / "again", cfg)
    shutil.copytree(root / "weights", root / "again" / "weights")
    outcome = moe_train.run_job(cfg, root / "again", "expert:math", out=io.StringIO())
    after = outcome.moe.trunk_parameters()
    assert set(after) == set(sealed)
    for name, p in after.items():
        assert _bytes(p) == _bytes(sealed[name]), name
    # ...while the expert itself moved away from its initialisation
    init = moe_train.build_moe(cfg).expert_parameters(1)
    assert any(_bytes(p) != _bytes(init[n]) for n, p in outcome.moe.expert_parameters(1).items())


def test_run_layout_and_run_dirs(trained_run):
    root, cfg, _ = trained_run
    for job in ["trunk", *phase2_jobs(cfg)]:
        assert verify(weights_path(root, job), determinism=False).ok
    for d in (root / "trunk", root / "experts" / "code", root / "router"):
        status = rundir.is_run_dir(d)
        assert status
        events = [e["event"] for e in rundir.read_jsonl(d / "events.jsonl")]
        assert events[0] == "start" and events[-1] == "end"
        assert rundir.read_jsonl(d / "metrics.jsonl")[-1]["val_loss"] is not None
    moe = moe_train.assemble(root, cfg)
    assert moe.num_params() == 508_160


def test_weights_are_deterministic(trained_run, tmp_path):
    root, cfg, trunk = trained_run
    write_config(tmp_path, cfg)
    again = moe_train.run_job(cfg, tmp_path, "trunk", out=io.StringIO())
    assert again.merkle_root == trunk.merkle_root
    assert again.path.read_bytes() == trunk.path.read_bytes()


def test_parallel_processes_give_the_same_bytes_as_in_process(trained_run, tmp_path):
    """Phase-2 jobs in a 2-process pool write the same files as the sequential in-process run."""
    root, cfg, _ = trained_run
    write_config(tmp_path, cfg)
    (tmp_path / "weights").mkdir()
    keep = {"trunk", "expert:code", "expert:math", "expert:reasoning"}  # done: only 2 jobs left to run
    for job in keep:
        shutil.copy(weights_path(root, job), weights_path(tmp_path, job))
    moe_train.run_phase2(cfg, tmp_path, workers=2, resume=True, out=io.StringIO())
    for job in ("expert:general", "router"):
        assert weights_path(tmp_path, job).read_bytes() == weights_path(root, job).read_bytes(), job


def test_resume_after_interruption_matches_an_uninterrupted_run(trained_run, tmp_path, monkeypatch):
    root, _, _ = trained_run
    cfg = trained_run[1]
    cfg = type(cfg)(**{**cfg.to_dict(), "ckpt_every": 2})
    write_config(tmp_path, cfg)
    calls = {"n": 0}
    from engine.runtime.train import step as step_mod

    original = step_mod.TrainStep.__call__

    def interrupted(self, micro, lr):
        calls["n"] += 1
        if calls["n"] == 4:  # after the step-2 checkpoint, during step 4
            raise KeyboardInterrupt
        return original(self, micro, lr)

    monkeypatch.setattr(step_mod.TrainStep, "__call__", interrupted)
    with pytest.raises(KeyboardInterrupt):
        moe_train.run_job(cfg, tmp_path, "trunk", out=io.StringIO())
    monkeypatch.setattr(step_mod.TrainStep, "__call__", original)
    with pytest.raises(UserError, match="--resume"):
        moe_train.run_job(cfg, tmp_path, "trunk", out=io.StringIO())
    resumed = moe_train.run_job(cfg, tmp_path, "trunk", resume=True, out=io.StringIO())
    # the same tensors, bit for bit (the files' headers differ only by the recorded ckpt_every)
    a, _ = load_tensors(resumed.path)
    b, _ = load_tensors(weights_path(root, "trunk"))
    assert set(a) == set(b) and all(_bytes(a[n]) == _bytes(b[n]) for n in a)
    events = [e["event"] for e in rundir.read_jsonl(tmp_path / "trunk" / "events.jsonl")]
    assert "resume" in events


def test_expert_weights_name_their_trunk(trained_run, tmp_path):
    """Experts trained on another trunk are refused at assembly."""
    root, cfg, _ = trained_run
    shutil.copytree(root / "weights", tmp_path / "weights")
    write_config(tmp_path, cfg)
    other = type(cfg)(**{**cfg.to_dict(), "seed": 7})
    write_config(tmp_path / "other", other)
    moe_train.run_job(other, tmp_path / "other", "trunk", out=io.StringIO())
    target = weights_path(tmp_path, "trunk")
    target.chmod(0o644)
    shutil.copy(weights_path(tmp_path / "other", "trunk"), target)
    with pytest.raises(UserError, match="trained on trunk"):
        moe_train.assemble(tmp_path, cfg)


def test_job_flops():
    from engine.runtime.model.moe import tiny_spec
    from engine.specs import load_model

    spec = load_model("s7-moe-140m")
    trunk, expert, router = (moe_train.job_flops_per_token(spec, j, 2048) for j in ("trunk", "expert:code", "router"))
    assert router < trunk < expert
    # router job: the frozen trunk's forward (2 N + 4 x width x context per layer) + the router trained (6 d E)
    block = 4 * 512 * 512 + 2 * 512 * 2048
    assert router == 6 * 2 * block + 6 * 4 * 512 * 2048 + 6 * 512 * 4
    # expert job: that trunk forward + 8 trained blocks and the head (6 N) + their attention (12 x width x context)
    assert expert == router - 6 * 512 * 4 + 6 * (8 * block + 36864 * 512) + 8 * 12 * 512 * 2048
    assert moe_train.job_flops_per_token(tiny_spec(spec), "trunk", 128) > 0


def test_sigterm_checkpoints_then_resume_finishes_the_same(trained_run, tmp_path, monkeypatch):
    import os
    import signal

    from engine.runtime.train import step as step_mod
    from engine.runtime.train.checkpoint import list_checkpoints

    root, cfg, _ = trained_run
    write_config(tmp_path, cfg)
    original = step_mod.TrainStep.__call__
    calls = {"n": 0}

    def signalled(self, micro, lr):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # the handler only sets a flag; the step completes
        return original(self, micro, lr)

    monkeypatch.setattr(step_mod.TrainStep, "__call__", signalled)
    with pytest.raises(KeyboardInterrupt):
        moe_train.run_job(cfg, tmp_path, "trunk", out=io.StringIO())
    assert signal.getsignal(signal.SIGTERM) is not None  # the previous handler is back
    assert [s for s, _ in list_checkpoints(tmp_path / "trunk")] == [3]
    end = rundir.read_jsonl(tmp_path / "trunk" / "events.jsonl")[-1]
    assert end["event"] == "end" and end["reason"] == "signal" and end["step"] == 3
    assert not weights_path(tmp_path, "trunk").exists()  # an interrupted job seals nothing
    monkeypatch.setattr(step_mod.TrainStep, "__call__", original)
    resumed = moe_train.run_job(cfg, tmp_path, "trunk", resume=True, out=io.StringIO())
    a, _ = load_tensors(resumed.path)
    b, _ = load_tensors(weights_path(root, "trunk"))
    assert all(_bytes(a[n]) == _bytes(b[n]) for n in a)


def test_unknown_expert_job_fails_before_any_work(tmp_path, cfg_factory):
    with pytest.raises(UserError, match=r"job 'expert:nope': no such domain; accepted: expert:code"):
        moe_train.run_job(cfg_factory(), tmp_path, "expert:nope", out=io.StringIO())
    assert not rundir.is_run_dir(tmp_path / "experts" / "nope")  # nothing written
