"""The Quantize tab: checkpoint -> INT8 (calibrated) -> sealed .s7l -> verified, and verify any .s7l.

Every step is the CLI a user would type, run as a subprocess by a thread worker and read line by
line (DESIGN.md: a crash there never takes the UI down, and the tab never imports torch):

    a dense checkpoint (run dir or step_*.pt):  lsdt quantize CKPT --out QDIR --calib N --json
                                                lsdt seal QDIR --out FILE --json
                                                lsdt verify FILE --json
    a MoE run directory (holds moe.toml):       lsdt moe pipeline --resume --run-dir DIR --json
                                                (trained phases are kept; quantize + seal + verify run,
                                                per-domain perplexity; the artifact is DIR/model.s7l)

Workers post messages (Progress, Finished); the handlers here own every widget. Each worker has a
group and exit_on_error=False; a running subprocess is terminated when the tab unmounts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from rich.table import Table
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Static
from textual.worker import get_current_worker

from app.tabs.base import LsdtTab
from app.widgets.form_field import FieldInput
from app.widgets.wrap_log import WrapLog

STARTING = "starting python + torch in a subprocess"  # what the first ~20 s of a run are
MOE_CONFIG = "moe.toml"  # engine/runtime/moe_config.CONFIG_FILE (not imported: that module pulls in the engine's runtime)
LOG_LINES = 200  # the progress log is bounded (a long run must not grow the UI's memory)
# `lsdt moe pipeline` progress lines -> the share of the run done when they appear (the phases' rough
# shares of a --tiny pipeline's wall time, docs/moe-training.md: trunk ~50 %, experts ~25 %, phase 3 ~20 %)
MOE_STAGES = (("pipeline: phase 1", 0.02), ("pipeline: phase 2", 0.5), ("pipeline: phase 3: quantize", 0.75),
              ("pipeline: phase 3: sealed", 0.95), ("pipeline: phase 3: verify", 0.98))


class Progress(Message):
    """A step started or printed a line; `fraction` in [0, 1] when the step count is known."""

    def __init__(self, line: str, fraction: float | None = None) -> None:
        super().__init__()
        self.line, self.fraction = line, fraction


class Finished(Message):
    """A quantize/seal/verify or verify-only run ended: `result` (merged JSON) or `error` (one line)."""

    def __init__(self, kind: str, result: dict | None, error: str | None = None) -> None:
        super().__init__()
        self.kind, self.result, self.error = kind, result, error


def _lsdt(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine.cli", *args]


def plan_steps(ckpt: str, out: str, calib: int) -> tuple[str, list[tuple[str, list[str]]]]:
    """(kind, [(step name, argv), ...]) for a checkpoint path; ValueError with one line if unusable.
    Paths are made absolute here: they are typed relative to the TUI's directory, and the CLI steps
    run in the repository's."""
    path = Path(ckpt).expanduser().absolute()
    if not ckpt.strip():
        raise ValueError("pick a checkpoint: a run directory, a checkpoints/step_*.pt file or a MoE run directory")
    if not path.exists():
        raise ValueError(f"{ckpt}: no such file or directory")
    if path.is_dir() and (path / MOE_CONFIG).is_file():
        return "moe", [("moe pipeline (quantize + seal + verify)",
                        _lsdt("moe", "pipeline", "--resume", "--run-dir", str(path), "--json", "--calib", str(calib)))]
    base = path if path.is_dir() else path.parent.parent if path.parent.name == "checkpoints" else path.parent
    target = Path(out).expanduser().absolute() if out.strip() else base / "model.s7l"
    qdir = target.with_name(target.stem + ".quant")
    return "dense", [
        ("quantize", _lsdt("quantize", str(path), "--out", str(qdir), "--calib", str(calib), "--json")),
        ("seal", _lsdt("seal", str(qdir), "--out", str(target), "--json")),
        ("verify", _lsdt("verify", str(target), "--json")),
    ]


