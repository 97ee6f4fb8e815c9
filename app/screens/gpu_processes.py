"""The GPU processes (NVML) with their command lines; Enter on one dismisses with its PID, so the
Monitor can find and open the run it writes. Escape closes without one."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from engine import fmt


def process_rows(machine) -> list[tuple[int | None, str]]:
    """(pid, line) per GPU process of a telemetry Sample; (None, why) when there is none to list."""
    if machine is None:
        return [(None, "sampling the machine…")]
    rows = []
    for g in machine.gpus:
        for p in g.processes:
            rows.append((p.pid, f"GPU{g.index}  pid {p.pid}  {p.name or '?'}  {fmt.gb(p.used_memory_bytes, 1)}  "
                                f"{p.command or '(command line not readable)'}"))
    if not rows:
        rows.append((None, machine.gpu_error or "no process holds a GPU now"))
    return rows


class GpuProcessesScreen(ModalScreen[int | None]):
    BINDINGS = [Binding("escape", "dismiss_none", "close")]
    DEFAULT_CSS = """
    GpuProcessesScreen { align: center middle; }
    GpuProcessesScreen > Vertical { width: 90%; height: 60%; border: round $primary; background: $surface; padding: 0 1; }
    GpuProcessesScreen OptionList { height: 1fr; }
    """

    def __init__(self, machine) -> None:
        super().__init__()
        self.rows = process_rows(machine)

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "GPU processes · Enter: open its run · Escape: close"
            yield Label("the run is found from the files it holds open, its command line, or its working directory")
            yield OptionList(*[Option(line, id=None if pid is None else str(pid), disabled=pid is None)
                               for pid, line in self.rows], id="gpu-processes")

    def on_mount(self) -> None:
        self.query_one(OptionList).focus()

    @on(OptionList.OptionSelected)
    def _picked(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.dismiss(int(event.option.id))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
