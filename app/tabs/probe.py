"""The Probe tab: measure this machine (tok/s, peak VRAM, MFU per depth x sequence length).

Start runs `lsdt probe --jsonl --out FILE` as a child process (app/child.py); a worker reads its
JSON lines and posts them; the table fills as each config finishes (ok, oom or error), with a bar
chart of what each config would train in 24 h. "Use in plan" re-reads the saved file through the
engine's own checker (engine.sizing.bands.read_probe) and hands it to `LsdtApp.adopt_probe`, which
keeps it as `app.adopted_probe` and posts `ProbeAdopted` to every built tab; the Plan tab (η compute
from the median MFU) and the Bands tab (measured tok/s) each handle it themselves (app/adoption.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from engine import fmt
from engine import inputs
from engine.errors import UserError
from engine.runtime.probe.runner import parse_int_list

from app.adoption import ProbeAdopted, ProbeAdoption, adoption_from_file  # noqa: F401 (re-exported)
from app.child import python_module
from app.tabs.child_tab import ChildProcessTab
from app.widgets.form_field import FieldInput
from app.widgets.live_chart import BarChart

WINDOW_S = 24 * 3600.0  # the "what fits in a day" window of the Bands tab and the 4090-in-24h question
OWNER = "probe"


def probe_command(form: dict) -> list[str]:
    """The `lsdt probe` command line for the form's values (validated; UserError names the field)."""
    depths = parse_int_list(form["depths"], "depths")
    seqs = parse_int_list(form["seqs"], "seq lengths")

    def num(name: str) -> int:
        return inputs.positive_int(form[name], name.replace("_", " "))

    args = ["probe", "--jsonl", "--depths", ",".join(map(str, depths)), "--seqs", ",".join(map(str, seqs)),
            "--steps", str(num("steps")), "--warmup", str(inputs.non_negative_int(form["warmup"] or "0", "warmup")), "--device", form["device"],
            "--vocab", str(num("vocab")), "--head-dim", str(num("head_dim"))]
    if form.get("max_batch", "").strip():
        args += ["--max-batch", str(num("max_batch"))]
    if not form.get("out", "").strip():
        raise UserError("out: empty; accepted: a path for the probe JSON, e.g. probes/probe.json")
    args += ["--out", form["out"].strip()]
    return python_module("engine.cli", *args)


def default_out() -> str:
    return str(Path("probes") / f"probe-{time.strftime('%Y%m%d-%H%M%S')}.json")


def _mem(row: dict) -> str:
    if row.get("peak_vram_bytes") is not None:
        return fmt.gb(row["peak_vram_bytes"], 2)
    if row.get("peak_rss_bytes") is not None:
        return f"{fmt.gb(row['peak_rss_bytes'], 2)} RSS"
    return "n/a"


def table_row(row: dict) -> tuple:
    ok = row.get("status") == "ok"
    tps = row.get("tok_per_s")
    return (
        row["depth"], row["seq_len"], row.get("device_batch") or "-", row.get("grad_accum") or "-",
        fmt.si(tps, "tok/s") if ok else "-",
        fmt.duration(row.get("step_time_s")) if ok else "-",
        _mem(row) if ok else "-",
        fmt.pct(row.get("mfu")),
        fmt.count(tps * WINDOW_S) if ok and tps else "-",
        row.get("status", "?") if ok else f"{row.get('status')}: {row.get('error', '')}"[:60],
    )


COLUMNS = ("depth", "seq", "batch", "accum", "tok/s", "step", "peak mem", "MFU", "24 h tokens", "status")


