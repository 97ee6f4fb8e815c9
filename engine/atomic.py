"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Write to a temporary file in the same directory, flush and fsync it, then `os.replace` it over the
target (atomic on POSIX within one filesystem). On any failure the temporary file is removed and
the target is untouched.

Two rules every writer in LSDT gets from here:
- The target must be a regular file or not exist. A rename lands on whatever the path is, so
  `--out /dev/null` (as root) replaced the device with a regular file; such a target is refused.
- The file's permissions follow the umask (0666 & ~umask, as `open()` would give), not mkstemp's
  private 0600, so a team can share a plans or runs directory. `mode` (e.g. 0o444) overrides.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator

from engine.errors import UserError

TMP_SUFFIX = ".tmp"  # temp files are ".NAME.<random>.tmp" beside the target (swept by the trainer)


def current_umask() -> int:
    """The process umask, read without changing it (Linux /proc) where possible: os.umask() has to
    set it to read it, which races with other threads creating files."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def check_target(path: Path) -> None:
    """UserError when `path` exists and is not a regular file (a device, a FIFO, a directory, ...)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a character device" if stat.S_ISCHR(st.st_mode)
                else "a block device" if stat.S_ISBLK(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise UserError(f"{path}: exists and is {kind}; accepted: a regular file or a new path (it would be replaced)")


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: int | None = None) -> Iterator[BinaryIO]:
    """`with atomic_writer(p) as fh: fh.write(...)`: `p` appears whole when the block ends, or not at
    all if it raises. OSError (no space, permission) from the writing is re-raised as is, so a caller
    can say what was kept; from creating the temp file it is a UserError naming the path."""
    path = Path(path)
    check_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror})") from None
    try:
        os.fchmod(fd, mode if mode is not None else 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_atomic(path: str | os.PathLike, data: bytes | str, mode: int | None = None) -> Path:
    """Atomically replace `path` with `data`; `mode` (e.g. 0o444) is applied before the rename."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with atomic_writer(path, mode) as fh:
            fh.write(payload)
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror})") from None
    return path
