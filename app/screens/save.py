"""Save-as: a name prompt that validates as you type, and the overwrite question."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from engine.errors import UserError

from app.widgets.form_field import FieldInput


class SaveScreen(ModalScreen[Path | None]):
    """Ask for a plan name; dismiss with the file path (the caller asks before overwriting)."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]
    DEFAULT_CSS = """
    SaveScreen { align: center middle; }
    SaveScreen > Vertical { width: 64; height: auto; border: thick $primary; background: $surface; padding: 1 2; }
    SaveScreen #save-path { color: $text-muted; height: auto; }
    SaveScreen #save-error { color: $error; height: auto; }
    SaveScreen Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    SaveScreen Button { margin-left: 1; }
    """

    def __init__(self, suggested: str, check: Callable[[str], Path]) -> None:
        super().__init__()
        self.suggested = suggested
        self.check = check  # name -> path; raises UserError for a name that cannot be a file

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Save plan"
            yield Label("Name")
            yield FieldInput(self.suggested, id="save-name")
            yield Static("", id="save-path", markup=False)
            yield Static("", id="save-error", markup=False)
            with Horizontal():
                yield Button("Cancel", id="save-cancel")
                yield Button("Save", variant="primary", id="save-ok")

    def on_mount(self) -> None:
        self._validate(self.suggested)

    def _validate(self, name: str) -> Path | None:
        try:
            path = self.check(name)
        except UserError as exc:
            self.query_one("#save-error", Static).update(str(exc))
            self.query_one("#save-path", Static).update("")
            self.query_one("#save-ok", Button).disabled = True
            return None
        self.query_one("#save-error", Static).update("")
        self.query_one("#save-path", Static).update(f"→ {path}" + ("  (exists: you will be asked)" if path.exists() else ""))
        self.query_one("#save-ok", Button).disabled = False
        return path

    @on(Input.Changed, "#save-name")
    def _changed(self, event: Input.Changed) -> None:
        self._validate(event.value)

    @on(Input.Submitted, "#save-name")
    @on(Button.Pressed, "#save-ok")
    def _ok(self) -> None:
        path = self._validate(self.query_one("#save-name", Input).value)
        if path is not None:
            self.dismiss(path)

    @on(Button.Pressed, "#save-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; y/n/Escape answer it from the keyboard."""

    BINDINGS = [Binding("y", "answer(True)", "yes"), Binding("n,escape", "answer(False)", "no")]
    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 56; height: auto; border: thick $warning; background: $surface; padding: 1 2; }
    ConfirmScreen Horizontal { height: auto; align-horizontal: right; margin-top: 1; }
    ConfirmScreen Button { margin-left: 1; }
    """

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, markup=False)
            with Horizontal():
                yield Button("No", id="confirm-no")
                yield Button("Yes, overwrite", variant="warning", id="confirm-yes")

    def on_mount(self) -> None:
        self.query_one("#confirm-no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
