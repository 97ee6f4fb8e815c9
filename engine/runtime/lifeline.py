"""A child process that dies with its parent (`lsdt probe`'s workers).

A worker can hold gigabytes; if its parent is killed with SIGKILL (which no handler can catch) the
worker must not live on as an orphan. Linux: prctl(PR_SET_PDEATHSIG, SIGKILL) makes the kernel kill
this process when the thread that forked it exits (prctl(2)). Elsewhere, and for the window before
the prctl took effect, a daemon thread watches the parent pid: when the parent is gone we are
re-parented (getppid() changes) and exit at once.
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_INTERVAL_S = 0.5


def die_with_parent(parent_pid: int) -> None:
    """Make this process end when `parent_pid` (the process that started it) ends."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the watcher below is all there is
        pass
    if os.getppid() != parent_pid:  # the parent died before the prctl above took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(WATCH_INTERVAL_S)
        os._exit(1)

    threading.Thread(target=watch, name="lsdt-lifeline", daemon=True).start()
