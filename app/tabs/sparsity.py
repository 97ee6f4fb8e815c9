"""The Sparsity tab: run the sparsity lab on a run / checkpoint / HF dir and watch it fill in.

Start runs `lsdt sparsity STAGE --model SRC --out DIR ...` as a child process (app/child.py, as the
Probe and Train tabs do); a worker reads its output lines (the status line shows the last). The
artifact directory is the contract: a 2 Hz timer re-reads what exists of it
(engine.runtime.sparsity.artifacts.read_artifact, torch-free) and draws

    per-layer active fraction (bars) with frac / pr / dead in a table
    the SAE training curves (validation MSE, L0, explained variance) of every layer and L1, live
    an SI histogram of the neurons with the shuffled-label null beside it, and Q
    perplexity against k with the +- std band, tokens/s and the FLOP reduction

The tab never imports torch: the child does the work.
"""

from __future__ import annotations

import time
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from engine.errors import UserError
from engine.runtime.sparsity.artifacts import DEFAULT_ROOT, read_artifact, si_histogram

from app.child import python_module
from app.tabs.child_tab import ChildProcessTab
from app.widgets.form_field import FieldInput
from app.widgets.live_chart import BarChart, LiveChart

OWNER = "sparsity"
STAGE_CHOICES = ("run", "capture", "sae", "si", "dynamic-k")
POLL_S = 0.5  # artifact re-read period (DESIGN.md: charts at 2-4 Hz)


def default_out() -> str:
    return str(Path(DEFAULT_ROOT) / f"{time.strftime('%Y%m%d_%H%M%S')}-tui")


def sparsity_command(form: dict) -> list[str]:
    """The `lsdt sparsity` command line for the form (UserError names an empty field)."""
    for name in ("model", "out"):
        if not form.get(name, "").strip():
            raise UserError(f"{name}: empty; accepted: " + ("an `lsdt train` run dir, an MoE run dir or a Hugging Face dir"
                                                             if name == "model" else "a new directory for the artifact"))
    args = ["sparsity", form["stage"], "--model", form["model"].strip(), "--out", form["out"].strip(),
            "--tasks", form.get("tasks", "").strip() or "builtin", "--layers", form.get("layers", "").strip() or "auto",
            "--device", form["device"]]
    for flag, name in (("--max-tokens", "max_tokens"), ("--sae-steps", "sae_steps"), ("--k", "k")):
        value = form.get(name, "").strip()
        if value and (form["stage"] in ("run", "sae") or name != "sae_steps") and (form["stage"] in ("run", "dynamic-k") or name != "k"):
            args += [flag, value]
    return python_module("engine.cli", *args)


def _f(row: dict, key: str) -> float | None:
    try:
        return float(row[key])
    except (KeyError, TypeError, ValueError):
        return None


def _cell(row: dict, key: str, spec: str = ".3f") -> str:
    v = _f(row, key)
    return "n/a" if v is None else format(v, spec)


def _g(value) -> str:
    """A CSV number in 3 significant digits (the SI line showed 0.0037427151 and ran off the screen)."""
    try:
        return f"{float(value):.3g}"
    except (TypeError, ValueError):
        return str(value)


