"""The base of every tab that runs one child process at a time (Probe, Train; a Sparsity tab the same way).

A subclass gives:
  OWNER          a name that tells its ChildLine / ChildExited messages from another tab's;
  STATUS_ID      the id of its one-line (wrapping) status Static;
  child_line()   what one line the child printed means for the tab (a JSON event, a log line);
  child_exited() what the end means (done, refused, stopped, killed); `stop_reason` tells a stop
                 the user asked for ("stopped", "force-stopped") from a crash;
  buttons()      enable/disable its buttons for `running`.
and calls `start_child(cmd)` to launch (app/child.py: its own session, stdin closed, read line by
line in a thread worker that never touches a widget), `stop_child()` for the stop key (SIGINT
first, SIGKILL on a second press) and `set_status()`.

Long work never runs in the UI process (DESIGN.md, Runtime): a crash, an OOM or a kill of the
child leaves the TUI standing, and torch is never imported into it.
"""

from __future__ import annotations

import subprocess

from textual import on, work

from app.child import ChildExited, ChildLine, exit_reason, interrupt, kill, pump, spawn
from app.tabs.base import LsdtTab


class ChildProcessTab(LsdtTab):
    OWNER = "child"
    STATUS_ID = "child-status"
    # On leaving the TUI: "interrupt" lets a trainer checkpoint and end cleanly on its own; "kill"
    # suits a child with nothing worth a graceful stop (a probe sweep's file holds finished configs).
    ON_UNMOUNT = "interrupt"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.proc: subprocess.Popen | None = None
        self.last_line = ""  # the child's last non-JSON line (what a failure is explained by)
        self.stopping = False  # the user pressed stop once (SIGINT sent); a second press kills
        self.stop_reason: str | None = None  # "stopped" / "force-stopped" when the user ended it

    # ------------------------------------------------------------------ subclass API

    def child_line(self, line: str) -> None:
        raise NotImplementedError

    def child_exited(self, returncode: int, last_lines: list[str]) -> None:
        raise NotImplementedError

    def buttons(self) -> None:
        """Enable/disable the tab's buttons for the current state."""

    # ------------------------------------------------------------------ the child

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start_child(self, cmd: list[str]) -> subprocess.Popen:
        self.last_line, self.stopping, self.stop_reason = "", False, None
        self.proc = spawn(cmd)
        self._read_child(self.proc)
        return self.proc

    @work(thread=True, group="child-run", exit_on_error=False)
    def _read_child(self, proc: subprocess.Popen) -> None:
        code, last = pump(proc, lambda line: self.post_message(ChildLine(self.OWNER, line)))
        self.post_message(ChildExited(self.OWNER, code, last))

    def stop_child(self, *, force_on_second: bool = True) -> str | None:
        """The stop key: SIGINT (graceful), and SIGKILL when pressed again while stopping.
        Returns "stopping", "force-stopped" or None (nothing running)."""
        if not self.running:
            return None
        if self.stopping and force_on_second:
            kill(self.proc)
            self.stop_reason = "force-stopped"
            return "force-stopped"
        if interrupt(self.proc):
            self.stopping, self.stop_reason = True, "stopped"
            return "stopping"
        return None

    def end_reason(self, returncode: int) -> str:
        """How the child ended, in the user's words: their own stop is not a crash (a force stop
        is SIGKILL, which alone would read as the OS out-of-memory killer)."""
        if self.stop_reason == "force-stopped" and returncode < 0:
            return "force-stopped (stop pressed twice: SIGKILL)"
        if self.stop_reason == "stopped" and returncode in (130, -2):
            return "stopped"
        return exit_reason(returncode)

    def set_status(self, text: str) -> None:
        self.query_one(f"#{self.STATUS_ID}").update(text)  # it wraps: its height may change

    def on_unmount(self) -> None:
        (kill if self.ON_UNMOUNT == "kill" else interrupt)(self.proc)

    # ------------------------------------------------------------------ messages from the worker

    @on(ChildLine)
    def _child_line(self, message: ChildLine) -> None:
        if message.owner != self.OWNER:
            return
        message.stop()
        self.child_line(message.line)

    @on(ChildExited)
    def _child_exited(self, message: ChildExited) -> None:
        if message.owner != self.OWNER:
            return
        message.stop()
        self.child_exited(message.returncode, message.last_lines)
        self.stopping = False
        self.buttons()

    def worker_failed(self, group: str) -> None:
        self.buttons()
