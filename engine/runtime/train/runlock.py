"""One writer per run directory: an advisory lock held for the run's whole life (torch-free).

`DIR/run.lock` is locked with flock(2) by the training process; a second `lsdt train --run-dir DIR`
(or a `--resume` of a run that is still going) fails to take it and is refused with one line naming
the pid that holds it, before it writes anything. The kernel drops the lock when its holder exits,
however it exits (kill -9 included), so a stale lock file never blocks a later `--resume`. On a
filesystem that cannot lock (ENOLCK, some network mounts) the run goes on unguarded, with a warning.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sys
from pathlib import Path

from engine.errors import UserError

LOCK_FILE = "run.lock"


def in_use(run_dir, pid) -> str:
    """The one-line refusal of a second writer."""
    return (f"--run-dir {run_dir} is in use by another run (pid {pid}); wait for it to end or stop it, "
            "or pick another --run-dir")


class RunDirLock:
    def __init__(self, run_dir: str | os.PathLike):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise a UserError naming the process that holds it."""
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise UserError(f"--run-dir {self.run_dir}: cannot create ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise UserError(in_use(self.run_dir, holder)) from None
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP):
                # a filesystem without locks (some network mounts): run unguarded rather than not at
                # all; the trainer's start-up check of a live pid still refuses the common case
                print(f"lsdt: warning: {self.path}: this filesystem cannot lock ({exc.strerror}); "
                      "nothing stops a second writer of this run directory", file=sys.stderr)
                return
            raise UserError(f"--run-dir {self.run_dir}: cannot lock {LOCK_FILE} ({exc.strerror})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
