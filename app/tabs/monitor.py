"""The Monitor tab: attach to any local run and watch it live, whoever trains it.

Recent runs of every known kind ($LSDT_RUNS_DIR, then ./runs; newest first, with source and state)
are listed on the left; any other path can be typed. The view (app/widgets/run_view.py) reads the
run through engine.runtime.monitor's readers: LSDT run dirs, TensorBoard event files, HF Trainer
dirs, Lightning's CSVLogger, a CSV/JSONL file. Keys: x axis step/tokens/minutes, TensorBoard-style
smoothing, log y, overlay other runs' loss, the machine-history metric, the run's config, and stop
(an LSDT run on this host, gracefully as the Train tab does). `lsdt-tui --monitor RUN` opens here.
"""

from __future__ import annotations

import os
import signal
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
from engine.runtime.monitor import runs as monitor_runs
from engine.runtime.monitor.predicted import compare, write_calibration
from engine.runtime.monitor.reader import RunReader
from engine.runtime.monitor.runs import open_run, run_of_process, runs_roots

from app.tabs.base import LsdtTab
from app.widgets.form_field import FieldInput
from app.widgets.live_chart import shown
from app.widgets.run_view import RunView

MAX_RECENT = 30
# The recent-runs list is scanned again this often while it is on screen: its ages ("3 s ago") and
# states (running -> ended) were stale until ctrl+r. One scan at a time (a thread worker, exclusive).
RESCAN_S = 5.0
SMOOTHING_STEPS = (0.0, 0.6, 0.9, 0.99)  # TensorBoard's slider, in the stops people use
X_KEYS = ("step", "tokens", "minutes")


def recent_runs(roots: list[Path], limit: int = MAX_RECENT) -> list[tuple[Path, str, str, float]]:
    """Runs of any known kind under `roots`, newest first: (path, source, state, mtime of its newest file)."""
    return [(p, source, monitor_runs.quick_state(p, source), mtime)
            for p, source, mtime in monitor_runs.recent_runs(roots, limit)]


def check_run_dir(text: str) -> RunReader:
    """A typed path -> a reader for it, or a one-line UserError saying what is accepted."""
    if not text.strip():
        raise UserError(f"run: empty; accepted: {monitor_runs.ACCEPTED}")
    return open_run(text.strip())


class RecentRuns(Message):
    def __init__(self, runs: list[tuple[Path, str, str, float]]) -> None:
        super().__init__()
        self.runs = runs


class ModelCompared(Message):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


def comparison_text(c: dict) -> str:
    """Predicted beside measured for the side panel (27 columns): one row per figure."""
    p, m = c["predicted"], c["measured"]
    head = "predicted · measured /GPU"
    if p is None:
        return f"{head}\n{c['why_na']}"
    rows = [("tok/s", fmt.si(p["tok_per_s"]), fmt.si(m["tok_per_s"])), ("MFU", fmt.pct(p["mfu"]), fmt.pct(m["mfu"])),
            ("memory", fmt.gb(p["memory_bytes"]), fmt.gb(m["memory_bytes"]))]
    return "\n".join([head] + [f"{k:<7}{a:>9}{b:>10}" for k, a, b in rows] + ["p: feed back as calibration"])


