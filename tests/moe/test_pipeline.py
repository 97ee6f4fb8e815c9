"""`lsdt moe pipeline` end to end (CLI, --json contract), phase-3 checks, and bad input."""

from __future__ import annotations

import json
import os
import stat

import pytest

from tests.conftest import run_lsdt

STEPS = ["--trunk-steps", "6", "--expert-steps", "4", "--router-steps", "4", "--device-batch", "2",
         "--eval-every", "1000", "--ckpt-every", "1000", "--log-every", "1000", "--device", "cpu"]


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory, moe_cache):
    root = tmp_path_factory.mktemp("pipe") / "run"
    r = run_lsdt("moe", "pipeline", "--tiny", "--run-dir", str(root), "--json", "--workers", "1", *STEPS,
                 timeout=300, env={"LSDT_CACHE_DIR": str(moe_cache)})
    assert r.returncode == 0, r.stderr[-2000:]
    return root, json.loads(r.stdout), r.stderr


def test_pipeline_json_contract(pipeline_run):
    root, s, progress = pipeline_run
    assert {"artifact", "merkle_root", "perplexity", "verify"} <= set(s)
    assert set(s["perplexity"]) == {"code", "math", "reasoning", "general"}
    for p in s["perplexity"].values():
        assert {"fp32", "int8", "delta_pct"} <= set(p)
        assert p["delta_pct"] == pytest.approx(100 * (p["int8"] / p["fp32"] - 1))
    assert s["verify"]["ok"] is True
    checks = {c["check"]: c["ok"] for c in s["verify"]["checks"]}
    assert checks["merkle_root"] and checks["tensor_hashes"] and checks["V6_determinism"]
    assert "phase 1" in progress and "phase 2" in progress  # progress goes to stderr with --json
    art = s["artifact"]
    assert os.path.isfile(art) and not os.stat(art).st_mode & stat.S_IWUSR  # sealed read-only
    assert json.loads((root / "pipeline.json").read_text())["merkle_root"] == s["merkle_root"]


