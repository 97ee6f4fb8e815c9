"""RunView: one run, watched live (the Train tab and the Monitor tab both show one).

Reads through engine.runtime.monitor's readers (torch-free): an LSDT run dir, or what another
trainer writes (TensorBoard events, an HF Trainer dir, Lightning's CSVLogger, a CSV/JSONL file). Polling follows dolphie: one read at a time in a thread worker, the
next one armed only when the last one's message was handled, and none while the view is hidden
(it catches up from the file offset when shown again). Machine state comes from
engine.runtime.monitor.telemetry's Sampler on its own thread, started while the view is on screen and
stopped in on_unmount; its messages replace each other in the queue (toolong's can_replace).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from engine.runtime.monitor.report import render_machine, render_run
from engine.errors import UserError
from engine.runtime.monitor import telemetry
from engine.runtime.monitor.lsdt import LsdtReader
from engine.runtime.monitor.reader import STALL_AFTER_S, RunReader
from engine.runtime.train import rundir

from app.series import Ema
from app.widgets.live_chart import LiveChart, shown
from app.widgets.wrap_log import WrapLog

POLL_S = 0.5  # run files: twice a second is live enough and costs ~nothing (an fstat, a small read)
POLL_ENDED_S = 2.0  # after the run ended: it may be resumed into the same directory
# Records read per poll. Attaching to a long run (a 20 h run at 20 lines/s is 1.4M lines) catches
# up in slices of 5k records (~40 ms of chart appends on the UI thread each), polled back to back,
# instead of one long freeze.
READ_SLICE_RECORDS = 5000
TELEMETRY_S = 1.0  # NVML + psutil sample period
GB = 1e9
# Series the fixed charts draw; any other numeric key of a record (a tag of another trainer's, e.g.
# "eval/accuracy") goes to the pickable chart, up to MAX_OTHER_SERIES of them (memory stays bounded).
CHARTED_KEYS = frozenset({"step", "time", "loss", "val_loss", "lr", "tokens", "tok_per_s", "mfu", "vram_alloc_bytes",
                          "vram_peak_bytes", "eta_s", "grad_norm"})
MAX_OTHER_SERIES = 50
DETAIL_MIN_HEIGHT = 28  # lines of the view: status 5 + 2 chart rows of >= 8 + the bottom 8 (a 120x36 terminal gives 31)


@dataclass
class TailState:
    """What the worker reads incrementally; owned by the view, touched by one worker at a time:
    the run's reader, and the readers of runs overlaid on its loss chart."""

    reader: RunReader
    overlays: dict[str, RunReader] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return self.reader.path


class RunPolled(Message):
    """New metrics and events of the watched run, and its status now (a worker's answer)."""

    def __init__(self, generation: int, metrics: list[dict], events: list[dict], status: rundir.RunStatus,
                 checkpoints: list[str], error: str | None = None, backlog: bool = False,
                 problems: list[str] | None = None, overlays: dict[str, list[dict]] | None = None) -> None:
        super().__init__()
        self.problems = problems or []  # one line each: what could not be read (the rest is shown)
        self.overlays = overlays or {}  # run name -> its new records
        self.generation = generation
        self.backlog = backlog  # more metrics are waiting in the file: read again at once
        self.metrics = metrics
        self.events = events
        self.status = status
        self.checkpoints = checkpoints
        self.error = error


class MachineSampled(Message):
    """A telemetry sample (posted from the sampler thread). A newer one replaces a queued one."""

    def __init__(self, sample: telemetry.Sample) -> None:
        super().__init__()
        self.sample = sample

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, MachineSampled)


def describe_event(e: dict) -> str:
    """One line per event for the events pane."""
    kind = e.get("event", "?")
    when = time.strftime("%H:%M:%S", time.localtime(e["time"])) if isinstance(e.get("time"), (int, float)) else "--:--:--"
    step = f" @{e['step']}" if e.get("step") is not None else ""
    if kind == "eval" and e.get("val_loss") is not None:
        detail = f" val {e['val_loss']:.4f}"
    elif kind == "checkpoint":
        detail = f" {Path(str(e.get('path', ''))).name}"
    elif kind == "end":
        detail = f" {e.get('reason', '')}" + (f": {e['message']}" if e.get("message") else "")
    elif kind in ("error", "checkpoint_skipped", "resume"):
        detail = f" {e.get('message') or e.get('reason') or ''}"
    elif kind == "start":
        detail = f" pid {e.get('pid')} on {e.get('device', '?')}" + (f", {e['params']:,} params" if e.get("params") else "")
    else:
        detail = ""
    return f"{when} {kind}{step}{detail}".rstrip()


