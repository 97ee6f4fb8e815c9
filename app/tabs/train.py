"""The Train tab: launch `python -m engine.runtime.train.loop` as a child process and watch its run.

The form holds the same flags as `lsdt train` (engine/runtime/train/config.py); the trainer
validates them and, on a mistake, exits 2 with one line, shown here. The run directory is chosen
before the launch, so the view (app/widgets/run_view.py) tails it from the first line: loss and
val loss against steps or tokens (ctrl+l), tok/s and MFU, memory (torch allocated/peak and NVML
used against capacity), ETA, events. Stop sends SIGINT: the trainer finishes its step, writes a
checkpoint and an end event (a second Stop kills it). Resume continues the run from its newest
good checkpoint (`--resume`, optionally with more --steps). A crash or OOM in the child ends the
run, never the TUI.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Button, Input, Label, Select, Static

from engine import inputs
from engine.errors import UserError
from engine.runtime.train import rundir
from engine.runtime.train.config import DEFAULTS, grammar, shown_default

from app.child import python_module
from app.keys import key_text
from app.tabs.child_tab import ChildProcessTab
from app.widgets.form_field import FieldInput
from app.widgets.run_view import RunView

OWNER = "train"

# (field, label, placeholder, width): empty means the trainer's default, which the placeholder shows
# (engine/runtime/train/config.py: TrainConfig declares each flag's default and grammar).
FIELDS = (
    ("model", "model (name or file)", shown_default("model"), "1fr"),  # a path: what the row has left (at least 20)
    ("depth", "depth", "", 6),
    ("data", "data", DEFAULTS["data"], 18),
    ("steps", "steps", shown_default("steps"), 7),
    ("hours", "hours", "", 6),
    ("seq", "seq", "", 6),
    ("device_batch", "batch", shown_default("device_batch"), 6),
)
# The second row: how the run is logged and checkpointed.
FIELDS_2 = (
    ("log_every", "log every", shown_default("log_every"), 9),
    ("eval_every", "eval every", shown_default("eval_every"), 10),
    ("ckpt_every", "ckpt every", shown_default("ckpt_every"), 10),
    ("threads", "threads", shown_default("threads"), 14),  # its placeholder "torch's choice" whole
)
ALL_FIELDS = FIELDS + FIELDS_2
INT_FLAGS = ("depth", "steps", "seq", "device_batch", "log_every", "eval_every", "ckpt_every", "threads")


def end_summary_text(lines: list[str]) -> str:
    """`lsdt train`'s end summary (engine/runtime/train/summary.py: how it ended, the losses, the
    checkpoints) from the trainer's last lines, as one status text; '' when it printed none."""
    start = next((i for i in range(len(lines) - 1, -1, -1) if ": ended (" in lines[i]), None)
    if start is None:
        return ""
    first = lines[start].split(": ", 1)[1]
    return " · ".join([first] + [line.strip() for line in lines[start + 1:] if line.strip()])


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def train_args(form: dict[str, str]) -> list[str]:
    """The trainer's flags for the form (fresh run). UserError names the field that is wrong."""
    args: list[str] = []
    if form.get("model", "").strip() and form.get("depth", "").strip():
        raise UserError("model and depth: give one (a model profile/file, or a depth for a band model)")
    for name in INT_FLAGS:
        text = form.get(name, "").strip()
        if text:
            args += [_flag(name), str(grammar(name)(text, name.replace("_", " ")))]  # the CLI's own grammar
    hours = form.get("hours", "").strip()
    if hours:
        if form.get("steps", "").strip():
            raise UserError("steps and hours: give one (a step count, or a wall-clock budget)")
        args += ["--hours", repr(inputs.hours(hours, "hours"))]
    for name in ("model", "data"):
        text = form.get(name, "").strip()
        if text:
            args += [_flag(name), text]
    if form.get("device"):
        args += ["--device", form["device"]]
    return args


