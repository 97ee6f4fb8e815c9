"""Child processes of the TUI (training, probes): started here, read line by line in a worker.

Long work never runs inside the UI process (DESIGN.md, Runtime): a crash, an OOM or a kill there
leaves the TUI standing, and torch is never imported into it. The child gets its own session, so
a Ctrl-C typed at the TUI's terminal is the TUI's alone; it is stopped on purpose with `interrupt`
(SIGINT: the trainer checkpoints and writes its end event) and, if it must, `kill`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Callable

from textual.message import Message


class ChildLine(Message):
    """One line a child printed (stdout and stderr merged). `owner` tells the tabs apart."""

    def __init__(self, owner: str, line: str) -> None:
        super().__init__()
        self.owner = owner
        self.line = line


class ChildExited(Message):
    def __init__(self, owner: str, returncode: int, last_lines: list[str]) -> None:
        super().__init__()
        self.owner = owner
        self.returncode = returncode
        self.last_lines = last_lines


def python_module(module: str, *args: str) -> list[str]:
    """`python -m module args` with this interpreter (the venv the TUI runs in)."""
    return [sys.executable, "-m", module, *args]


def spawn(cmd: list[str], cwd: str | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, bufsize=1, errors="replace", start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def pump(proc: subprocess.Popen, on_line: Callable[[str], None], keep: int = 20) -> tuple[int, list[str]]:
    """Read the child's output to EOF (on a worker thread), calling `on_line` per line; then wait.
    Returns (exit code, its last `keep` lines)."""
    last: list[str] = []
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.rstrip("\n")
        last.append(line)
        del last[:-keep]
        on_line(line)
    return proc.wait(), last


def interrupt(proc: subprocess.Popen | None) -> bool:
    """SIGINT to a running child (graceful stop). False when there is nothing to stop."""
    if proc is None or proc.poll() is not None:
        return False
    try:
        proc.send_signal(signal.SIGINT)
    except ProcessLookupError:
        return False
    return True


def kill(proc: subprocess.Popen | None) -> bool:
    """SIGKILL to the child's whole session (a probe's own worker processes go with it)."""
    if proc is None or proc.poll() is not None:
        return False
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            return False
    return True


def exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}" + (" (the OS out-of-memory killer?)" if returncode == -signal.SIGKILL else "")
    return f"exit code {returncode}"