class QuantizeTab(LsdtTab):
    BINDINGS = [
        Binding("ctrl+r", "quantize", "export .s7l",
                tooltip="export the checkpoint: quantize to INT8, seal as .s7l, verify (Enter in checkpoint, out or calib)"),
        Binding("ctrl+y", "verify", "verify file", tooltip="verify the .s7l file named in the verify field (Enter there)"),
    ]
    DEFAULT_CSS = """
    QuantizeTab { layout: vertical; height: 1fr; }
    QuantizeTab #q-form { height: auto; padding: 0 1; }
    /* One line per row (compact fields): at 80x24 the three-line boxes left no room for results. */
    QuantizeTab .q-row { height: 1; }
    QuantizeTab .q-label { width: 12; color: $text-muted; }
    QuantizeTab .q-label-short { width: auto; padding: 0 1; color: $text-muted; }
    QuantizeTab #q-ckpt, QuantizeTab #q-file { width: 1fr; }
    QuantizeTab #q-out { width: 1fr; }
    QuantizeTab #q-calib { width: 6; }
    QuantizeTab Button { margin-left: 1; }
    QuantizeTab #q-progress { height: 1; padding: 0 1; }
    QuantizeTab #q-body { height: 1fr; }
    /* Two halves. The per-tensor table puts its numbers first and the tensor name last, so a long
       name scrolls sideways and never hides a number; the side panel wraps (paths, the Merkle root,
       the checks' details) and scrolls down: a fixed column width cut them at 140 columns. */
    QuantizeTab #q-errors { width: 1fr; }
    QuantizeTab #q-error-table { height: 1fr; }
    QuantizeTab #q-side { width: 1fr; }
    QuantizeTab #q-ppl, QuantizeTab #q-root, QuantizeTab #q-checks { height: auto; padding: 0 1; }
    QuantizeTab #q-log { height: 8; }
    QuantizeTab #q-status { height: 1; padding: 0 1; background: $panel; color: $text-muted; }
    QuantizeTab #q-status.error { color: $error; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.running = False
        self.result: dict | None = None  # the last finished run's merged JSON (tests read it)
        self.verify_result: dict | None = None
        self._proc: subprocess.Popen | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="q-form", classes="panel") as form:
            form.border_title = "Quantize  (INT8 per-row absmax, calibrated)  ->  seal .s7l  ->  verify"
            # Tab order = reading order: checkpoint, out, calib, then the button that uses all three.
            with Horizontal(classes="q-row"):
                yield Label("checkpoint", classes="q-label")
                yield FieldInput(placeholder="runs/X | runs/X/checkpoints/step_N.pt | a MoE run dir", id="q-ckpt", compact=True)
            with Horizontal(classes="q-row"):
                yield Label("out .s7l", classes="q-label")
                yield FieldInput(placeholder="<run dir>/model.s7l", id="q-out", compact=True)
                yield Label("calib", classes="q-label-short")
                yield FieldInput(placeholder="calib", value="64", id="q-calib", type="integer", compact=True)
                yield Button("Quantize + seal + verify", id="q-run", variant="primary", compact=True)
            with Horizontal(classes="q-row"):
                yield Label("verify file", classes="q-label")
                yield FieldInput(placeholder="any .s7l file", id="q-file", compact=True)
                yield Button("Verify", id="q-verify", compact=True)
        yield ProgressBar(total=1.0, show_eta=False, id="q-progress")
        with Horizontal(id="q-body"):
            with Vertical(id="q-errors", classes="panel") as errs:
                errs.border_title = "Per-tensor error"
                yield DataTable(id="q-error-table", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="q-side", classes="panel") as side:
                side.border_title = "Perplexity · Merkle root · checks"
                yield Static("", id="q-ppl", markup=False)
                yield Static("", id="q-root", markup=False)
                yield Static("", id="q-checks", markup=False)
        yield WrapLog(id="q-log", max_lines=LOG_LINES)
        yield Static("pick a checkpoint, then Quantize + seal + verify (or verify any .s7l file)", id="q-status", markup=False)

    def on_mount(self) -> None:
        self.query_one("#q-error-table", DataTable).add_columns("max abs err", "rel Frobenius", "shape", "tensor")

    def on_unmount(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()

    # ------------------------------------------------------------------ actions

    def set_status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#q-status", Static)
        status.update(text)
        status.set_class(error, "error")

    def action_quantize(self) -> None:
        self.start_quantize()

    def action_verify(self) -> None:
        self.start_verify()

    @on(Button.Pressed, "#q-run")
    @on(Input.Submitted, "#q-ckpt, #q-out, #q-calib")  # Enter in a field of the quantize rows quantizes
    def start_quantize(self) -> None:
        if self.running:
            self.set_status("a run is in progress; wait for it to finish", error=True)
            return
        calib_text = self.query_one("#q-calib", Input).value.strip() or "64"
        try:
            calib = int(calib_text)
            if calib < 1:
                raise ValueError
        except ValueError:
            self.set_status(f"calib {calib_text!r}: accepted: an integer >= 1 (held-out calibration sequences)", error=True)
            return
        try:
            kind, steps = plan_steps(self.query_one("#q-ckpt", Input).value, self.query_one("#q-out", Input).value, calib)
        except ValueError as exc:
            self.set_status(str(exc), error=True)
            return
        self._begin(f"{kind}: {' -> '.join(name for name, _ in steps)}")
        self.run_steps(kind, steps)

    @on(Button.Pressed, "#q-verify")
    @on(Input.Submitted, "#q-file")  # Enter in the verify row verifies (that row's only action)
    def start_verify(self) -> None:
        if self.running:
            self.set_status("a run is in progress; wait for it to finish", error=True)
            return
        path = self.query_one("#q-file", Input).value.strip()
        if not path:
            self.set_status("give the path of a .s7l file to verify", error=True)
            return
        if not Path(path).expanduser().is_file():
            self.set_status(f"{path}: no such file", error=True)
            return
        self._begin(f"verify {path}")
        self.run_steps("verify", [("verify", _lsdt("verify", str(Path(path).expanduser().absolute()), "--json"))])

    def _begin(self, what: str) -> None:
        self.running = True
        # Until a step reports a share of the work the bar pulses (indeterminate), and the status
        # line counts seconds: the first step's ~20 s are python + torch starting in a subprocess,
        # which prints nothing, and a bar frozen at 0 % read as hung.
        self.query_one("#q-progress", ProgressBar).update(total=None, progress=0.0)
        self.query_one("#q-log", WrapLog).clear()
        self._what, self._started = what, time.monotonic()
        self._tick()
        if self._ticker is None:
            self._ticker = self.set_interval(1.0, self._tick)
        else:
            self._ticker.resume()

    _ticker = None
    _what = ""
    _started = 0.0
    _last_line = STARTING

    def _tick(self) -> None:
        if not self.running:
            if self._ticker is not None:
                self._ticker.pause()
            return
        elapsed = int(time.monotonic() - self._started)
        self.set_status(f"running {self._what} · {elapsed} s · {self._last_line}")

    # ------------------------------------------------------------------ the worker (no widget access)

    @work(thread=True, group="quantize", exclusive=True, exit_on_error=False)
    def run_steps(self, kind: str, steps: list[tuple[str, list[str]]]) -> None:
        worker = get_current_worker()
        merged: dict = {"kind": kind}
        for i, (name, argv) in enumerate(steps):
            self.post_message(Progress(f"$ {' '.join(argv[2:])}", i / len(steps)))
            stdout, code = self._run(argv, worker)
            if worker.is_cancelled:
                return
            try:
                data = json.loads(stdout) if stdout.strip() else None
            except json.JSONDecodeError:
                data = None
            if name == "verify" or kind == "moe":
                merged["verify_report"] = data
            if code not in (0, 1) or data is None:  # 1 = verify found a bad file: still a report to show
                tail = self._last_err or f"exit code {code}"
                self.post_message(Finished(kind, None, f"{name} failed: {tail}"))
                return
            merged[name] = data
            if code == 1 and name != "verify" and kind != "moe":
                self.post_message(Finished(kind, None, f"{name} failed: {self._last_err}"))
                return
        self.post_message(Progress("done", 1.0))
        self.post_message(Finished(kind, merged))

    _last_err = ""

    def _run(self, argv: list[str], worker) -> tuple[str, int]:
        """Run one CLI step; stderr lines stream to the log as they come, stdout (JSON) is returned."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                             cwd=str(Path(__file__).resolve().parents[2]))
        out_chunks: list[str] = []
        import threading

        reader = threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()), daemon=True)
        reader.start()
        self._last_err = ""
        for line in proc.stderr:
            if worker.is_cancelled:
                proc.terminate()
                break
            line = line.rstrip()
            if line:
                self._last_err = line
                fraction = next((f for key, f in MOE_STAGES if key in line), None)
                self.post_message(Progress(line, fraction))
        proc.wait()
        reader.join()
        return "".join(out_chunks), proc.returncode

    # ------------------------------------------------------------------ handlers (own the widgets)

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        self.query_one("#q-log", WrapLog).add_line(message.line)
        self._last_line = message.line[:80]
        if message.fraction:  # 0 (a step starting) leaves the bar pulsing: nothing measured yet
            self.query_one("#q-progress", ProgressBar).update(total=1.0, progress=message.fraction)

    @on(Finished)
    def _finished(self, message: Finished) -> None:
        self.running = False
        self._proc = None
        self._last_line = STARTING
        self.query_one("#q-progress", ProgressBar).update(total=1.0, progress=1.0 if not message.error else 0.0)
        if message.error:
            report = (message.result or {}).get("verify_report")
            self.set_status(message.error.splitlines()[0], error=True)
            if report:
                self._show_checks(report)
            return
        r = message.result
        if message.kind == "verify":
            self.verify_result = r["verify"]
            self._show_checks(r["verify"])
            ok = r["verify"].get("ok")
            self.set_status(f"{'OK' if ok else 'FAILED'}: {r['verify'].get('path')}", error=not ok)
            return
        self.result = r
        if message.kind == "moe":
            s = r["moe pipeline (quantize + seal + verify)"]
            self._show_errors(s["errors"])
            self._show_ppl(s["perplexity"], s.get("path"), s.get("act_mode"))
            self._show_root(s["artifact"], s["merkle_root"])
            self._show_checks(s["verify"])
            ok = s["verify"]["ok"]
        else:
            q, sealed, v = r["quantize"], r["seal"], r["verify"]
            self._show_errors(q["errors"])
            self._show_ppl({"held-out": q["perplexity"]}, q.get("path"), q.get("act_mode"))
            self._show_root(sealed["path"], sealed["merkle_root"])
            self._show_checks(v)
            ok = v["ok"]
        self.set_status("sealed and verified" if ok else "sealed, but verify FAILED (see checks)", error=not ok)

    def _show_errors(self, errors: list[dict]) -> None:
        table = self.query_one("#q-error-table", DataTable)
        table.clear()
        for e in errors:
            table.add_row(f"{e['max_abs']:.3e}", f"{e['rel_fro']:.3e}", "x".join(map(str, e["shape"])), e["name"])

    def _show_ppl(self, ppl: dict, path: str | None, act: str | None) -> None:
        lines = [f"INT8 path {path or 'n/a'} · activations {act or 'n/a'}",
                 f"{'domain':10} {'fp32':>9} {'int8':>9} {'delta':>9}"]
        for name, p in ppl.items():
            if p.get("fp32") is None or p.get("int8") is None:
                lines.append(f"{name:10} {'n/a':>9} {'n/a':>9} {'n/a':>9}")
            else:
                lines.append(f"{name:10} {p['fp32']:9.4f} {p['int8']:9.4f} {p['delta_pct']:+8.3f}%")
        self.query_one("#q-ppl", Static).update("\n".join(lines))

    def _show_root(self, artifact: str, root: str | None) -> None:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")  # a path or a 64-digit root wraps whole, never cut
        grid.add_row("artifact", artifact)
        grid.add_row("merkle_root", root or "n/a")
        self.root_text = f"{artifact}\n{root or 'n/a'}"
        self.query_one("#q-root", Static).update(grid)

    root_text = ""  # what #q-root shows, as text (tests read it)
    check_rows: list[tuple[str, str, str]] = []  # (check, ok | FAIL | n/a, detail) as #q-checks shows them

    def _show_checks(self, report: dict) -> None:
        self.check_rows = [(c["check"], "ok" if c["ok"] else "n/a" if c["ok"] is None else "FAIL", c.get("detail") or "")
                           for c in report.get("checks", [])]
        table = Table(box=None, padding=(0, 1), show_edge=False, expand=True)
        table.add_column("check", no_wrap=True)
        table.add_column("ok", no_wrap=True)
        table.add_column("detail", overflow="fold", ratio=1)  # wraps at the panel's width
        for row in self.check_rows:
            table.add_row(*row, style="bold red" if row[1] == "FAIL" else None)
        self.query_one("#q-checks", Static).update(table)
        if report.get("merkle_root") and not self.root_text:
            self._show_root(report.get("path", ""), report["merkle_root"])

    def worker_failed(self, group: str) -> None:
        self.running = False
        self.query_one("#q-progress", ProgressBar).update(total=1.0, progress=0.0)
        self._proc = None
        self.set_status("the run failed unexpectedly (see the notification)", error=True)
