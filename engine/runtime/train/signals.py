"""SIGINT/SIGTERM as a flag: a training loop stops after the current step (or micro-batch),
checkpoints and writes an end event, instead of dying mid-write (lsdt train and each `lsdt moe` job).
The process then exits 128 + the signal's number (130 SIGINT, 143 SIGTERM), as a shell reports a
process killed by it, so a scheduler can tell "stopped" from "completed" (exit 0)."""

from __future__ import annotations

import signal
import threading


class StopFlag:
    """Catches SIGINT/SIGTERM from construction until `restore()`; `signum` is the last one caught.

    Only the main thread can own signal handlers: built on another thread it installs none (the
    flag then never sets) and `restore()` is a no-op."""

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.signum = signum

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Stopped(KeyboardInterrupt):
    """A run stopped by a signal after checkpointing: unwinds like Ctrl-C; `signum` says which.
    engine.cli maps it to exit code 128 + signum."""

    def __init__(self, signum: int | None = None):
        self.signum = int(signum or signal.SIGINT)
        super().__init__(self.signum)