def short_dir(run_dir: Path) -> str:
    """The run directory as the status line shows it: relative to the working directory, else its
    last two parts (a long temporary path would wrap and push the step line out of view)."""
    try:
        return str(run_dir.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        parts = run_dir.parts
        return str(Path("…", *parts[-2:])) if len(parts) > 2 else str(run_dir)


def status_line(run_dir: Path, status: rundir.RunStatus, last_val: dict | None, checkpoints: list[str], n_metrics: int,
                source: str = "lsdt", problems: list[str] | None = None) -> str:
    """The monitor CLI's own text (engine.runtime.monitor.report.render_run), fed from the tail's state."""
    run = {"dir": short_dir(run_dir), "source": source, **asdict(status),
           "val_loss": None if last_val is None else last_val["val_loss"],
           "val_step": None if last_val is None else last_val.get("step"), "n_metrics": n_metrics,
           "checkpoints": checkpoints, "problems": problems or []}
    lines = render_run(run)
    eta = status.last_metrics.get("eta_s") if status.state == "running" else None
    if isinstance(eta, (int, float)):
        from engine import fmt

        lines[0] += f"   ETA {fmt.duration(eta)}"
    return "\n".join(lines)


class RunView(Widget):
    """Status, charts (loss, speed, memory), events and the machine panel of one run.

    `detail=True` (the Monitor tab) adds a row of charts: learning rate, grad norm, and the
    machine's history (GPU utilisation, memory, power, temperature, clocks per GPU, and the
    training process's CPU; `machine_metric` picks which one is drawn).
    """

    DEFAULT_CSS = """
    /* Never shorter than its status, a row of charts and the events/machine row (5 + 8 + 8): on a
       short terminal (80x24) the tab scrolls to them instead of cutting them to a top border. */
    RunView { height: 1fr; min-height: 21; layout: vertical; }
    RunView #run-status { height: 5; padding: 0 1; }
    RunView .charts { height: 1fr; min-height: 8; }
    /* A column between charts: side by side, their titles ("loss", "tok/s · MFU %") ran together. */
    RunView LiveChart { width: 1fr; height: 1fr; margin-right: 1; }
    RunView LiveChart:last-of-type { margin-right: 0; }
    RunView .bottom { height: 8; }
    RunView #run-events { width: 1fr; border: round $primary 50%; }
    RunView #machine { width: 1fr; height: 1fr; border: round $primary 50%; padding: 0 1; }
    """

    # The machine-history chart's metrics: (name, unit) in the order a key cycles through them.
    MACHINE_METRICS = (("util %", "%"), ("memory GB", "GB"), ("power W", "W"), ("temp C", "C"), ("SM clock MHz", "MHz"),
                       ("process CPU %", "%"))

    def __init__(self, *, detail: bool = False, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.detail = detail
        self.run_dir: Path | None = None
        self.source = "lsdt"
        self.status: rundir.RunStatus | None = None
        self.problems: list[str] = []
        self.n_metrics = 0
        self.last_val: dict | None = None
        self.checkpoints: list[str] = []
        self.first_time: float | None = None  # metrics' wall clock at the first record (x of the memory chart)
        self.stall_after_s = STALL_AFTER_S
        self.smoothing = 0.0  # TensorBoard's slider: 0 = raw only
        self._ema: dict[str, Ema] = {}  # per x key (an EMA follows the order the points came in)
        self._overlay_firsts: dict[str, float] = {}
        self._tail: TailState | None = None
        self._generation = 0
        self._timer = None
        self._sampler: telemetry.Sampler | None = None
        self.machine: telemetry.Sample | None = None
        self.machine_metric = self.MACHINE_METRICS[0][0]
        self.picked_series = "grad norm"  # what the pickable chart draws: grad norm, or another tag
        self._machine_t0: float | None = None
        self.polls = 0  # answers handled (tests wait on it)

    def compose(self) -> ComposeResult:
        yield Static("no run attached", id="run-status", markup=False)
        x_keys = ("step", "tokens", "minutes")
        with Horizontal(classes="charts"):
            yield LiveChart("loss", x_keys, id="chart-loss")
            yield LiveChart("tok/s · MFU %", x_keys, id="chart-speed")
            yield LiveChart("memory GB", ("minutes",), id="chart-memory")
        if self.detail:
            with Horizontal(classes="charts detail-charts"):
                yield LiveChart("learning rate", x_keys, empty="no learning rate in this run", id="chart-lr")
                yield LiveChart("grad norm", x_keys, empty="no grad norm in this run (t: other series)", id="chart-grad")
                yield LiveChart(f"machine: {self.machine_metric}", ("minutes",), empty="sampling…", id="chart-machine")
        with Horizontal(classes="bottom"):
            log = WrapLog(id="run-events", max_lines=500)
            log.border_title = "events"
            yield log
            machine = Static("sampling…", id="machine", markup=False)
            machine.border_title = "machine"
            yield machine

    def on_mount(self) -> None:
        loss = self.query_one("#chart-loss", LiveChart)
        loss.add_series("train", "cyan")
        loss.add_series("val", "orange")
        speed = self.query_one("#chart-speed", LiveChart)
        speed.add_series("tok/s", "green")
        speed.add_series("MFU %", "magenta", yside="right")
        mem = self.query_one("#chart-memory", LiveChart)
        mem.add_series("alloc", "cyan")
        mem.add_series("peak", "orange")
        mem.add_series("NVML used", "green")
        mem.add_series("process RSS", "magenta")
        if self.detail:
            self.query_one("#chart-lr", LiveChart).add_series("lr", "yellow")
            self.query_one("#chart-grad", LiveChart).add_series("grad norm", "red")
        # The machine panel is live whether or not a run is attached, but only while on screen.
        self.set_interval(TELEMETRY_S, self._sampler_follows_visibility, name="telemetry-visibility")
        self.call_after_refresh(self._sampler_follows_visibility)

    def on_resize(self) -> None:
        # The second row of charts needs room: on a short terminal (80x24) it would squeeze the
        # first row below readability, so it shows from DETAIL_MIN_HEIGHT lines of view up.
        if self.detail:
            self.query_one(".detail-charts").display = self.size.height >= DETAIL_MIN_HEIGHT

    def _sampler_follows_visibility(self) -> None:
        if shown(self):
            self._ensure_sampler()
        else:
            self._stop_sampler()

    def on_unmount(self) -> None:
        self._stop_sampler()
        self._generation += 1  # any answer still in flight is dropped

    # ------------------------------------------------------------------ attaching

    def attach(self, run_dir: str | Path, reader: RunReader | None = None) -> None:
        """Watch a run from its first record (charts and events are reset): `reader` when given
        (any source), else `run_dir` as an LSDT run directory."""
        reader = reader or LsdtReader(run_dir)
        self.run_dir = Path(reader.path)
        self.source = reader.source
        self._generation += 1
        self._tail = TailState(reader)
        self.status, self.n_metrics, self.last_val, self.checkpoints, self.first_time = None, 0, None, [], None
        self.problems = []
        self._ema.clear()
        self._overlay_firsts.clear()
        self.failed_start = None
        for chart in self.query(LiveChart):
            if chart.id != "chart-machine":  # the machine's history is not the run's
                chart.reset()
        loss = self.query_one("#chart-loss", LiveChart)
        for name in loss.series_names():
            if name not in ("train", "val", "smoothed"):
                loss.remove_series(name)  # overlays of the previous run
        self.query_one("#run-events", WrapLog).clear()
        self.query_one("#run-status", Static).update(f"run      {short_dir(self.run_dir)}  reading…")
        if self._timer is not None:
            self._timer.stop()
        self._timer = None
        self._poll()

    def mark_failed_start(self, why: str) -> None:
        """The process meant to write this run ended before its start event: the run line says so
        (read from the run directory alone it would say 'not started (no start event yet)' for ever).
        A run that did start keeps its own end (the trainer wrote it, or the run reads 'gone')."""
        if self.run_dir is None or (self.status is not None and self.status.state != "not_started"):
            return
        self.failed_start = why
        self.query_one("#run-status", Static).update(f"run      {short_dir(self.run_dir)}  did not start: {why}")

    failed_start: str | None = None

    def set_x_key(self, key: str) -> None:
        """step, tokens or minutes (wall clock) for every chart of the run's own series."""
        for chart in self.query(LiveChart):
            if chart.id not in ("chart-memory", "chart-machine"):
                chart.set_x_key(key)
                if key == "minutes" and self.n_metrics and self.first_time is None:
                    chart.set_empty(f"no wall clock in this {self.source} run: x = step or tokens")

    @property
    def x_key(self) -> str:
        return self.query_one("#chart-loss", LiveChart).x_key

    @property
    def charts(self) -> dict[str, LiveChart]:
        return {c.id.removeprefix("chart-"): c for c in self.query(LiveChart)}

    # ------------------------------------------------------------------ smoothing, log y, overlays

    def set_smoothing(self, weight: float) -> None:
        """TensorBoard's smoothing: an EMA of the training loss drawn over the raw one, which goes
        faint. Recomputed from the points the chart holds (old ones are min/max-thinned already)."""
        Ema(weight)  # validates the weight
        self.smoothing = weight
        loss = self.query_one("#chart-loss", LiveChart)
        self._ema.clear()
        if weight <= 0:
            loss.remove_series("smoothed")
            loss.set_style("train", "cyan")
            return
        loss.remove_series("smoothed")
        loss.add_series("smoothed", "cyan")
        loss.set_style("train", "gray")
        for key in loss.x_keys:
            ema = self._ema[key] = Ema(weight)
            target = loss.series("smoothed", key)
            for x, y in loss.series("train", key).points():
                target.append(x, ema(y))

    def other_series(self) -> list[str]:
        """What the pickable chart can draw: grad norm, then every other tag seen, in arrival order."""
        return self.query_one("#chart-grad", LiveChart).series_names() if self.detail else []

    def pick_series(self, name: str) -> None:
        chart = self.query_one("#chart-grad", LiveChart)
        if name not in chart.series_names():
            return
        self.picked_series = name
        chart.title = name
        chart.set_empty(f"no {name} in this run (t: other series)")
        chart.set_hidden({n for n in chart.series_names() if n != name})

    def set_log_y(self, on: bool) -> None:
        self.query_one("#chart-loss", LiveChart).set_log_y(on)

    def add_overlay(self, reader: RunReader) -> str:
        """Draw another run's training loss on this run's loss chart (read in the same worker)."""
        name = reader.path.name
        if self._tail is not None:
            self._tail.overlays[name] = reader
        return name

    def remove_overlay(self, name: str) -> None:
        if self._tail is not None:
            self._tail.overlays.pop(name, None)
        self.query_one("#chart-loss", LiveChart).remove_series(name)
        self._overlay_firsts.pop(name, None)

    @property
    def overlays(self) -> list[str]:
        return list(self._tail.overlays) if self._tail else []

    # ------------------------------------------------------------------ polling the run

    def _arm(self, delay_s: float) -> None:
        self._timer = self.set_timer(delay_s, self._poll, name="run-poll")

    def _poll(self) -> None:
        self._timer = None
        if self._tail is None:
            return
        if not shown(self) and self.polls:
            self._arm(POLL_S)  # hidden: read nothing; look again later (the offset keeps our place)
            return
        self.read_run(self._tail, self._generation, self.stall_after_s)

    @work(thread=True, group="run-tail", exit_on_error=False)
    def read_run(self, tail: TailState, generation: int, stall_after_s: float) -> None:
        reader = tail.reader
        try:
            metrics = reader.poll(max_records=READ_SLICE_RECORDS)
            events = reader.events_since()
            status = reader.status(stall_after_s)
            checkpoints = [p.name for p in rundir.list_checkpoints(reader.path)] if reader.source == "lsdt" else []
            overlays = {}
            for name, other in list(tail.overlays.items()):
                try:
                    overlays[name] = other.poll(max_records=READ_SLICE_RECORDS)
                except (UserError, OSError) as exc:
                    reader.note(f"overlay {name}: {exc}")
            self.post_message(RunPolled(generation, metrics, events, status, checkpoints, backlog=reader.backlog,
                                        problems=list(reader.problems), overlays=overlays))
        except (OSError, UserError) as exc:  # unreadable, or a CSV that lost a column: say so, keep polling
            reader.note(str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}")
            status = rundir.RunStatus("unknown", message=str(exc), last_metrics=dict(reader.last),
                                      last_step=reader.last.get("step"))
            self.post_message(RunPolled(generation, [], [], status, [], error=str(exc), problems=list(reader.problems)))

    @on(RunPolled)
    def _polled(self, message: RunPolled) -> None:
        message.stop()
        if message.generation != self._generation or self.run_dir is None:
            return
        self.polls += 1
        prev = self.status.last_metrics if self.status else {}
        if not message.status.last_metrics and prev:  # no new metrics this poll: keep the last ones shown
            message.status.last_metrics, message.status.last_step = prev, prev.get("step")
        self.status = message.status
        self.checkpoints = message.checkpoints
        self.problems = message.problems
        self._add_metrics(message.metrics)
        for name, records in message.overlays.items():
            self._add_overlay(name, records)
        log = self.query_one("#run-events", WrapLog)
        for e in message.events:
            log.add_line(describe_event(e))
        # Fixed-size panels: update without a layout pass (a relayout of the screen, twice a
        # second, is what a keypress would otherwise wait behind).
        if self.failed_start is not None and self.status.state == "not_started":
            line = f"run      {short_dir(self.run_dir)}  did not start: {self.failed_start}"
        else:
            line = status_line(self.run_dir, self.status, self.last_val, self.checkpoints, self.n_metrics, self.source,
                               self.problems)
        self.query_one("#run-status", Static).update(line, layout=False)
        if self._sampler is not None:
            pid = self.status.pid if self.status.state == "running" else None
            if pid != self._sampler.pid:
                self._sampler.pid = pid
        if message.backlog:
            self._arm(0.01)
        else:
            self._arm(POLL_S if self.status.state in ("running", "not_started", "unknown", "stalled") else POLL_ENDED_S)

    def _xs(self, r: dict, first_time: float | None) -> dict:
        t = r.get("time")
        minutes = (t - first_time) / 60.0 if isinstance(t, (int, float)) and first_time is not None else None
        return {"step": r.get("step"), "tokens": r.get("tokens"), "minutes": minutes}

    def _add_metrics(self, records: list[dict]) -> None:
        if not records:
            return
        loss = self.query_one("#chart-loss", LiveChart)
        speed = self.query_one("#chart-speed", LiveChart)
        mem = self.query_one("#chart-memory", LiveChart)
        lr = self.query_one("#chart-lr", LiveChart) if self.detail else None
        grad = self.query_one("#chart-grad", LiveChart) if self.detail else None
        smoothing = self.smoothing > 0
        for r in records:
            t = r.get("time")
            if self.first_time is None and isinstance(t, (int, float)):
                self.first_time = t
            xs = self._xs(r, self.first_time)
            y = r.get("loss")
            if loss.append("train", xs, y) and smoothing:
                for key, x in xs.items():
                    if x is not None and key in loss.x_keys:
                        ema = self._ema.setdefault(key, Ema(self.smoothing))
                        loss.series("smoothed", key).append(x, ema(float(y)))
            if r.get("val_loss") is not None:
                loss.append("val", xs, r["val_loss"])
                self.last_val = r
            speed.append("tok/s", xs, r.get("tok_per_s"))
            mfu = r.get("mfu")
            speed.append("MFU %", xs, None if mfu is None else 100.0 * mfu)
            if lr is not None:
                lr.append("lr", xs, r.get("lr"))
                grad.append("grad norm", xs, r.get("grad_norm"))
                for key, value in r.items():
                    if key not in CHARTED_KEYS and isinstance(value, (int, float)) and not isinstance(value, bool):
                        if key not in grad._series and len(grad._series) > MAX_OTHER_SERIES:
                            continue
                        if key not in grad._series:
                            grad.add_series(key, "magenta")
                            grad.set_hidden({n for n in grad.series_names() if n != self.picked_series})
                        grad.append(key, xs, value)
            if xs["minutes"] is not None:
                minutes = {"minutes": xs["minutes"]}
                for name, key in (("alloc", "vram_alloc_bytes"), ("peak", "vram_peak_bytes")):
                    v = r.get(key)
                    mem.append(name, minutes, None if v is None else v / GB)
        self.n_metrics += len(records)
        if all(r.get("vram_alloc_bytes") is None for r in records):
            mem.set_empty("no torch VRAM figures (a CPU run); NVML: see machine")

    def _add_overlay(self, name: str, records: list[dict]) -> None:
        loss = self.query_one("#chart-loss", LiveChart)
        if name not in loss.series_names():
            loss.add_series(name)  # plotext picks a colour
        for r in records:
            t = r.get("time")
            if name not in self._overlay_firsts and isinstance(t, (int, float)):
                self._overlay_firsts[name] = t  # each run's own start: runs line up at minute 0
            loss.append(name, self._xs(r, self._overlay_firsts.get(name)), r.get("loss"))

    # ------------------------------------------------------------------ the machine

    def _ensure_sampler(self) -> None:
        if self._sampler is None:
            self._sampler = telemetry.Sampler(interval_s=TELEMETRY_S, history=1, on_sample=self._on_sample)
            if self.status is not None and self.status.state == "running":
                self._sampler.pid = self.status.pid
            self._sampler.start()

    def _stop_sampler(self) -> None:
        if self._sampler is not None:
            self._sampler.stop(timeout_s=2.0)
            self._sampler = None

    def _on_sample(self, sample: telemetry.Sample) -> None:  # sampler thread
        self.post_message(MachineSampled(sample))

    def set_machine_metric(self, name: str) -> None:
        """Which of MACHINE_METRICS the history chart draws (all are kept)."""
        if name not in dict(self.MACHINE_METRICS) or not self.detail:
            return
        self.machine_metric = name
        chart = self.query_one("#chart-machine", LiveChart)
        chart.title = f"machine: {name}"
        chart.set_hidden({n for n in chart.series_names() if not n.endswith(f" {name}")})

    @on(MachineSampled)
    def _sampled(self, message: MachineSampled) -> None:
        message.stop()
        s = message.sample
        self.machine = s
        self.query_one("#machine", Static).update("\n".join(render_machine(s.to_dict())), layout=False)
        if self.first_time is not None:
            mem = self.query_one("#chart-memory", LiveChart)
            minutes = {"minutes": (s.time - self.first_time) / 60.0}
            if s.gpus:
                g = s.gpus[0]
                if g.memory_used_bytes is not None:
                    mem.append("NVML used", minutes, g.memory_used_bytes / GB)
                if g.memory_total_bytes is not None:
                    mem.set_limit("capacity", g.memory_total_bytes / GB)
            if s.process is not None and s.process.alive and s.process.rss_bytes is not None:
                mem.append("process RSS", minutes, s.process.rss_bytes / GB)  # a CPU run's memory too
        if self.detail:
            self._machine_history(s)

    def _machine_history(self, s: telemetry.Sample) -> None:
        """Every GPU's utilisation, memory, power, temperature and SM clock, and the process's CPU,
        against minutes since this view started sampling (kept whether drawn or not)."""
        chart = self.query_one("#chart-machine", LiveChart)
        if self._machine_t0 is None:
            self._machine_t0 = s.time
        x = {"minutes": (s.time - self._machine_t0) / 60.0}
        added = False
        for g in s.gpus:
            values = {"util %": g.utilization_pct, "memory GB": None if g.memory_used_bytes is None else g.memory_used_bytes / GB,
                      "power W": g.power_w, "temp C": g.temperature_c, "SM clock MHz": g.sm_clock_mhz}
            for metric, value in values.items():
                added = chart.append(f"GPU{g.index} {metric}", x, value) or added
        if s.process is not None and s.process.alive:
            added = chart.append(f"pid{s.process.pid} process CPU %", x, s.process.cpu_pct) or added
        if added:
            self.set_machine_metric(self.machine_metric)
        if not s.gpus:
            chart.set_empty(f"{s.gpu_error or 'no GPU'}; process CPU % once a run is running here")
