"""Messages the app's workers and widgets post. Workers never touch widgets: they post one of
these, and the handler on the receiving widget owns the state (STYLE.md, harlequin)."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from engine.plan import Plan


class PlanComputed(Message):
    """A Plan-tab computation finished. `request_id` lets the handler drop stale answers (the
    worker group is exclusive, but a cancelled thread may still finish and post)."""

    def __init__(self, request_id: int, plan: Plan | None, error: str | None = None, elapsed_s: float = 0.0,
                 error_field: str | None = None) -> None:
        super().__init__()
        self.request_id = request_id
        self.plan = plan  # computed Plan (result filled) or None when `error`
        self.error = error  # a UserError's one line
        self.error_field = error_field  # the UserError's `field` (the engine key it rejects), if any
        self.elapsed_s = elapsed_s


class RefinedComputed(Message):
    """Step 2 for the same request: Plan.compute_refined()'s dict (mode, feasible, efficiency,
    stats, layouts = flat dicts of engine.plan.REFINED_LAYOUT_KEYS, fastest first)."""

    def __init__(self, request_id: int, refined: dict, error: str | None = None, elapsed_s: float = 0.0) -> None:
        super().__init__()
        self.request_id = request_id
        self.refined = refined
        self.error = error
        self.elapsed_s = elapsed_s


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
