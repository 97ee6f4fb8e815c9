"""Each `lsdt moe` job holds its own job directory's lock (the same RunLoop as lsdt train): a second
writer of that job is refused in one line before it writes anything."""

from __future__ import annotations

import io

import pytest

from engine.errors import UserError
from engine.runtime.moe import train as moe_train
from engine.runtime.moe.config import job_dir, write_config
from engine.runtime.train import rundir
from engine.runtime.train.runlock import RunDirLock
from tests.moe.conftest import tiny_config


def test_lock_refuses_a_second_holder_and_is_free_again_after_release(tmp_path):
    first = RunDirLock(tmp_path / "run")
    first.acquire()
    with pytest.raises(UserError, match=rf"in use by another run \(pid {__import__('os').getpid()}\)"):
        RunDirLock(tmp_path / "run").acquire()
    first.release()
    again = RunDirLock(tmp_path / "run")
    again.acquire()
    again.release()


def test_a_filesystem_without_locks_runs_unguarded_with_a_warning(tmp_path, monkeypatch, capsys):
    import errno
    import fcntl

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    lock = RunDirLock(tmp_path / "run")
    lock.acquire()
    lock.release()
    err = capsys.readouterr().err
    assert "cannot lock (No locks available)" in err and len(err.strip().splitlines()) == 1


def test_a_moe_job_whose_dir_is_locked_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LSDT_CACHE_DIR", str(tmp_path / "cache"))
    cfg = tiny_config(trunk_steps=2)
    write_config(tmp_path, cfg)
    holder = RunDirLock(job_dir(tmp_path, "trunk"))
    holder.acquire()  # as a live job process would
    try:
        with pytest.raises(UserError, match="in use by another run"):
            moe_train.run_job(cfg, tmp_path, "trunk", out=io.StringIO())
        assert not rundir.is_run_dir(job_dir(tmp_path, "trunk"))  # nothing written
    finally:
        holder.release()
    moe_train.run_job(cfg, tmp_path, "trunk", out=io.StringIO())  # free again: it runs
    assert rundir.run_status(job_dir(tmp_path, "trunk")).state == "ended"
