"""Messages the app's workers and widgets post. Workers never touch widgets: they post one of
these, and the handler on the receiving widget owns the state (STYLE.md, harlequin)."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class WorkerFailed(Message):
    """A worker raised something that is not a UserError (a bug). Tabs and dialogs forward their
    Worker.StateChanged(ERROR) here; the App's one handler reports it as one line, no traceback."""

    def __init__(self, where: str, error: BaseException) -> None:
        super().__init__()
        self.where = where
        self.error = error


class TableReady(Message):
    """A worker built rows for a table (saved plans, bands, MoE): `rows` replace the old ones."""

    def __init__(self, request_id: int, rows: list, error: str | None = None, extra: Any = None,
                 error_field: str | None = None) -> None:
        super().__init__()
        self.request_id = request_id
        self.rows = rows
        self.error = error
        self.extra = extra
        self.error_field = error_field  # the UserError's `field` (the engine input it refuses), if any
