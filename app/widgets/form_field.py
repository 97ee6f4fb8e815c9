"""A labelled one-line input with its validation message right below it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Static


class FieldInput(Input):
    """An Input that follows the app's cursor-blink setting (off in tests and snapshots), and where
    `?` opens help as it does everywhere else: no LSDT field takes a `?` (numbers, durations,
    names, profile paths), and the first field has the focus from start-up."""

    BINDINGS = [Binding("question_mark", "app.help", "help", show=False, priority=True)]

    def on_mount(self) -> None:
        self.cursor_blink = getattr(self.app, "cursor_blink", True)

    def on_blur(self) -> None:
        # A value that fills the box scrolls by a cell for the cursor after its last character;
        # left that way, the field reads '2,14,16,18,20' for 12,14,16,18,20. Show the start again,
        # now and after the next refresh: keys typed just before the Tab (app/key_order.py) may
        # still have a scroll-to-cursor queued, which would scroll back to the end.
        self.scroll_to(x=0, animate=False, immediate=True)
        self.call_after_refresh(self.scroll_to, x=0, animate=False, immediate=True)


class FormField(Vertical):
    """label [input] unit, and under it the field's error (hidden while the value is valid)."""

    DEFAULT_CSS = """
    FormField { height: auto; }
    FormField > Horizontal { height: 1; }
    FormField .field-label { width: 10; color: $text-muted; }
    FormField .field-unit { width: auto; min-width: 6; padding-left: 1; color: $text-muted; }
    FormField FieldInput { width: 1fr; }
    FormField .field-error { display: none; color: $error; height: auto; padding-left: 10; }
    FormField.-invalid .field-error { display: block; }
    FormField.-invalid FieldInput { color: $error; }
    """

    def __init__(self, name: str, label: str, value: str = "", placeholder: str = "", unit: str = "",
                 *, id: str | None = None) -> None:
        super().__init__(id=id or f"field-{name}")
        self.field_name = name
        self.field_label = label
        self._label, self._value, self._placeholder, self._unit = label, value, placeholder, unit

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self._label, classes="field-label")
            yield FieldInput(self._value, placeholder=self._placeholder, compact=True, id=f"input-{self.field_name}")
            if self._unit:
                yield Label(self._unit, classes="field-unit")
        yield Static("", classes="field-error", markup=False)

    @property
    def input(self) -> FieldInput:
        return self.query_one(FieldInput)

    @property
    def error(self) -> str:
        """The message shown under the field ('' while the value is valid)."""
        return getattr(self, "_error", "")

    def set_error(self, message: str | None) -> None:
        message = message or ""
        if message == getattr(self, "_error", ""):
            return  # unchanged: no refresh (this runs for every field on every keystroke)
        self._error = message
        self.query_one(".field-error", Static).update(message)
        self.set_class(bool(message), "-invalid")
