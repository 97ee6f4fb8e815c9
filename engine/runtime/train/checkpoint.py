"""Checkpoints: atomic, verified, the last few kept, written off the training thread.

A checkpoint is `checkpoints/step_XXXXXXXX.pt` (torch.save of plain dicts and tensors, loaded with
weights_only=True: no arbitrary pickle) plus `step_XXXXXXXX.pt.sha256`, the file's SHA-256. Both are
written to a temporary file and renamed into place, so a kill at any moment leaves either the old
set or the new one. Loading walks the checkpoints newest first and skips any that fails its
checksum or cannot be read, reporting what it skipped (the trainer turns that into an event).

Writes are asynchronous: `CheckpointWriter.save` snapshots the state to CPU memory (the only part
the training loop waits for) and a background thread serialises it, so a write stalls training by
the copy, not by the disk. A second save while one is in flight first waits for it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from engine.runtime.train.rundir import CHECKPOINT_DIR, checkpoint_steps

KEEP_LAST = 3  # DESIGN.md: "checkpoints/ (atomic writes, last 3 kept)"


def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{step:08d}.pt"


list_checkpoints = checkpoint_steps  # (step, path) of every checkpoint file, newest first


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def to_cpu(obj: Any) -> Any:
    """A deep copy of a state (nested dicts/lists of tensors) in CPU memory, detached from training."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def write_checkpoint(run_dir: str | os.PathLike, step: int, state: dict, keep: int = KEEP_LAST) -> Path:
    """Write `state` atomically as step `step`, then delete all but the newest `keep` checkpoints."""
    import torch

    path = checkpoint_path(run_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        digest = file_sha256(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    from engine.atomic import write_atomic

    write_atomic(path.with_name(path.name + ".sha256"), digest + "\n")
    for _, old in list_checkpoints(run_dir)[keep:]:
        for p in (old, old.with_name(old.name + ".sha256")):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
    return path


# torch.save writes a zip archive (PyTorch >= 1.6, the only format LSDT writes): its local-file magic.
ZIP_MAGIC = b"PK\x03\x04"


def read_checkpoint(path: Path) -> dict:
    """Load one checkpoint; ValueError (with the reason) when it is corrupt or unreadable."""
    import torch

    sidecar = path.with_name(path.name + ".sha256")
    if sidecar.is_file():  # absent only if killed between the two renames: the .pt itself is whole
        expected = sidecar.read_text().strip()
        if file_sha256(path) != expected:
            raise ValueError("checksum mismatch (file corrupted after it was written)")
    with open(path, "rb") as fh:
        head = fh.read(len(ZIP_MAGIC))
    if head != ZIP_MAGIC:
        # torch's own error for these is a paragraph about weights_only, cut mid-word
        raise ValueError(f"not a torch checkpoint (a .pt file is a zip archive, starting {ZIP_MAGIC!r}; this one starts {head!r})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle, ... : any failure means "not usable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(f"unreadable ({type(exc).__name__}: {first.split('. ')[0][:200]})") from None
    if not isinstance(state, dict) or "step" not in state:
        raise ValueError("not an LSDT checkpoint (no 'step')")
    return state


def load_latest(run_dir: str | os.PathLike) -> tuple[dict | None, Path | None, list[tuple[Path, str]]]:
    """The newest good checkpoint: (state, path, [(skipped path, reason), ...]); (None, None, skipped) if none."""
    skipped: list[tuple[Path, str]] = []
    for _, path in list_checkpoints(run_dir):
        try:
            return read_checkpoint(path), path, skipped
        except (ValueError, OSError) as exc:
            skipped.append((path, str(exc)))
    return None, None, skipped


class CheckpointWriter:
    """Background checkpoint writer: at most one write in flight."""

    def __init__(self, run_dir: str | os.PathLike, keep: int = KEEP_LAST):
        self.run_dir = Path(run_dir)
        self.keep = keep
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._done: list[tuple[int, Path]] = []
        self._lock = threading.Lock()

    def save(self, step: int, state: dict, wait: bool = False) -> None:
        """Snapshot `state` to CPU now; write it in the background (or now, with wait=True)."""
        self.wait()
        snapshot = to_cpu(state)
        if wait:
            self._write(step, snapshot)
            self.wait()
            return
        self._thread = threading.Thread(target=self._write, args=(step, snapshot), name="lsdt-checkpoint", daemon=True)
        self._thread.start()

    def _write(self, step: int, snapshot: dict) -> None:
        try:
            path = write_checkpoint(self.run_dir, step, snapshot, self.keep)
            with self._lock:  # completed() swaps the list: append to the current one, never a stale one
                self._done.append((step, path))
        except BaseException as exc:  # re-raised on the training thread by wait()
            self._error = exc

    def wait(self) -> None:
        """Block until the in-flight write (if any) is on disk; re-raise its failure."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            exc, self._error = self._error, None
            raise exc

    def completed(self) -> list[tuple[int, Path]]:
        """Checkpoints finished since the last call (the trainer logs an event for each)."""
        with self._lock:
            done, self._done = self._done, []
        return done
