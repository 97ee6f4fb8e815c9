"""Disk full during a checkpoint: one line (no space left, the path, what was kept), exit 2, the
previous checkpoint intact. Before: a 41-line torch traceback and exit 1.

A real full disk where the machine lets us mount a small tmpfs (root, as on CI); else ENOSPC is
injected into the checkpoint's write (the same code path: torch's writer fails, the OSError is its
context)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from engine.runtime.train import checkpoint as C
from engine.runtime.train import rundir
from tests.runtime.train_helpers import REPO, base_args

# A tiny-model checkpoint is ~490 kB: the first fits in 800 kB with the run's small files, a second does not.
TMPFS_BYTES = 800 * 1024
ARGS = {"--steps": 8, "--ckpt-every": 2, "--eval-every": 100}


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        yield None  # no mounting here: the test injects ENOSPC instead
        return
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _check(code: int, stderr: str, run):
    lines = stderr.strip().splitlines()
    assert code == 2, stderr
    assert "Traceback" not in stderr
    error = [ln for ln in lines if "error:" in ln]
    assert len(error) == 1, stderr
    kept = C.checkpoint_path(run, 2)
    assert "no space left on device" in error[0] and str(C.checkpoint_path(run, 4)) in error[0], error[0]
    assert f"kept {kept}" in error[0], error[0]
    assert C.read_checkpoint(kept)["step"] == 2  # the previous checkpoint is whole and verifies
    assert not list((run / rundir.CHECKPOINT_DIR).glob(".*.tmp")) and not list((run / rundir.CHECKPOINT_DIR).glob("*.partial"))
    end = rundir.read_events(run)[-1]
    assert end["event"] == "end" and end["reason"] == "error"


def test_disk_full_during_a_checkpoint(tmp_path, small_disk, monkeypatch, capsys):
    if small_disk is not None:
        run = small_disk / "run"
        args = base_args(tmp_path, **ARGS, **{"--run-dir": run})
        res = subprocess.run([sys.executable, "-m", "engine.cli", "train", *args], cwd=REPO,
                             capture_output=True, text=True, timeout=300)
        _check(res.returncode, res.stderr, run)
        return
    import torch

    from engine.runtime.train.loop import main as train_main

    real_save = torch.save

    def save_until_full(obj, f, *a, **kw):
        if isinstance(obj, dict) and obj.get("step", 0) >= 4:
            f.write(b"PK\x03\x04 half a checkpoint")
            try:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            except OSError:
                raise RuntimeError("[enforce fail at inline_container.cc] unexpected pos") from None
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", save_until_full)
    run = tmp_path / "run"
    code = train_main(base_args(tmp_path, **ARGS))
    _check(code, capsys.readouterr().err, run)