class MonitorTab(LsdtTab):
    BINDINGS = [
        Binding("ctrl+r", "refresh_runs", "refresh runs", tooltip="list the recent runs again"),
        Binding("ctrl+l", "toggle_x", "x axis", tooltip="charts against steps, tokens or wall-clock minutes"),
        Binding("ctrl+t", "stop", "stop run", tooltip="stop the watched LSDT run gracefully (SIGINT: it checkpoints); again: kill"),
        Binding("s", "smoothing", "smoothing", tooltip="TensorBoard-style EMA of the loss: 0 / 0.6 / 0.9 / 0.99 (raw drawn faint)"),
        Binding("y", "log_y", "log y", tooltip="the loss chart on a log scale"),
        Binding("o", "overlay", "overlay", tooltip="overlay the highlighted recent run's loss on the chart (again: remove it)"),
        Binding("t", "next_series", "series", tooltip="the grad-norm chart shows the run's next other series (any tag another trainer logged)"),
        Binding("m", "machine_metric", "machine metric", tooltip="the machine chart: GPU util, memory, power, temperature, SM clock, process CPU"),
        Binding("c", "config", "config", tooltip="the watched run's configuration (config.toml, Trainer state, hparams.yaml)"),
        Binding("g", "gpu_processes", "GPU processes", tooltip="the GPU processes with their command lines; Enter on one opens the run it writes"),
        Binding("p", "calibrate", "calibrate", tooltip="write the run's measured tok/s as a probe file for `lsdt plan --calibrate`"),
    ]
    DEFAULT_CSS = """
    MonitorTab { layout: horizontal; overflow-y: auto; scrollbar-size-vertical: 1; }
    /* The side scrolls, and the runs list keeps 6 rows whatever is below it: at 80x24 a long error
       under the path field squeezed the list to nothing. */
    MonitorTab #monitor-side { width: 28; padding: 0 1 0 0; overflow-y: auto; scrollbar-size-vertical: 1; }
    MonitorTab #recent-runs { height: 1fr; min-height: 6; }
    MonitorTab #monitor-path { margin-top: 1; }
    MonitorTab #monitor-attach { min-width: 0; width: auto; }
    MonitorTab #monitor-error { height: auto; }
    MonitorTab #monitor-error.-error { color: $error; }
    MonitorTab #monitor-model { height: auto; margin-top: 1; }
    MonitorTab #monitor-view { width: 1fr; }
    """

    def __init__(self, *, run_dir: str | Path | None = None, id: str | None = None) -> None:
        super().__init__(id=id)
        self.initial_run_dir = run_dir
        self.runs: list[tuple[Path, str, str, float]] = []
        self.reader: RunReader | None = None
        self.stop_sent: str | None = None  # "SIGINT" then "SIGKILL" for the watched run
        # Until the user attaches a run (or one is given), the newest run in the list is attached
        # as soon as one appears: a run started from the Train tab shows here without a key.
        self.auto_attach = True

    def compose(self) -> ComposeResult:
        with Vertical(id="monitor-side"):
            yield Label("recent runs", classes="section-title")
            yield OptionList(id="recent-runs")
            yield FieldInput(placeholder="or a run path, Enter", id="monitor-path")
            yield Button("attach", id="monitor-attach", variant="primary", compact=True)
            yield Static("", id="monitor-error", markup=False)
            yield Static("", id="monitor-model", markup=False)
        yield RunView(detail=True, id="monitor-view")

    def on_mount(self) -> None:
        self.focus_at_start_up(self.first_field())
        start = self.initial_run_dir or self.app.monitor_run_dir  # `lsdt-tui --monitor RUN`
        if start:
            self.query_one("#monitor-path", Input).value = str(start)
            self.attach_path(str(start))
            # The Plan tab focuses its first input on mount, which makes TabbedContent show Plan;
            # opened with a run, this tab takes the screen back once mounting is done.
            self.call_after_refresh(self._take_screen)
        self.action_refresh_runs()
        self.set_interval(2.0, self._compare_model, name="monitor-model")
        self.set_interval(RESCAN_S, self._rescan_if_shown, name="monitor-rescan")

    def _rescan_if_shown(self) -> None:
        if shown(self):
            self.action_refresh_runs()

    def _compare_model(self) -> None:
        if self.reader is not None and self.view.polls and self.is_on_screen:
            self.compare_model(self.reader)

    @work(thread=True, exclusive=True, group="monitor-model", exit_on_error=False)
    def compare_model(self, reader: RunReader) -> None:
        """The engineering model's prediction for the watched run (reads its config: off the UI thread)."""
        self.post_message(ModelCompared(comparison_text(compare(reader).to_dict())))

    @on(ModelCompared)
    def _compared(self, message: ModelCompared) -> None:
        self.query_one("#monitor-model", Static).update(message.text)

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

    def say(self, text: str, error: bool = False) -> None:
        """One line under the path field: what a key did, or (in the error colour) why it could not."""
        line = self.query_one("#monitor-error", Static)
        line.set_class(error, "-error")
        line.update(text)

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
        # A rescan keeps the user's place: the highlighted run stays highlighted (by path).
        kept = options.get_option_at_index(options.highlighted).id if options.highlighted is not None else None
        options.clear_options()
        now = time.time()
        for path, source, state, mtime in self.runs:
            ago = fmt.duration(max(0.0, now - mtime)) if mtime else "?"
            options.add_option(Option(f"{path.name}\n  {source} · {state} · {ago} ago", id=str(path)))
        if not self.runs:
            options.add_option(Option("no runs in " + ", ".join(str(r) for r in runs_roots()), disabled=True))
        else:
            ids = [str(path) for path, *_ in self.runs]
            # The newest run unless the user had another highlighted (Enter attaches the highlighted one).
            options.highlighted = ids.index(kept) if kept in ids else 0
            if self.auto_attach and self.reader is None:
                # Once: a newest run that cannot be attached (no metrics yet) must not retake the
                # path field and repeat its error at every rescan while the user types another path.
                self.auto_attach = False
                newest = self.runs[0][0]
                self.query_one("#monitor-path", Input).value = str(newest)
                if self.attach_path(str(newest), by_user=False):
                    self.say(f"attached the newest run, {newest.name} (pick another in the list)")

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

    def attach_path(self, text: str, by_user: bool = True) -> bool:
        if by_user:
            self.auto_attach = False  # the user chose: a new run appearing does not take the view
        try:
            reader = check_run_dir(text)
        except UserError as exc:
            self.say(str(exc), error=True)
            return False
        self.reader, self.stop_sent = reader, None
        self.say(f"{reader.label}: {reader.path.name}")
        self.view.attach(reader.path, reader)
        return True

    # ------------------------------------------------------------------ view keys

    def action_toggle_x(self) -> None:
        key = self.view.x_key
        self.view.set_x_key(X_KEYS[(X_KEYS.index(key) + 1) % len(X_KEYS)] if key in X_KEYS else "step")

    def action_smoothing(self) -> None:
        now = self.view.smoothing
        nxt = SMOOTHING_STEPS[(SMOOTHING_STEPS.index(now) + 1) % len(SMOOTHING_STEPS)] if now in SMOOTHING_STEPS else 0.0
        self.view.set_smoothing(nxt)
        self.say(f"smoothing {nxt:g}" + (" (raw loss drawn grey)" if nxt else " (raw)"))

    def action_log_y(self) -> None:
        chart = self.view.charts["loss"]
        self.view.set_log_y(not chart.log_y)

    def action_next_series(self) -> None:
        names = self.view.other_series()
        if len(names) < 2:
            self.say("series: this run logs nothing beyond the charts shown", error=True)
            return
        now = self.view.picked_series
        self.view.pick_series(names[(names.index(now) + 1) % len(names)] if now in names else names[0])
        self.say(f"series: {self.view.picked_series} ({len(names)} in this run)")

    def action_machine_metric(self) -> None:
        names = [n for n, _ in RunView.MACHINE_METRICS]
        self.view.set_machine_metric(names[(names.index(self.view.machine_metric) + 1) % len(names)])

    def action_overlay(self) -> None:
        options = self.query_one("#recent-runs", OptionList)
        if options.highlighted is None or self.view.run_dir is None:
            self.say("overlay: attach a run, then highlight another one in the list", error=True)
            return
        path = Path(options.get_option_at_index(options.highlighted).id or "")
        if path.name in self.view.overlays:
            self.view.remove_overlay(path.name)
            self.say(f"overlay {path.name} removed")
            return
        if path.resolve() == self.view.run_dir.resolve():
            self.say("overlay: that is the watched run; highlight another one", error=True)
            return
        try:
            self.say(f"overlay {self.view.add_overlay(open_run(path))} on the loss chart")
        except UserError as exc:
            self.say(str(exc), error=True)

    def action_config(self) -> None:
        if self.reader is None:
            self.say("config: attach a run first", error=True)
            return
        from app.screens.run_config import RunConfigScreen

        config = self.reader.config()  # small files, read once per key press
        self.app.push_screen(RunConfigScreen(f"{self.reader.label} {self.reader.path.name}", config, self.reader.problems))

    def action_gpu_processes(self) -> None:
        from app.screens.gpu_processes import GpuProcessesScreen

        self.app.push_screen(GpuProcessesScreen(self.view.machine), self._open_process_run)

    def _open_process_run(self, pid: int | None) -> None:
        if pid is None:
            return
        path, how = run_of_process(pid)
        if path is None:
            self.say(how, error=True)
            return
        self.query_one("#monitor-path", Input).value = str(path)
        if self.attach_path(str(path)):
            self.say(f"pid {pid}: {how} -> {self.reader.label} {path.name}")

    def action_calibrate(self) -> None:
        if self.reader is None:
            self.say("calibrate: attach a run first", error=True)
            return
        try:
            path = write_calibration(self.reader)
        except UserError as exc:
            self.say(str(exc), error=True)
            return
        self.say(f"wrote {path.name}: lsdt plan --calibrate {path}")

    def action_stop(self) -> None:
        """SIGINT to the watched LSDT run's process (the trainer finishes its step, checkpoints and
        writes an end event, as the Train tab's stop); a second press sends SIGKILL."""
        status = self.view.status
        if self.reader is None or self.reader.source != "lsdt" or status is None or status.state != "running" or not status.pid:
            self.say("stop: only an LSDT run running on this host can be stopped from here", error=True)
            return
        sig = signal.SIGKILL if self.stop_sent == "SIGINT" else signal.SIGINT
        try:
            os.kill(status.pid, sig)
        except OSError as exc:
            self.say(f"stop: pid {status.pid}: {exc.strerror}", error=True)
            return
        self.stop_sent = sig.name
        self.say(f"sent {sig.name} to pid {status.pid}" + (": finishing the step, checkpointing (again: kill)"
                                                             if sig == signal.SIGINT else ""))
