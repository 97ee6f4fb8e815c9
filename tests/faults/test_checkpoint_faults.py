"""Checkpoint faults: every checkpoint corrupt, a missing .sha256, temp files a kill -9 left behind,
and pruning after a resume from an older step."""

from __future__ import annotations

import pytest

from engine.runtime.train import checkpoint as C
from engine.runtime.train import rundir
from engine.runtime.train.loop import main as train_main
from tests.runtime.train_helpers import base_args


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x55
    path.write_bytes(bytes(data))


def _events(run, kind):
    return [e for e in rundir.read_events(run) if e["event"] == kind]


def test_all_checkpoints_corrupt_resume_keeps_the_new_ones(tmp_path):
    """Before: a resume from 0 kept the corrupt highest-numbered files and pruned every new checkpoint."""
    run = tmp_path / "run"
    assert train_main(base_args(tmp_path, **{"--steps": 12, "--ckpt-every": 4})) == 0
    bad = [p for _, p in C.list_checkpoints(run)]
    assert [s for s, _ in C.list_checkpoints(run)] == [12, 8, 4]
    for p in bad:
        _flip(p)
    assert train_main(["--run-dir", str(run), "--resume", "--steps", "8"]) == 0
    skipped = _events(run, "checkpoint_skipped")
    assert [e["path"] for e in skipped] == [str(p) for p in bad]
    assert all(e["moved_to"] == e["path"] + ".corrupt" and "checksum" in e["reason"] for e in skipped)
    assert all(p.with_name(p.name + ".corrupt").exists() for p in bad)
    assert _events(run, "resume")[-1]["step"] == 0
    assert [s for s, _ in C.list_checkpoints(run)] == [8, 4]  # what this run wrote, all loadable
    for _, p in C.list_checkpoints(run):
        C.read_checkpoint(p)


def test_checkpoint_without_its_hash_is_not_loaded_unchecked(tmp_path):
    """Before: a missing .sha256 let a flipped byte through."""
    run = tmp_path / "run"
    assert train_main(base_args(tmp_path, **{"--steps": 8, "--ckpt-every": 4})) == 0
    newest = C.checkpoint_path(run, 8)
    C.sidecar_path(newest).unlink()
    _flip(newest)
    assert train_main(["--run-dir", str(run), "--resume", "--steps", "10"]) == 0
    skipped = _events(run, "checkpoint_skipped")
    assert len(skipped) == 1 and skipped[0]["path"] == str(newest) and "cannot be verified" in skipped[0]["reason"]
    assert _events(run, "resume")[-1]["step"] == 4


def test_stale_temp_files_are_swept_at_resume(tmp_path):
    """What a kill -9 mid-write leaves: a temp file of the checkpoint, of config.toml, a sidecar
    without its .pt. Before: they stayed for ever."""
    run = tmp_path / "run"
    assert train_main(base_args(tmp_path, **{"--steps": 4, "--ckpt-every": 4})) == 0
    ckdir = run / rundir.CHECKPOINT_DIR
    stale = [ckdir / ".step_00000008.pt.partial.k2j3.tmp", ckdir / "step_00000008.pt.partial",
             ckdir / "step_00000008.pt.sha256", run / ".config.toml.x9y8.tmp"]
    for p in stale:
        p.write_bytes(b"half")
    assert train_main(["--run-dir", str(run), "--resume", "--steps", "6"]) == 0
    assert not any(p.exists() for p in stale)
    assert sorted(e["path"] for e in _events(run, "stale_tmp_removed")) == sorted(map(str, stale))
    assert C.checkpoint_path(run, 4).exists() and C.sidecar_path(C.checkpoint_path(run, 4)).exists()


def test_prune_never_deletes_the_checkpoint_just_written(tmp_path):
    import torch

    for s in (50, 60, 70):
        C.write_checkpoint(tmp_path, s, {"step": s, "w": torch.ones(2)})
    path = C.write_checkpoint(tmp_path, 10, {"step": 10, "w": torch.ones(2)}, keep=3)
    assert path.exists()
    assert [s for s, _ in C.list_checkpoints(tmp_path)] == [70, 60, 10]


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_checkpoints_and_run_files_follow_the_umask(tmp_path, umask):
    """Before: checkpoints and config.toml were 0600 (mkstemp's mode) whatever the umask."""
    old = __import__("os").umask(umask)
    try:
        assert train_main(base_args(tmp_path, **{"--steps": 2, "--ckpt-every": 2, "--warmup": 1})) == 0
    finally:
        __import__("os").umask(old)
    run = tmp_path / "run"
    ckpt = C.checkpoint_path(run, 2)
    for p in (ckpt, C.sidecar_path(ckpt), run / rundir.CONFIG_FILE, run / rundir.EVENTS_FILE, run / "metrics.csv"):
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask, p