class SparsityTab(ChildProcessTab):
    OWNER, STATUS_ID = OWNER, "sp-status"
    ON_UNMOUNT = "kill"  # an interrupted run removes its unfinished artifact anyway
    BINDINGS = [
        Binding("ctrl+r", "start", "run", tooltip="run the chosen stage(s) as a child process into a new artifact"),
        Binding("ctrl+t", "stop", "stop", tooltip="stop the run (its unfinished artifact is removed); again: kill"),
    ]
    DEFAULT_CSS = """
    SparsityTab { layout: vertical; }
    SparsityTab #sp-form { height: auto; layout: grid; grid-size: 5; grid-rows: auto; grid-gutter: 0 1; }
    SparsityTab .sp-field { width: 1fr; height: auto; }
    SparsityTab .sp-field FieldInput, SparsityTab .sp-field Select { width: 100%; }
    SparsityTab .sp-field Label { color: $text-muted; }
    SparsityTab #sp-actions { height: 1; }
    SparsityTab #sp-actions Button { margin-right: 1; min-width: 0; width: auto; }
    SparsityTab #sp-status { width: 1fr; height: 1; padding: 0 1; }
    SparsityTab #sp-main { height: 1fr; }
    SparsityTab .sp-col { width: 1fr; height: 1fr; }
    SparsityTab DataTable { height: auto; max-height: 9; }
    SparsityTab #sp-frac, SparsityTab #sp-sae, SparsityTab #sp-si, SparsityTab #sp-kchart { height: 1fr; min-height: 6; }
    SparsityTab #sp-q { height: 1; }
    """

    # (field, label, default); the form is a grid (5 columns, 3 below 100 columns) so nothing is cut at 80
    FIELDS = (("model", "model path", ""), ("tasks", "tasks", "builtin"), ("layers", "layers", "auto"),
              ("max_tokens", "tokens/task", "8192"), ("sae_steps", "SAE steps", "2000"), ("k", "k sweep", "0.1,0.2,0.3,0.5,0.7,1.0"))

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.out_path: Path | None = None
        self.view: dict = {}
        self._drawn: dict[str, int] = {}

    def compose(self) -> ComposeResult:
        with Horizontal(id="sp-form"):
            for name, label, value in self.FIELDS:
                with Vertical(classes="sp-field"):
                    yield Label(label)
                    yield FieldInput(value, id=f"sp-{name}", compact=True)
            with Vertical(classes="sp-field"):
                yield Label("stage")
                yield Select([(s, s) for s in STAGE_CHOICES], value="run", allow_blank=False, compact=True, id="sp-stage")
            with Vertical(classes="sp-field"):
                yield Label("device")
                yield Select([(d, d) for d in ("auto", "cpu", "cuda")], value="auto", allow_blank=False, compact=True, id="sp-device")
            with Vertical(classes="sp-field"):
                yield Label("artifact")
                yield FieldInput(default_out(), id="sp-out", compact=True)
        with Horizontal(id="sp-actions"):
            yield Button("run", id="sp-start", variant="primary", compact=True)
            yield Button("stop", id="sp-stop", variant="error", compact=True, disabled=True)
            yield Static("pick a model and press ctrl+r", id="sp-status", markup=False)
        with Horizontal(id="sp-main"):
            with Vertical(classes="sp-col"):
                layers = DataTable(id="sp-layertable", zebra_stripes=True, cursor_type="row")
                layers.add_columns("layer", "width", "frac", "pr", "dead")
                yield layers
                yield BarChart("active fraction per layer", "frac", id="sp-frac")
                yield LiveChart("SAE validation (per layer, L1)", ("step",), id="sp-sae", empty="waiting for the sae stage")
            with Vertical(classes="sp-col"):
                yield Static("", id="sp-q", markup=False)
                yield BarChart("neuron SI histogram (real | null)", "units", id="sp-si")
                k_table = DataTable(id="sp-ktable", zebra_stripes=True, cursor_type="row")
                k_table.add_columns("k", "perplexity", "tok/s", "FLOPs saved", "Δ ppl")
                yield k_table
                yield LiveChart("perplexity vs k (± std)", ("k",), id="sp-kchart", empty="waiting for the dynamic-k stage")

    def on_mount(self) -> None:
        self.focus_at_start_up(self.first_field())
        self.set_interval(POLL_S, self.refresh_view, name="sparsity-poll")

    def first_field(self):
        return self.query_one("#sp-model", Input)

    def on_show(self) -> None:
        self.focus_when_shown(self.first_field())

    # ------------------------------------------------------------------ state

    def form(self) -> dict:
        values = {name: self.query_one(f"#sp-{name}", Input).value for name, *_ in self.FIELDS}
        values["stage"] = str(self.query_one("#sp-stage", Select).value)
        values["device"] = str(self.query_one("#sp-device", Select).value)
        values["out"] = self.query_one("#sp-out", Input).value
        return values

    def buttons(self) -> None:
        self.query_one("#sp-start", Button).disabled = self.running
        self.query_one("#sp-stop", Button).disabled = not self.running

    # ------------------------------------------------------------------ run / stop

    @on(Button.Pressed, "#sp-start")
    def action_start(self) -> None:
        if self.running:
            return
        form = self.form()
        out = Path(form["out"].strip()).expanduser() if form["out"].strip() else None
        if out is not None and out.exists():  # the last run's default: a new run gets a fresh one
            self.query_one("#sp-out", Input).value = form["out"] = default_out()
            out = Path(form["out"])
        try:
            cmd = sparsity_command(form)
        except UserError as exc:
            self.set_status(f"✗ {exc}")
            return
        self.out_path, self.view, self._drawn = out, {}, {}  # start_child resets last_line
        self._clear()
        proc = self.start_child(cmd)
        self.set_status(f"lsdt sparsity {form['stage']} started (pid {proc.pid}) · writing {out}")
        self.buttons()

    @on(Button.Pressed, "#sp-stop")
    def action_stop(self) -> None:
        state = self.stop_child()
        if state == "stopping":
            self.set_status("stopping: the unfinished artifact is removed (stop again to kill)")
        elif state == "force-stopped":
            self.set_status("force-stopped: the unfinished artifact may be left behind")

    def child_line(self, line: str) -> None:
        line = line.strip()
        if line.startswith(("lsdt sparsity: ", "lsdt: ")):  # progress and errors (stderr); stdout is the result table
            self.last_line = line.removeprefix("lsdt sparsity: ")
            if self.running:
                self.set_status(self.last_line)

    def child_exited(self, returncode: int, last_lines: list[str]) -> None:
        self.refresh_view()
        if returncode == 0:
            self.set_status(f"done · artifact {self.out_path}")
            return
        why = self.end_reason(returncode)
        if self.stop_reason is not None:  # the user's own stop is no failure
            self.set_status(f"sparsity run {why}")
            return
        tail = self.last_line or (last_lines[-1] if last_lines else "")
        self.set_status(f"✗ {why}: {tail}".rstrip(": "))
        if tail:
            self.app.notify(tail, title=f"sparsity {why}", severity="error", timeout=15)

    # ------------------------------------------------------------------ the view

    def _clear(self) -> None:
        for table in ("#sp-layertable", "#sp-ktable"):
            self.query_one(table, DataTable).clear()
        for chart in ("#sp-frac", "#sp-si"):
            self.query_one(chart, BarChart).clear_bars()
        for chart in ("#sp-sae", "#sp-kchart"):
            self.query_one(chart, LiveChart).reset()
        self.query_one("#sp-q", Static).update("")

    def show_artifact(self, path: str | Path) -> None:
        """Display an existing artifact (also what the timer does for the one being written)."""
        self.out_path, self.view, self._drawn = Path(path), {}, {}
        self._clear()
        self.refresh_view()

    def refresh_view(self) -> None:
        if self.out_path is None or not self.out_path.is_dir() or not self.is_mounted:
            return
        try:
            view = read_artifact(self.out_path)
        except (OSError, ValueError):
            return  # a file mid-rename: the next tick reads it
        self.view = view
        self._layers(view["sparsity"])
        self._sae(view["sae_curves"])
        self._si(view["si"], view["si_units"])
        self._k(view["dynamic_k"])

    def _changed(self, key: str, rows) -> bool:
        n = len(rows) if not isinstance(rows, dict) else sum(len(v) for v in rows.values())
        if self._drawn.get(key) == n:
            return False
        self._drawn[key] = n
        return True

    def _layers(self, rows: list[dict]) -> None:
        if not self._changed("layers", rows):
            return
        table = self.query_one("#sp-layertable", DataTable)
        table.clear()
        chart = self.query_one("#sp-frac", BarChart)
        chart.clear_bars()
        for r in rows:
            table.add_row(r["layer"], r["width"], _cell(r, "frac"), _cell(r, "pr", ".1f"), _cell(r, "dead"))
            chart.set_bar(r["layer"], _f(r, "frac"))

    def _sae(self, curves: dict) -> None:
        if not self._changed("sae", curves):
            return
        chart = self.query_one("#sp-sae", LiveChart)
        chart.reset()
        for run, records in curves.items():
            for rec in records:
                x = {"step": rec.get("step")}
                chart.append(f"{run} EV", x, rec.get("explained_variance"))
                chart.append(f"{run} val MSE", x, rec.get("val_mse"))
        last = {run: recs[-1] for run, recs in curves.items() if recs}
        if last:
            chart.title = "SAE validation: " + "; ".join(
                f"{run} L0 {r.get('l0', 0):.0f}" for run, r in list(last.items())[-3:])

    def _si(self, rows: list[dict], units: list[dict]) -> None:
        if not self._changed("si", units):
            return
        real, null = si_histogram(units, "neuron")
        chart = self.query_one("#sp-si", BarChart)
        chart.clear_bars()
        for i, (a, b) in enumerate(zip(real, null)):
            chart.set_bar(f"{i / 10:.1f}", a)
            chart.set_bar(f"{i / 10:.1f}n", b)
        alls = [r for r in rows if r.get("task") == "all" and r.get("unit") == "neuron"]
        self.query_one("#sp-q", Static).update(" · ".join(
            f"layer {r['layer']}: SI {_g(r['SI'])} vs null {_g(r['SI_null'])}, Q {_g(r['Q'])} ({r['n_communities']} communities)"
            for r in alls[:3]))

    def _k(self, rows: list[dict]) -> None:
        if not self._changed("k", rows):
            return
        table = self.query_one("#sp-ktable", DataTable)
        table.clear()
        chart = self.query_one("#sp-kchart", LiveChart)
        chart.reset()
        for r in rows:
            k, ppl, std = _f(r, "k"), _f(r, "perplexity"), _f(r, "perplexity_std") or 0.0
            table.add_row(r["k"], f"{_cell(r, 'perplexity', '.3f')} ± {_cell(r, 'perplexity_std', '.3f')}",
                          f"{_cell(r, 'tokens_per_sec', ',.0f')} ± {_cell(r, 'tokens_per_sec_std', ',.0f')}",
                          "n/a" if _f(r, "flops_reduction") is None else f"{100 * _f(r, 'flops_reduction'):.1f}%",
                          "n/a" if _f(r, "quality_delta") is None else f"{100 * _f(r, 'quality_delta'):+.2f}%")
            if k is not None and ppl is not None:
                chart.append("perplexity", {"k": k}, ppl)
                chart.append("+std", {"k": k}, ppl + std)
                chart.append("-std", {"k": k}, ppl - std)
