"""SIGINT/SIGTERM as a flag: a training loop stops after the current step, checkpoints and writes an
end event, instead of dying mid-write (lsdt train and each `lsdt moe` job)."""

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
