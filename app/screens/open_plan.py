"""Open a saved plan from a list of the plans directory, each row with its key numbers."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from app.messages import TableReady, WorkerFailed
from app.saved import list_saved


class OpenPlanScreen(ModalScreen[Path | None]):
    # The list is read off the UI thread. Until it arrives the table takes no focus and an Enter is
    # kept, then opens the first plan: an Enter typed at full speed after ctrl+o is never lost.
    AUTO_FOCUS = None
    BINDINGS = [Binding("escape", "cancel", "cancel"), Binding("enter", "open_when_ready", "open", show=False)]
    DEFAULT_CSS = """
    OpenPlanScreen { align: center middle; }
    OpenPlanScreen > Vertical { width: 100%; max-width: 130; height: 80%; border: thick $primary; background: $surface; padding: 0 1; }
    OpenPlanScreen DataTable { height: 1fr; }
    OpenPlanScreen #open-note { height: auto; color: $text-muted; }
    OpenPlanScreen #open-detail { height: auto; }
    """

    def __init__(self, plans_dir: Path) -> None:
        super().__init__()
        self.plans_dir = plans_dir
        self.paths: dict[str, Path] = {}
        self.rows: dict = {}  # name -> SavedPlanRow
        self.loaded = False
        self.open_pending = False  # Enter pressed before the list arrived

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = f"Open plan  ({self.plans_dir})"
            table = DataTable(id="open-table", cursor_type="row", zebra_stripes=True)
            table.can_focus = False  # until its rows arrive (see AUTO_FOCUS)
            yield table
            yield Static("", id="open-detail", markup=False)
            yield Static("reading…", id="open-note", markup=False)

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("name", "model", "hardware", "mode", "result", "DPxTPxPP", "step/budget")
        self.scan()

    @work(thread=True, exclusive=True, group="open-scan", exit_on_error=False)
    def scan(self) -> None:
        """Every file is parsed and validated (off the UI thread: a directory can hold many)."""
        self.post_message(TableReady(0, list_saved(self.plans_dir)))

    @on(TableReady)
    def _rows(self, message: TableReady) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for row in message.rows:
            self.paths[row.name] = row.path
            self.rows[row.name] = row
            table.add_row(row.name, row.model, row.hardware, row.mode, row.result, row.layout, row.step, key=row.name)
        bad = [r for r in message.rows if r.error]
        if not message.rows:
            note = f"no saved plans in {self.plans_dir} yet (ctrl+s on the Plan tab saves one) · Escape closes"
        else:
            note = "Enter opens · Escape cancels"
            if bad:
                note = f"{bad[0].error}  ·  " + note
        self.query_one("#open-note", Static).update(note)
        self.loaded = True
        table.can_focus = True
        table.focus()
        if self.open_pending and message.rows:
            self.dismiss(message.rows[0].path)  # the row the cursor starts on

    def action_open_when_ready(self) -> None:
        """Enter while the list is still being read (the table, once focused, takes Enter itself)."""
        if not self.loaded:
            self.open_pending = True

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The highlighted plan's file, and the refined model's best layout when the file has one."""
        row = self.rows.get(event.row_key.value) if event.row_key is not None else None
        if row is None:
            return
        text = str(row.path)
        if row.error:
            text += f"  ·  {row.error}"
        elif row.refined:
            text += f"  ·  refined best: {row.refined}"
        self.query_one("#open-detail", Static).update(text)

    @on(DataTable.RowSelected)
    def _chosen(self, event: DataTable.RowSelected) -> None:
        self.dismiss(self.paths[event.row_key.value])

    @on(Worker.StateChanged)
    def _failed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.post_message(WorkerFailed("OpenPlanScreen/open-scan", event.worker.error))

    def action_cancel(self) -> None:
        self.dismiss(None)
