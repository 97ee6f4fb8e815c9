"""A tab that is a form over one engine call: fields -> debounce -> validate -> worker -> show.

The Plan, Bands and MoE tabs are this shape (the Plan tab adds pickers, pinning and files). A subclass
gives `read_form()` (the engine call's arguments, or the fields that are wrong, each with a
one-line message), `engine_call(args)` (runs in a thread worker; raises UserError for inputs the
engine refuses) and `show(result)`. Stale answers are dropped by request id.
"""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.timer import Timer
from textual.widgets import Input, Select, Static

from engine.errors import UserError

from app.messages import TableReady
from app.tabs.base import LsdtTab
from app.widgets.form_field import FormField

DEBOUNCE_S = 0.05


class FormTab(LsdtTab):
    group = "form"  # worker group: one exclusive group per tab
    debounce_s = DEBOUNCE_S  # a subclass whose engine call is milliseconds may answer sooner

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._request = 0
        self._answered = 0
        self._pending = True  # the first computation is due at mount
        self._debounce: Timer | None = None
        self.result: Any = None  # the last engine answer shown

    # ------------------------------------------------------------------ subclass API

    def read_form(self) -> tuple[dict, dict[str, str]]:
        raise NotImplementedError

    def engine_call(self, args: dict) -> Any:
        raise NotImplementedError

    def show(self, result: Any) -> None:
        raise NotImplementedError

    # An engine UserError's `field` (the engine input it refuses) -> the form field its message is
    # shown under. Errors about no one field (or one the form lacks) go to the status line only.
    ERROR_FIELDS: dict[str, str] = {}
    error_field: str | None = None  # the form field showing the engine's last refusal, if one does

    def show_stale(self, why: str) -> None:
        """Inputs are invalid or refused: say so where the result is (subclasses dim it). A message
        already under its field is not repeated here (the QA walk read the same error twice)."""
        status = self.query_one(".form-status", Static)
        if any(f.error == why for f in self.query(FormField)):
            why = "fix the field marked in red: the answer below is for the last valid inputs"
        status.update(why)
        status.set_class(bool(why), "-shown")

    # ------------------------------------------------------------------ flow

    def on_mount(self) -> None:
        self.schedule()

    @property
    def idle(self) -> bool:
        return not self._pending and self._answered == self._request

    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self, event) -> None:
        self.schedule()

    def schedule(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._pending = True
        self._debounce = self.set_timer(self.debounce_s, self._recompute)

    def _recompute(self) -> None:
        self._pending = False
        args, errors = self.read_form()
        for field in self.query(FormField):
            field.set_error(errors.get(field.field_name))
        self._request += 1
        if errors:
            self._answered = self._request
            self.show_stale(next(iter(errors.values())))
            return
        self._compute(args, self._request)

    @work(thread=True, exclusive=True, group="form-compute", exit_on_error=False)
    def _compute(self, args: dict, request_id: int) -> None:
        try:
            result = self.engine_call(args)
        except UserError as exc:
            self.post_message(TableReady(request_id, [], error=str(exc), error_field=exc.field))
            return
        self.post_message(TableReady(request_id, [], extra=result))

    @on(TableReady)
    def _ready(self, message: TableReady) -> None:
        if message.request_id != self._request:
            return
        self._answered = message.request_id
        if message.error:
            name = self.ERROR_FIELDS.get(message.error_field or "")
            self.error_field = None
            for field in self.query(FormField):
                if field.field_name == name:
                    field.set_error(message.error)
                    self.error_field = name
            self.show_stale(message.error)
            return
        self.result = message.extra
        self.query_one(".form-status", Static).update("")
        self.query_one(".form-status", Static).remove_class("-shown")
        self.show(message.extra)

    def worker_failed(self, group: str) -> None:
        self._answered = self._request
        self.show_stale("internal error while computing (see the notification)")

    # ------------------------------------------------------------------ helpers

    def text(self, name: str) -> str:
        return self.query_one(f"#input-{name}", Input).value

    def take(self, errors: dict[str, str], name: str, fn, default=None):
        """fn() or, on a UserError, record its message against the field. A grammar error given no
        field (engine/inputs.py) says only what is wrong with the value, so it is prefixed with the
        field's label (the form's status line shows it away from the field)."""
        try:
            return fn()
        except UserError as exc:
            if exc.field:
                errors[name] = str(exc)
            else:
                fields = [f for f in self.query(FormField) if f.field_name == name]
                errors[name] = f"{fields[0].field_label if fields else name}: {exc}"
        return default