def test_lsdt_verify_and_tamper(pipeline_run, tmp_path):
    from engine.runtime.moe.quant import verify_moe

    root, s, _ = pipeline_run
    r = run_lsdt("verify", s["artifact"], "--no-determinism", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["merkle_root"] == s["merkle_root"]
    bad = tmp_path / "bad.s7l"
    data = bytearray(open(s["artifact"], "rb").read())
    data[-100] ^= 0x01
    bad.write_bytes(bytes(data))
    v = verify_moe(bad)
    assert not v["ok"] and "tensor_hashes" in v["failure"]


def test_resume_reruns_only_phase_3(pipeline_run, moe_cache):
    """--resume on a finished run keeps every trained job and seals the same artifact again."""
    root, s, _ = pipeline_run
    art = root / "model.s7l"
    r = run_lsdt("moe", "pipeline", "--run-dir", str(root), "--resume", "--json", "--workers", "1",
                 timeout=120, env={"LSDT_CACHE_DIR": str(moe_cache)})
    assert r.returncode == 0, r.stderr[-1000:]
    again = json.loads(r.stdout)
    assert again["merkle_root"] == s["merkle_root"] and again["perplexity"] == s["perplexity"]
    assert "phase 1: trunk" not in r.stderr and "0 job(s)" in r.stderr
    assert art.is_file()


@pytest.mark.parametrize("args, match", [
    (["moe", "train", "--phase", "experts", "--run-dir", "{tmp}/empty"], "give --trunk CKPT"),
    (["moe", "train", "--phase", "trunk", "--tiny", "--domains", "math", "--run-dir", "{tmp}/x"], "NAME=PATH"),
    (["moe", "train", "--phase", "trunk", "--tiny", "--domains", "math={tmp}/nope.txt", "--run-dir", "{tmp}/y"], "no such file"),
    (["moe", "train", "--phase", "trunk", "--model", "gpt2-124m", "--run-dir", "{tmp}/z"], "not a trunk"),
    (["moe", "train", "--phase", "experts", "--trunk", "{tmp}/none.s7l", "--run-dir", "{tmp}/w"], "no such file"),
    (["moe", "train", "--phase", "trunk", "--trunk", "x", "--run-dir", "{tmp}/v"], "--trunk is for --phase experts"),
])
def test_bad_input_is_one_line(args, match, tmp_path, moe_cache):
    r = run_lsdt(*[a.format(tmp=tmp_path) for a in args], timeout=60, env={"LSDT_CACHE_DIR": str(moe_cache)})
    assert r.returncode == 2, r.stderr
    assert match in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_bad_domain_path_leaves_no_run_dir(tmp_path, moe_cache):
    """A typo in --domains used to leave DIR/moe.toml behind (and blame --data); fixing the typo
    then failed with "already holds a MoE run"."""
    run_dir = tmp_path / "run"
    r = run_lsdt("moe", "train", "--phase", "trunk", "--tiny", "--domains", f"code={tmp_path}/nope", "--run-dir", str(run_dir),
                 timeout=60, env={"LSDT_CACHE_DIR": str(moe_cache)})
    assert r.returncode == 2 and f"--domains code={tmp_path}/nope: no such file" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "--data" not in r.stderr
    assert not run_dir.exists()


def test_existing_run_needs_resume(pipeline_run, moe_cache):
    root, _, _ = pipeline_run
    r = run_lsdt("moe", "pipeline", "--tiny", "--run-dir", str(root), timeout=60, env={"LSDT_CACHE_DIR": str(moe_cache)})
    assert r.returncode == 2 and "--resume" in r.stderr


def test_phase2_from_a_trunk_checkpoint(pipeline_run, tmp_path, moe_cache):
    """`--phase experts --trunk step_*.pt` into a new directory: the trunk file is the phase-1 file, byte for byte."""
    from engine.runtime.train.checkpoint import list_checkpoints

    root, _, _ = pipeline_run
    ckpt = list_checkpoints(root / "trunk")[0][1]
    new = tmp_path / "p2"
    r = run_lsdt("moe", "train", "--phase", "experts", "--trunk", str(ckpt), "--run-dir", str(new), "--workers", "1",
                 "--expert-steps", "2", "--router-steps", "2", timeout=120, env={"LSDT_CACHE_DIR": str(moe_cache)})
    assert r.returncode == 0, r.stderr[-1500:]
    assert (new / "weights" / "trunk.s7l").read_bytes() == (root / "weights" / "trunk.s7l").read_bytes()
    assert (new / "weights" / "router.s7l").is_file() and "next: lsdt moe pipeline --resume" in r.stdout
    again = run_lsdt("moe", "train", "--phase", "experts", "--run-dir", str(new), timeout=60, env={"LSDT_CACHE_DIR": str(moe_cache)})
    assert again.returncode == 2 and "--resume" in again.stderr


@pytest.mark.parametrize("command", [["moe", "train", "--phase", "trunk"], ["moe", "pipeline"]])
def test_missing_cuda_leaves_no_run_dir(command, tmp_path, moe_cache):
    """--device cuda on a machine without one failed after DIR/moe.toml was written."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --device cuda is valid here")
    run_dir = tmp_path / "run"
    r = run_lsdt(*command, "--tiny", "--device", "cuda", "--run-dir", str(run_dir), timeout=60,
                 env={"LSDT_CACHE_DIR": str(moe_cache)})
    assert r.returncode == 2 and "--device cuda: no CUDA GPU" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not run_dir.exists()


def test_trunk_resume_trains_what_moe_toml_says(tmp_path, moe_cache):
    """`--phase trunk --resume` continues the run in DIR/moe.toml: without --trunk-steps it keeps the
    run's budget (it used to fall back to the default 300), a new --trunk-steps is written back,
    and what the trunk learns (e.g. --lr) cannot change."""
    from engine.runtime.moe.config import read_config

    root = tmp_path / "run"
    small = ["--device-batch", "2", "--eval-every", "1000", "--ckpt-every", "1000", "--log-every", "1000", "--device", "cpu"]
    env = {"LSDT_CACHE_DIR": str(moe_cache)}
    first = run_lsdt("moe", "train", "--phase", "trunk", "--tiny", "--run-dir", str(root), "--trunk-steps", "3", *small,
                     timeout=120, env=env)
    assert first.returncode == 0, first.stderr[-1500:]
    again = run_lsdt("moe", "train", "--phase", "trunk", "--tiny", "--run-dir", str(root), "--resume", timeout=120, env=env)
    assert again.returncode == 0, again.stderr[-1500:]
    assert "3 steps of" in again.stdout and "resumed at step 3" in again.stdout
    longer = run_lsdt("moe", "train", "--phase", "trunk", "--tiny", "--run-dir", str(root), "--resume", "--trunk-steps", "5",
                      timeout=120, env=env)
    assert longer.returncode == 0, longer.stderr[-1500:]
    assert "5 steps of" in longer.stdout and read_config(root).trunk_steps == 5
    other = run_lsdt("moe", "train", "--phase", "trunk", "--tiny", "--run-dir", str(root), "--resume", "--lr", "0.5",
                     timeout=60, env=env)
    assert other.returncode == 2 and other.stderr.count("\n") == 1 and "--lr 0.5: fixed to" in other.stderr