def default_run_dir(form: dict[str, str]) -> str:
    label = Path(form.get("model", "").strip()).stem or (f"d{form['depth'].strip()}" if form.get("depth", "").strip() else "tiny")
    return str(Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{label}")


class TrainTab(ChildProcessTab):
    OWNER, STATUS_ID = OWNER, "train-status"
    ON_UNMOUNT = "interrupt"  # leaving the TUI: the run checkpoints and ends cleanly on its own
    BINDINGS = [
        Binding("ctrl+r", "start", "launch", tooltip="launch the training run (a child process)"),
        Binding("ctrl+t", "stop", "stop", tooltip="stop gracefully: the step finishes and a checkpoint is written (again: kill)"),
        Binding("ctrl+y", "resume", "resume", tooltip="resume the run from its newest good checkpoint"),
        Binding("ctrl+f", "from_plan", "from plan", tooltip="take the model from the Plan tab"),
        Binding("ctrl+n", "from_bands", "from bands", tooltip="take the depth highlighted in the Bands table"),
        Binding("ctrl+l", "toggle_x", "x axis", tooltip="charts against steps or tokens"),
    ]
    DEFAULT_CSS = """
    TrainTab { layout: vertical; overflow-y: auto; scrollbar-size-vertical: 1; }
    TrainTab .train-form { height: auto; }
    TrainTab .train-field { width: auto; height: auto; margin-right: 1; }
    TrainTab .train-field Label { color: $text-muted; }
    TrainTab #train-device { width: 10; }
    TrainTab #train-actions { height: auto; }
    TrainTab #train-actions Button { margin-right: 1; min-width: 0; width: auto; }
    /* The status wraps (up to 4 lines) rather than cutting a trainer's line at the screen's edge. */
    TrainTab #train-status { width: 1fr; height: auto; max-height: 4; padding: 0 1; }
    TrainTab #train-run_dir-field, TrainTab #train-model-field { width: 1fr; min-width: 20; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.run_dir: Path | None = None
        self.exits: list[int] = []  # exit codes of the children this tab started (tests read them)
        # The run dir this tab picked and wrote into the empty field: still there at the next
        # "train", it means "a new default run", not "this run dir" (which holds the last run).
        self.picked_run_dir: str | None = None

    def compose(self) -> ComposeResult:
        def field(name: str, label: str, placeholder: str, width: int | str):
            with Vertical(classes="train-field", id=f"train-{name}-field"):
                yield Label(label)
                widget = FieldInput(placeholder=placeholder, id=f"train-{name}", compact=True)
                widget.styles.width = width
                yield widget

        # Rows that each fit 80 columns (the first is 76 wide); the run dir has the third.
        with Horizontal(classes="train-form"):
            for spec in FIELDS:
                yield from field(*spec)
        with Horizontal(classes="train-form"):
            for spec in FIELDS_2:
                yield from field(*spec)
            with Vertical(classes="train-field"):
                yield Label("device")
                yield Select([(d, d) for d in ("auto", "cuda", "cpu")], value="auto", allow_blank=False, compact=True,
                             id="train-device")
        # A row of its own: its value ("runs/<time>-<model>", 22+ cells) was cut at 80 columns.
        with Horizontal(classes="train-form"):
            yield from field("run_dir", "run dir", "runs/<time>-<model>", "1fr")
        with Horizontal(id="train-actions"):
            yield Button("train", id="train-start", variant="primary", compact=True)
            yield Button("stop", id="train-stop", variant="error", compact=True, disabled=True)
            yield Button("resume", id="train-resume", compact=True, disabled=True)
            yield Button("from plan", id="train-from-plan", compact=True)
            yield Button("from bands", id="train-from-bands", compact=True)
        # Its own row, the full width: beside the buttons (30 columns at 80) the end summary lost
        # its checkpoint path.
        yield Static("empty = lsdt train's default · ctrl+r launch", id="train-status", markup=False)
        yield RunView(id="train-view")

    def on_mount(self) -> None:
        self.focus_at_start_up(self.first_field())

    def first_field(self):
        return self.query_one("#train-model", Input)

    def on_show(self) -> None:
        self.focus_when_shown(self.first_field())

    @property
    def view(self) -> RunView:
        return self.query_one("#train-view", RunView)

    def form(self) -> dict[str, str]:
        values = {name: self.query_one(f"#train-{name}", Input).value for name, *_ in ALL_FIELDS}
        values["device"] = str(self.query_one("#train-device", Select).value)
        values["run_dir"] = self.query_one("#train-run_dir", Input).value
        return values

    def buttons(self) -> None:
        running = self.running
        self.query_one("#train-start", Button).disabled = running
        stop = self.query_one("#train-stop", Button)
        stop.disabled = not running
        label = "force stop" if running and self.stopping else "stop"
        if str(stop.label) != label:
            stop.label = label
            stop.refresh(layout=True)  # a Button's label only repaints: its auto width showed 'forc'
        resumable = self.run_dir is not None and bool(rundir.list_checkpoints(self.run_dir))
        self.query_one("#train-resume", Button).disabled = running or not resumable

    # ------------------------------------------------------------------ launch / stop / resume

    @on(Button.Pressed, "#train-start")
    def action_start(self) -> None:
        if self.running:
            return
        form = self.form()
        try:
            args = train_args(form)
        except UserError as exc:
            self.set_status(f"✗ {exc}")
            return
        typed = form["run_dir"].strip()
        picked = not typed or typed == self.picked_run_dir
        run_dir = Path(default_run_dir(form) if picked else typed).expanduser()
        if rundir.is_run_dir(run_dir):
            self.set_status(f"✗ run dir {run_dir} already holds a run: press resume to continue it, or pick another")
            self.run_dir = run_dir
            self.buttons()
            return
        self.query_one("#train-run_dir", Input).value = str(run_dir)
        self.picked_run_dir = str(run_dir) if picked else None
        self._launch(args + ["--run-dir", str(run_dir)], run_dir, resume=False)

    @on(Button.Pressed, "#train-resume")
    def action_resume(self) -> None:
        if self.running or self.run_dir is None:
            return
        form = self.form()
        args = ["--resume", "--run-dir", str(self.run_dir)]
        try:  # what a resume may change: the budget, the device, the threads (train_config.RESUME_MAY_CHANGE)
            for name in ("steps", "threads", "log_every", "eval_every", "ckpt_every"):
                if form[name].strip():
                    args += [_flag(name), str(grammar(name)(form[name].strip(), name.replace("_", " ")))]
            if form["hours"].strip():
                args += ["--hours", repr(inputs.hours(form["hours"].strip(), "hours"))]
        except UserError as exc:
            self.set_status(f"✗ {exc}")
            return
        if form["device"] != "auto":
            args += ["--device", form["device"]]
        self._launch(args, self.run_dir, resume=True)

    def _launch(self, args: list[str], run_dir: Path, resume: bool) -> None:
        self.run_dir = run_dir
        proc = self.start_child(python_module("engine.runtime.train.loop", *args))
        if not resume or self.view.run_dir != run_dir:
            self.view.attach(run_dir)
        self.set_status(f"{'resuming' if resume else 'starting'} (pid {proc.pid}): {run_dir}")
        self.buttons()

    @on(Button.Pressed, "#train-stop")
    def action_stop(self) -> None:
        done = self.stop_child()
        if done == "force-stopped":
            self.set_status("force-stopped (SIGKILL): the run keeps its newest checkpoint")
        elif done == "stopping":
            self.set_status("stopping: finishing the step, writing a checkpoint (stop again to force)")
        self.buttons()

    def child_line(self, line: str) -> None:
        if line.strip():
            self.last_line = line.strip()
            if not self.stopping:
                self.set_status(self.last_line)

    def child_exited(self, returncode: int, last_lines: list[str]) -> None:
        self.exits.append(returncode)
        # a stop the user asked for ends 128 + the signal (130 SIGINT / 143 SIGTERM) after its checkpoint
        stopped = self.stopping and returncode in (128 + signal.SIGINT, 128 + signal.SIGTERM)
        if stopped:
            # Not the trainer's own line: it tells a CLI user which flag continues the run. (The step
            # it stopped at is in the events pane, from the end event.)
            self.set_status(f"stopped, checkpoint written: {self.resume_hint()}")
            return
        if returncode == 0:
            self.set_status(f"done: {end_summary_text(last_lines) or self.last_line}")
            return
        why = self.end_reason(returncode)
        if self.stop_reason == "force-stopped":
            self.set_status(f"trainer {why}: the run keeps its newest checkpoint")
            self.view.mark_failed_start(why)
            return
        detail = next((l for l in reversed(last_lines) if "error" in l.lower()), self.last_line)
        self.set_status(f"✗ trainer {why}: {detail}")
        self.view.mark_failed_start(f"trainer {why}: {detail}")  # the run line said 'not started' for ever
        # The status wraps to 3 lines; a long message is also a notification, which shows it whole.
        self.app.notify(detail, title=f"trainer {why}", severity="error", timeout=15)

    # ------------------------------------------------------------------ helpers

    def resume_hint(self) -> str:
        """How a user of this tab continues a stopped run: its resume button and key."""
        key = next(key_text(b) for b in self.BINDINGS if b.action == "resume")
        return f"press resume ({key}) to continue it"

    def action_toggle_x(self) -> None:
        loss = self.view.charts["loss"]
        self.view.set_x_key("tokens" if loss.x_key == "step" else "step")

    @on(Button.Pressed, "#train-from-plan")
    def action_from_plan(self) -> None:
        """The Plan tab's current model into the model field (a built-in name, else a TOML file of it)."""
        try:
            plan = self.app.query_one("#plan-tab").current
        except NoMatches:  # not built (not visited) or not in this build
            plan = None
        if plan is None:
            self.set_status("✗ no computed plan yet (Plan tab)")
            return
        spec = plan.model
        from engine.specs import load_model

        try:
            same = load_model(spec.name) == spec
        except UserError:
            same = False
        if same:
            value = spec.name
        else:
            import tomli_w

            from engine.atomic import write_atomic

            value = str(write_atomic(Path("runs") / "models" / f"{spec.name}.toml",
                                     tomli_w.dumps({k: v for k, v in spec.to_dict().items() if v is not None})))
        self.query_one("#train-model", Input).value = value
        self.query_one("#train-depth", Input).value = ""
        self.set_status(f"model {spec.name} from the plan ({plan.hardware.name}); a large model needs a GPU that fits it")

    @on(Button.Pressed, "#train-from-bands")
    def action_from_bands(self) -> None:
        """The Bands tab's highlighted row (the recommended depth unless the user moved the cursor):
        its depth and sequence length into the form, as a nanochat-style band model (--depth)."""
        from textual.widgets import DataTable

        try:
            bands = self.app.query_one("#bands-tab")
            table = bands.query_one("#bands-table", DataTable)
        except NoMatches:  # not in this build, or not visited yet (tabs are built on first visit)
            self.set_status("✗ no Bands table yet: open the Bands tab and pick a row first")
            return
        result = getattr(bands, "result", None)
        if not result or not table.row_count:
            self.set_status("✗ the Bands tab has no table yet")
            return
        if bands.stale:
            self.set_status("✗ the Bands table is dimmed: its inputs are wrong or refused; fix them first")
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        row = next((r for r in result.rows if str(r.depth) == key), None)  # an engine.sizing.bands_result.DepthRow
        if row is None:
            self.set_status("✗ no Bands row highlighted")
            return
        self.query_one("#train-model", Input).value = ""
        self.query_one("#train-depth", Input).value = str(row.depth)
        self.query_one("#train-seq", Input).value = str(row.seq_len)
        self.set_status(f"band d{row.depth} ({row.band}, {row.params:,} params at vocab {result.shape.vocab_size:,}; "
                        f"trained here with the byte tokenizer, vocab 256) at seq {row.seq_len}")