class ProbeTab(ChildProcessTab):
    OWNER, STATUS_ID = OWNER, "probe-status"
    ON_UNMOUNT = "kill"  # a sweep has no state worth a graceful stop; its file holds finished configs
    BINDINGS = [
        Binding("ctrl+r", "start", "run sweep", tooltip="start the probe sweep (`lsdt probe --jsonl --out FILE` in a child process)"),
        Binding("ctrl+t", "stop", "stop", tooltip="stop the sweep (finished configs stay in the file)"),
        Binding("ctrl+y", "use", "use in plan", tooltip="use the saved probe: its MFU and GEMM efficiency in Plan (η seed, η gemm), its tok/s in Bands"),
    ]
    DEFAULT_CSS = """
    ProbeTab { layout: vertical; }
    ProbeTab #probe-form { height: auto; }
    ProbeTab .probe-field { width: auto; height: auto; margin-right: 1; }
    ProbeTab .probe-field Label { color: $text-muted; }
    ProbeTab #probe-out-row { height: 1; }
    ProbeTab #probe-out-row Label { width: auto; padding: 0 1 0 0; color: $text-muted; }
    ProbeTab #probe-out-row Select { margin-right: 2; }
    ProbeTab #probe-out { width: 1fr; }
    ProbeTab #probe-device { width: 10; }
    ProbeTab #probe-actions { height: auto; }
    ProbeTab #probe-actions Button { margin-right: 1; min-width: 0; width: auto; }
    /* The status wraps (up to 3 lines): a sweep's error or the saved path is never cut. */
    ProbeTab #probe-status { width: 1fr; height: auto; max-height: 3; padding: 0 1; }
    ProbeTab #probe-main { height: 1fr; }
    ProbeTab #probe-table { width: auto; max-width: 75%; height: 1fr; }
    ProbeTab #probe-chart { width: 1fr; min-width: 24; height: 1fr; margin-left: 1; }
    """

    # (field, label, default, width); defaults are `lsdt probe`'s (the seed's M0 grid)
    FIELDS = (("depths", "depths", "12,14,16,18,20", 15), ("seqs", "seq lengths", "512,1024,2048", 14),
              ("steps", "steps", "30", 6), ("warmup", "warm-up", "5", 7), ("vocab", "vocab", "65536", 7),
              ("head_dim", "head dim", "128", 8), ("max_batch", "max batch", "", 9))

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: list[dict] = []
        self.total = 0
        self.out_path: Path | None = None
        self.done = False
        self.adoption: ProbeAdoption | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="probe-form"):
            for name, label, value, width in self.FIELDS:
                with Vertical(classes="probe-field"):
                    yield Label(label)
                    field = FieldInput(value, id=f"probe-{name}", compact=True)
                    field.styles.width = width
                    yield field
        with Horizontal(id="probe-out-row"):  # a row of its own: the whole path shows at 80 columns
            yield Label("device")
            yield Select([(d, d) for d in ("auto", "cuda", "cpu")], value="auto", allow_blank=False,
                         compact=True, id="probe-device")
            yield Label("save to")
            self.picked_out = default_out()  # this tab's own default (a path typed over it is the user's)
            yield FieldInput(self.picked_out, id="probe-out", compact=True)
        with Horizontal(id="probe-actions"):
            yield Button("run probe", id="probe-start", variant="primary", compact=True)
            yield Button("stop", id="probe-stop", variant="error", compact=True, disabled=True)
            yield Button("use in plan", id="probe-use", variant="success", compact=True, disabled=True)
        # Its own row, the full width: beside the buttons (44 columns at 80) the saved path was cut.
        yield Static("each config runs in its own process · ctrl+r run sweep", id="probe-status", markup=False)
        with Horizontal(id="probe-main"):
            table = DataTable(id="probe-table", zebra_stripes=True, cursor_type="row")
            table.add_columns(*COLUMNS)
            yield table
            yield BarChart("tokens in 24 h", "tokens", id="probe-chart")

    def on_mount(self) -> None:
        self.focus_at_start_up(self.first_field())
        # A sign of life while a config runs: a config prints nothing until it is done, and the
        # first includes torch's start-up (~1 min for d12 on a loaded 2-core CPU): the status
        # counts the sweep's seconds after what it last said.
        self.set_interval(1.0, self._tick, name="probe-elapsed")

    _said = ""  # the status the counter is appended to ("" = nothing running)
    _started = 0.0

    def say_running(self, text: str) -> None:
        self._said = text
        self._tick()

    def _tick(self) -> None:
        if self._said and self.running:
            self.set_status(f"{self._said} · {int(time.monotonic() - self._started)} s")

    def first_field(self):
        return self.query_one("#probe-depths", Input)

    def on_show(self) -> None:
        self.focus_when_shown(self.first_field())

    # ------------------------------------------------------------------ state

    def form(self) -> dict:
        values = {name: self.query_one(f"#probe-{name}", Input).value for name, *_ in self.FIELDS}
        values["device"] = str(self.query_one("#probe-device", Select).value)
        values["out"] = self.query_one("#probe-out", Input).value
        return values

    def buttons(self) -> None:
        self.query_one("#probe-start", Button).disabled = self.running
        self.query_one("#probe-stop", Button).disabled = not self.running
        ok = any(r.get("status") == "ok" for r in self.rows)
        self.query_one("#probe-use", Button).disabled = self.running or not ok or self.out_path is None

    # ------------------------------------------------------------------ run / stop

    @on(Button.Pressed, "#probe-start")
    def action_start(self) -> None:
        if self.running:
            return
        try:
            cmd = probe_command(self.form())
        except UserError as exc:
            self.set_status(f"✗ {exc}")
            return
        out = Path(self.form()["out"].strip()).expanduser()
        if self.form()["out"].strip() == self.picked_out and out.exists():
            # A sweep already wrote this tab's default file (maybe adopted with "use in plan"): a
            # new sweep gets a new default, not a silent overwrite. A path the user typed is theirs.
            self.picked_out = default_out()
            self.query_one("#probe-out", Input).value = self.picked_out
            out = Path(self.picked_out)
            cmd = probe_command(self.form())
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.set_status(f"✗ save to {out}: cannot create its folder ({exc.strerror})")
            return
        self.rows, self.total, self.done, self.out_path, self.last_line = [], 0, False, out, ""
        self.query_one("#probe-table", DataTable).clear()
        self.query_one("#probe-chart", BarChart).clear_bars()
        proc = self.start_child(cmd)
        self._started = time.monotonic()
        self.say_running(f"probe started (pid {proc.pid}); the first config includes torch's start-up")
        self.buttons()

    @on(Button.Pressed, "#probe-stop")
    def action_stop(self) -> None:
        if self.stop_child(force_on_second=False):
            self.say_running("stopping: the running config is killed, finished ones stay in the file")

    def child_line(self, line: str) -> None:
        if not line.startswith("{"):
            self.last_line = line.strip() or self.last_line
            return
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            return
        kind = event.get("event")
        if kind == "start":
            self.total = event.get("total", 0)
            self.say_running(f"running {self.total} config{'s' * (self.total != 1)} (device {self.form()['device']}) · writing {self.out_path}")
        elif kind == "result":
            self._add_row(event["result"], event.get("index", len(self.rows)), event.get("total", self.total))
        elif kind == "done":
            self.done, self._said = True, ""
            c = event.get("counts", {})
            hw = event.get("hardware") or "no hardware profile matched: MFU n/a"
            self.set_status(f"done on {event.get('device')} ({hw}): {c.get('ok', 0)} ok, {c.get('oom', 0)} oom, "
                            f"{c.get('error', 0)} error in {fmt.duration(event.get('wall_s'))} · saved {self.out_path}")
        elif kind == "error":
            self._said = ""
            self.set_status(f"✗ {event.get('message')}")

    def _add_row(self, row: dict, index: int, total: int) -> None:
        self.rows.append(row)
        self.query_one("#probe-table", DataTable).add_row(*table_row(row))
        if row.get("status") == "ok" and row.get("tok_per_s"):
            self.query_one("#probe-chart", BarChart).set_bar(f"d{row['depth']}/{row['seq_len']}", row["tok_per_s"] * WINDOW_S)
        self.say_running(f"[{index + 1}/{total}] d{row['depth']} seq {row['seq_len']}: {row.get('status')} · writing {self.out_path}")
        self.buttons()

    def child_exited(self, returncode: int, last_lines: list[str]) -> None:
        self._said = ""
        if returncode != 0 and not self.done:
            user_stop = returncode == 130 or self.stop_reason is not None
            why = "stopped" if returncode == 130 else self.end_reason(returncode)
            tail = self.last_line or (last_lines[-1] if last_lines else "")
            saved = f" · {len(self.rows)} config(s) saved in {self.out_path}" if self.rows else ""
            if user_stop:  # the user's own stop is no failure: no ✗, no CLI line ("lsdt: interrupted")
                self.set_status(f"probe {why}{saved}")
            else:
                self.set_status(f"✗ probe {why}: {tail}".rstrip(": ") + saved)
            if not user_stop:
                self._notify_error(f"probe {why}", tail)

    def _notify_error(self, title: str, text: str) -> None:
        """The status line is one row: at 100 columns it cut an error before its reason. The
        notification wraps it whole."""
        if text:
            self.app.notify(text, title=title, severity="error", timeout=15)

    # ------------------------------------------------------------------ use in plan

    @on(Button.Pressed, "#probe-use")
    def action_use(self) -> None:
        if self.out_path is None or self.running:
            return
        try:
            adoption = adoption_from_file(self.out_path)
        except UserError as exc:
            self.set_status(f"✗ {exc}")
            return
        self.adopt(adoption)

    def adopt(self, adoption: ProbeAdoption) -> None:
        """Hand a measured probe to the app, which keeps it and tells every other tab; each tab owns
        its reaction (the Plan tab's η compute, the Bands tab's measured tok/s)."""
        self.adoption = adoption
        self.app.adopt_probe(adoption)
        mfu = "n/a (no hardware profile matched this device)" if adoption.mfu is None else fmt.pct(adoption.mfu)
        self.set_status(f"using {adoption.path} ({adoption.device}): median MFU {mfu} → sent to the Plan and Bands tabs")
