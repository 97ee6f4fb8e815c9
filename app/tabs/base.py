"""What every tab shares: the route for failed workers (one handler on the App reports them)."""

from __future__ import annotations

from textual import on
from textual.containers import Container
from textual.worker import Worker, WorkerState

from app.messages import WorkerFailed


class LsdtTab(Container):
    """A tab's root widget. Worker.StateChanged does not bubble, so each tab forwards failures
    (anything a worker raises that it did not turn into a message itself) to the App."""

    # Keys that are not bindings (a table's Enter, a list's arrows) for the help screen, which lists
    # every tab's BINDINGS itself: (key, what) pairs.
    HELP_KEYS: tuple[tuple[str, str], ...] = ()

    @on(Worker.StateChanged)
    def _forward_failure(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.post_message(WorkerFailed(f"{type(self).__name__}/{event.worker.group}", event.worker.error))
            self.worker_failed(event.worker.group)

    def worker_failed(self, group: str) -> None:
        """Tab-specific cleanup after a failed worker (e.g. stop waiting for its answer)."""

    def first_field(self):
        """The widget this tab lands in when shown (keyboard first): by default its first focusable
        one; a tab whose first field is not first in the focus chain (e.g. a list still empty
        while its scan runs) names it."""
        return next((w for w in self.screen.focus_chain if self in w.ancestors), None)

    def focus_when_shown(self, widget) -> None:
        """On show: land in `widget` (keyboard first), unless the focus is already in this tab or
        on the tab bar: arrowing along the tabs must reach every tab (a tab that took the focus
        when shown trapped the arrows there)."""
        from textual.widgets import Tabs

        focused = self.screen.focused
        if focused is None or (self not in focused.ancestors and not isinstance(focused, Tabs)):
            widget.focus()

    def focus_at_start_up(self, widget) -> None:
        """The app starts on this tab (make_app(initial_tab=...)): land in `widget` before the first
        frame, as the Plan tab does, not on the tab bar Textual's auto-focus would pick (which
        focus_when_shown then leaves alone). At start-up TabbedContent has no active pane yet."""
        from textual.widgets import TabbedContent

        tabs = next((a for a in self.ancestors if isinstance(a, TabbedContent)), None)
        if tabs is not None and tabs.active == "":
            self.screen.set_focus(widget)
