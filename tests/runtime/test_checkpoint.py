"""Checkpoints: atomic + verified, last 3 kept, corrupt ones skipped for the previous good one."""

from __future__ import annotations

import torch

from engine.runtime.train import checkpoint as C


def _state(step):
    return {"step": step, "model": {"w": torch.full((4,), float(step))}, "meta": {"lr": 0.1}}


def test_keep_last_three_and_load_newest(tmp_path):
    w = C.CheckpointWriter(tmp_path)
    for s in (10, 20, 30, 40):
        w.save(s, _state(s))
    w.wait()
    assert [s for s, _ in w.completed()] == [10, 20, 30, 40]
    assert [s for s, _ in C.list_checkpoints(tmp_path)] == [40, 30, 20]
    state, path, skipped = C.load_latest(tmp_path)
    assert state["step"] == 40 and skipped == [] and torch.equal(state["model"]["w"], torch.full((4,), 40.0))
    assert not list((tmp_path / "checkpoints").glob(".*tmp"))


def test_snapshot_is_taken_at_save_time(tmp_path):
    t = torch.zeros(3)
    w = C.CheckpointWriter(tmp_path)
    w.save(1, {"step": 1, "t": t})
    t += 5  # training goes on mutating the live tensor
    w.wait()
    assert torch.equal(C.load_latest(tmp_path)[0]["t"], torch.zeros(3))


def test_corrupt_and_truncated_are_skipped(tmp_path):
    for s in (1, 2, 3):
        C.write_checkpoint(tmp_path, s, _state(s))
    newest = C.checkpoint_path(tmp_path, 3)
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped bit-pattern
    newest.write_bytes(bytes(data))
    middle = C.checkpoint_path(tmp_path, 2)
    middle.write_bytes(middle.read_bytes()[:50])
    middle.with_name(middle.name + ".sha256").unlink()  # no sidecar: unverifiable, not trusted
    state, path, skipped = C.load_latest(tmp_path)
    assert state["step"] == 1 and path == C.checkpoint_path(tmp_path, 1)
    assert [s.path for s in skipped] == [newest, middle] and [s.moved_to for s in skipped] == [None, None]
    assert "checksum" in skipped[0].reason and "cannot be verified" in skipped[1].reason


def test_no_checkpoint(tmp_path):
    assert C.load_latest(tmp_path) == (None, None, [])


def test_save_returns_before_the_disk_write(tmp_path, monkeypatch):
    """A slow disk delays the background thread, not the caller (training goes on)."""
    import time

    real = C.write_checkpoint

    def slow(*args, **kwargs):
        time.sleep(1.0)
        return real(*args, **kwargs)

    monkeypatch.setattr(C, "write_checkpoint", slow)
    w = C.CheckpointWriter(tmp_path)
    t0 = time.perf_counter()
    w.save(5, _state(5))
    assert time.perf_counter() - t0 < 0.5
    assert not C.list_checkpoints(tmp_path)
    w.wait()
    assert [s for s, _ in w.completed()] == [5] and C.list_checkpoints(tmp_path)
