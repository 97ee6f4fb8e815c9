"""The Monitor tab: attach to any run directory and watch it live, whoever wrote it.

Recent runs (./runs and $LSDT_RUNS_DIR, newest first) are listed on the left; any other path can
be typed. The view (app/widgets/run_view.py) tails metrics.jsonl and events.jsonl incrementally,
shows how the run stands (running, ended and why, crashed, gone) and the machine: NVML per GPU, or
a plain "no NVIDIA GPU/driver" line. `lsdt-tui --monitor RUN_DIR` opens here, attached.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from engine import fmt
from engine.errors import UserError
from engine.runtime.train import rundir

from app.tabs.base import LsdtTab
from app.widgets.form_field import FieldInput
from app.widgets.run_view import RunView

MAX_RECENT = 30


def runs_roots() -> list[Path]:
    """Where recent runs are looked for: $LSDT_RUNS_DIR (':'-separated), then ./runs (lsdt train's default)."""
    roots = [Path(p).expanduser() for p in os.environ.get("LSDT_RUNS_DIR", "").split(os.pathsep) if p]
    roots.append(Path.cwd() / "runs")
    return list(dict.fromkeys(roots))


def recent_runs(roots: list[Path], limit: int = MAX_RECENT) -> list[tuple[Path, float]]:
    """Run directories directly under `roots`, newest activity first: (path, mtime of its newest file)."""
    found: dict[Path, float] = {}
    for root in roots:
        try:
            children = list(root.iterdir())
        except OSError:
            continue
        for d in children:
            if not rundir.is_run_dir(d):
                continue
            times = []
            for name in (rundir.METRICS_FILE, rundir.EVENTS_FILE, rundir.CONFIG_FILE):
                try:
                    times.append((d / name).stat().st_mtime)
                except OSError:
                    pass
            found[d.resolve()] = max(times, default=0.0)
    return sorted(found.items(), key=lambda kv: kv[1], reverse=True)[:limit]


def check_run_dir(text: str) -> Path:
    """A typed path -> a run directory, or a one-line UserError saying what is accepted."""
    if not text.strip():
        raise UserError("run directory: empty; accepted: a path to a run directory (config.toml, metrics.jsonl, events.jsonl)")
    p = Path(text.strip()).expanduser()
    if not p.is_dir():
        raise UserError(f"{text.strip()}: no such directory")
    if not rundir.is_run_dir(p):
        raise UserError(f"{text.strip()}: not a run directory (none of {rundir.CONFIG_FILE}, {rundir.METRICS_FILE}, {rundir.EVENTS_FILE})")
    return p


class RecentRuns(Message):
    def __init__(self, runs: list[tuple[Path, float]]) -> None:
        super().__init__()
        self.runs = runs


class MonitorTab(LsdtTab):
    BINDINGS = [
        Binding("ctrl+r", "refresh_runs", "refresh runs", tooltip="list the recent run directories again"),
        Binding("ctrl+l", "toggle_x", "x axis", tooltip="charts against steps or tokens"),
    ]
    DEFAULT_CSS = """
    MonitorTab { layout: horizontal; }
    MonitorTab #monitor-side { width: 26; padding: 0 1 0 0; }
    MonitorTab #recent-runs { height: 1fr; }
    MonitorTab #monitor-path { margin-top: 1; }
    MonitorTab #monitor-attach { min-width: 0; width: auto; }
    MonitorTab #monitor-error { color: $error; height: auto; }
    MonitorTab #monitor-view { width: 1fr; }
    """

    def __init__(self, *, run_dir: str | Path | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.initial_run_dir = run_dir
        self.runs: list[tuple[Path, float]] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="monitor-side"):
            yield Label("recent runs", classes="section-title")
            yield OptionList(id="recent-runs")
            yield FieldInput(placeholder="or a run directory path, Enter", id="monitor-path")
            yield Button("attach", id="monitor-attach", variant="primary", compact=True)
            yield Static("", id="monitor-error", markup=False)
        yield RunView(id="monitor-view")

    def on_mount(self) -> None:
        self.focus_at_start_up(self.first_field())
        start = self.initial_run_dir or self.app.monitor_run_dir  # `lsdt-tui --monitor RUN_DIR`
        if start:
            self.query_one("#monitor-path", Input).value = str(start)
            self.attach_path(str(start))
            # The Plan tab focuses its first input on mount, which makes TabbedContent show Plan;
            # opened with a run directory, this tab takes the screen back once mounting is done.
            self.call_after_refresh(self._take_screen)
        self.action_refresh_runs()

    def _take_screen(self) -> None:
        from textual.widgets import TabbedContent

        tabs = self.app.query_one(TabbedContent)
        tabs.active = "monitor"
        self.query_one("#monitor-path", Input).focus()

    def first_field(self):
        return self.query_one("#recent-runs", OptionList)

    def on_show(self) -> None:
        self.focus_when_shown(self.first_field())

    @property
    def view(self) -> RunView:
        return self.query_one("#monitor-view", RunView)

    # ------------------------------------------------------------------ recent runs

    def action_refresh_runs(self) -> None:
        self.scan_runs(runs_roots())

    @work(thread=True, exclusive=True, group="monitor-scan", exit_on_error=False)
    def scan_runs(self, roots: list[Path]) -> None:
        self.post_message(RecentRuns(recent_runs(roots)))

    @on(RecentRuns)
    def _recent(self, message: RecentRuns) -> None:
        self.runs = message.runs
        options = self.query_one("#recent-runs", OptionList)
        options.clear_options()
        now = time.time()
        for path, mtime in self.runs:
            ago = fmt.duration(max(0.0, now - mtime)) if mtime else "?"
            options.add_option(Option(f"{path.name}  ({ago} ago)", id=str(path)))
        if not self.runs:
            options.add_option(Option("no runs in " + ", ".join(str(r) for r in runs_roots()), disabled=True))
        else:
            options.highlighted = 0  # the newest run: Enter attaches it (nothing was highlighted: Enter did nothing)

    @on(OptionList.OptionSelected, "#recent-runs")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.query_one("#monitor-path", Input).value = event.option.id
            self.attach_path(event.option.id)

    # ------------------------------------------------------------------ attaching

    @on(Input.Submitted, "#monitor-path")
    @on(Button.Pressed, "#monitor-attach")
    def _attach_typed(self, event) -> None:
        self.attach_path(self.query_one("#monitor-path", Input).value)

    def attach_path(self, text: str) -> bool:
        error = self.query_one("#monitor-error", Static)
        try:
            path = check_run_dir(text)
        except UserError as exc:
            error.update(str(exc))
            return False
        error.update("")
        self.view.attach(path)
        return True

    def action_toggle_x(self) -> None:
        loss = self.view.charts["loss"]
        self.view.set_x_key("tokens" if loss.x_key == "step" else "step")
