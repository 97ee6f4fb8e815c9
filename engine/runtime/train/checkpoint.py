"""Checkpoints: atomic, verified, the last few kept, written off the training thread.

A checkpoint is `checkpoints/step_XXXXXXXX.pt` (torch.save of plain dicts and tensors, loaded with
weights_only=True: no arbitrary pickle) plus `step_XXXXXXXX.pt.sha256`, the file's SHA-256. Both are
written to a temporary file and renamed into place, the sidecar first, so a kill at any moment
leaves either the old set or the new one (plus temp files the next start sweeps). Loading walks the
checkpoints newest first and skips any that fails its checksum, has no checksum or cannot be read;
the run's writer moves those aside as *.corrupt (the trainer turns each into an event), so pruning
(the newest `keep` by step, never the one just written) only ever weighs good files. A full disk
during a write is a one-line NoSpaceError naming the checkpoint kept.

Writes are asynchronous: `CheckpointWriter.save` snapshots the state to CPU memory (the only part
the training loop waits for) and a background thread serialises it, so a write stalls training by
the copy, not by the disk. A second save while one is in flight first waits for it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.atomic import TMP_SUFFIX, atomic_writer, write_atomic
from engine.errors import UserError
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


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


class NoSpaceError(UserError):
    """The disk filled while a checkpoint was written; the message names what was kept."""


def write_checkpoint(run_dir: str | os.PathLike, step: int, state: dict, keep: int = KEEP_LAST) -> Path:
    """Write `state` atomically as step `step`, then delete all but the newest `keep` checkpoints.

    The .sha256 sidecar goes down first, then the .pt is renamed into place: a .pt on disk always has
    its hash, so a .pt without one was not written whole by LSDT and is not trusted (read_checkpoint).
    """
    import torch

    path = checkpoint_path(run_dir, step)
    partial = path.with_name(f"{path.name}.partial")  # whole but not yet hashed: not a checkpoint yet
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_writer(partial) as fh:
            torch.save(state, fh)
        write_atomic(sidecar_path(path), file_sha256(partial) + "\n")
        os.replace(partial, path)
    except BaseException as exc:
        try:
            partial.unlink()
        except FileNotFoundError:
            pass
        if _is_no_space(exc):
            kept = [p for _, p in list_checkpoints(run_dir) if p != path]
            what = f"kept {kept[0]} (the newest)" if kept else "no earlier checkpoint to keep"
            raise NoSpaceError(f"no space left on device writing checkpoint {path}; {what}; "
                               "free some space and --resume") from None
        raise
    # Newest first by step, never the file just written: after a resume from an older step, higher
    # numbered leftovers must not push out the checkpoints this run writes.
    for _, old in [c for c in list_checkpoints(run_dir) if c[1] != path][max(0, keep - 1):]:
        for p in (old, sidecar_path(old)):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
    return path


def _is_no_space(exc: BaseException) -> bool:
    """ENOSPC / EDQUOT anywhere in the chain: torch's zip writer reports the failed write as a
    RuntimeError ("unexpected pos ...") whose __context__ is the OSError."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def sweep_stale_tmp(run_dir: str | os.PathLike) -> list[Path]:
    """Remove what a killed writer left (".NAME.*.tmp", "*.partial", a .sha256 whose .pt never
    appeared) in the run dir and its checkpoints/. Call it holding the run-dir lock: then no writer
    of this run can be mid-write."""
    removed = []
    for d in (Path(run_dir), Path(run_dir) / CHECKPOINT_DIR):
        if not d.is_dir():
            continue
        for p in d.iterdir():
            stale = ((p.name.startswith(".") and p.name.endswith(TMP_SUFFIX)) or p.name.endswith(".partial")
                     or (p.name.endswith(".pt.sha256") and not p.with_name(p.name[:-len(".sha256")]).exists()))
            if stale and p.is_file():
                try:
                    p.unlink()
                    removed.append(p)
                except OSError:
                    pass
    return removed


# torch.save writes a zip archive (PyTorch >= 1.6, the only format LSDT writes): its local-file magic.
ZIP_MAGIC = b"PK\x03\x04"


def read_checkpoint(path: Path) -> dict:
    """Load one checkpoint; ValueError (with the reason) when it is corrupt or unreadable."""
    import torch

    with open(path, "rb") as fh:
        head = fh.read(len(ZIP_MAGIC))
    if head != ZIP_MAGIC:
        # torch's own error for these is a paragraph about weights_only, cut mid-word
        raise ValueError(f"not a torch checkpoint (a .pt file is a zip archive, starting {ZIP_MAGIC!r}; this one starts {head!r})")
    sidecar = sidecar_path(path)
    if not sidecar.is_file():  # LSDT writes the sidecar before the .pt appears: this file is unverifiable
        raise ValueError(f"no {sidecar.name}: its SHA-256 is missing, so it cannot be verified")
    if file_sha256(path) != sidecar.read_text().strip():
        raise ValueError("checksum mismatch (file corrupted after it was written)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle, ... : any failure means "not usable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(f"unreadable ({type(exc).__name__}: {first.split('. ')[0][:200]})") from None
    if not isinstance(state, dict) or "step" not in state:
        raise ValueError("not an LSDT checkpoint (no 'step')")
    return state


@dataclass
class Skipped:
    path: Path  # the checkpoint that could not be used
    reason: str
    moved_to: Path | None = None  # where it was moved aside (None: left in place)


def quarantine(path: Path) -> Path | None:
    """Move a bad checkpoint (and its sidecar) aside as *.corrupt: it no longer counts as a checkpoint,
    so pruning keeps the good ones and the next resume does not trip over it again."""
    target = path.with_name(path.name + ".corrupt")
    try:
        os.replace(path, target)
    except OSError:
        return None
    side = sidecar_path(path)
    if side.exists():
        try:
            os.replace(side, side.with_name(side.name + ".corrupt"))
        except OSError:
            pass
    return target


def load_latest(run_dir: str | os.PathLike, quarantine_bad: bool = False) -> tuple[dict | None, Path | None, list[Skipped]]:
    """The newest good checkpoint: (state, path, skipped); (None, None, skipped) if none.
    quarantine_bad=True (the run's one writer, holding the lock) moves each bad one aside."""
    skipped: list[Skipped] = []
    for _, path in list_checkpoints(run_dir):
        try:
            return read_checkpoint(path), path, skipped
        except (ValueError, OSError) as exc:
            skipped.append(Skipped(path, str(exc), quarantine(path) if quarantine_bad else None))
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
