"""RunView: one run directory, watched live (the Train tab and the Monitor tab both show one).

Reads through engine.runtime.train.rundir only (torch-free), so it watches any run that writes the
schema, whoever launched it. Polling follows dolphie: one read at a time in a thread worker, the
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
from textual.widgets import RichLog, Static

from engine.commands.monitor import render_machine, render_run
from engine.runtime.train import rundir
from engine.runtime.monitor import telemetry

from app.widgets.live_chart import LiveChart, shown

POLL_S = 0.5  # run files: twice a second is live enough and costs ~nothing (an fstat, a small read)
POLL_ENDED_S = 2.0  # after the run ended: it may be resumed into the same directory
# Bytes of metrics read per poll. Attaching to a long run (a 20 h run at 20 lines/s is ~300 MB)
# catches up in slices of ~5k lines (~40 ms of chart appends on the UI thread each), polled back
# to back, instead of one long freeze.
READ_SLICE_BYTES = 1 << 20
TELEMETRY_S = 1.0  # NVML + psutil sample period
MAX_EVENTS = 5000  # events kept for run_status (a run writes a few per checkpoint interval)
GB = 1e9


@dataclass
class TailState:
    """What the worker reads incrementally; owned by the view, touched by one worker at a time."""

    run_dir: Path
    metrics: rundir.JsonlTail
    events: rundir.JsonlTail
    all_events: list[dict] = field(default_factory=list)

    @classmethod
    def open(cls, run_dir: Path) -> "TailState":
        return cls(run_dir, rundir.JsonlTail(run_dir / rundir.METRICS_FILE), rundir.JsonlTail(run_dir / rundir.EVENTS_FILE))


class RunPolled(Message):
    """New metrics and events of the watched run, and its status now (a worker's answer)."""

    def __init__(self, generation: int, metrics: list[dict], events: list[dict], status: rundir.RunStatus,
                 checkpoints: list[str], error: str | None = None, backlog: bool = False) -> None:
        super().__init__()
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


def status_line(run_dir: Path, status: rundir.RunStatus, last_val: dict | None, checkpoints: list[str], n_metrics: int) -> str:
    """The monitor CLI's own text (engine.commands.monitor.render_run), fed from the tail's state."""
    run = {"dir": short_dir(run_dir), **asdict(status), "val_loss": None if last_val is None else last_val["val_loss"],
           "val_step": None if last_val is None else last_val.get("step"), "n_metrics": n_metrics, "checkpoints": checkpoints}
    lines = render_run(run)
    eta = status.last_metrics.get("eta_s") if status.state == "running" else None
    if isinstance(eta, (int, float)):
        from engine import fmt

        lines[0] += f"   ETA {fmt.duration(eta)}"
    return "\n".join(lines)


class RunView(Widget):
    """Status, charts (loss, speed, memory), events and the machine panel of one run directory."""

    DEFAULT_CSS = """
    RunView { height: 1fr; layout: vertical; }
    RunView #run-status { height: 5; padding: 0 1; }
    RunView .charts { height: 1fr; min-height: 8; }
    RunView LiveChart { width: 1fr; height: 1fr; }
    RunView .bottom { height: 8; }
    RunView #run-events { width: 1fr; border: round $primary 50%; }
    RunView #machine { width: 1fr; height: 1fr; border: round $primary 50%; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.run_dir: Path | None = None
        self.status: rundir.RunStatus | None = None
        self.n_metrics = 0
        self.last_val: dict | None = None
        self.checkpoints: list[str] = []
        self.first_time: float | None = None  # metrics' wall clock at the first record (x of the memory chart)
        self._tail: TailState | None = None
        self._generation = 0
        self._timer = None
        self._sampler: telemetry.Sampler | None = None
        self.machine: telemetry.Sample | None = None
        self.polls = 0  # answers handled (tests wait on it)

    def compose(self) -> ComposeResult:
        yield Static("no run attached", id="run-status", markup=False)
        with Horizontal(classes="charts"):
            yield LiveChart("loss", ("step", "tokens"), id="chart-loss")
            yield LiveChart("tok/s · MFU %", ("step", "tokens"), id="chart-speed")
            yield LiveChart("memory GB", ("minutes",), id="chart-memory")
        with Horizontal(classes="bottom"):
            log = RichLog(id="run-events", max_lines=500, wrap=False, markup=False)
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
        # The machine panel is live whether or not a run is attached, but only while on screen.
        self.set_interval(TELEMETRY_S, self._sampler_follows_visibility, name="telemetry-visibility")
        self.call_after_refresh(self._sampler_follows_visibility)

    def _sampler_follows_visibility(self) -> None:
        if shown(self):
            self._ensure_sampler()
        else:
            self._stop_sampler()

    def on_unmount(self) -> None:
        self._stop_sampler()
        self._generation += 1  # any answer still in flight is dropped

    # ------------------------------------------------------------------ attaching

    def attach(self, run_dir: str | Path) -> None:
        """Watch `run_dir` from its first line (charts and events are reset)."""
        self.run_dir = Path(run_dir)
        self._generation += 1
        self._tail = TailState.open(self.run_dir)
        self.status, self.n_metrics, self.last_val, self.checkpoints, self.first_time = None, 0, None, [], None
        self.failed_start = None
        for chart in self.query(LiveChart):
            chart.reset()
        self.query_one("#run-events", RichLog).clear()
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
        for chart_id in ("#chart-loss", "#chart-speed"):
            self.query_one(chart_id, LiveChart).set_x_key(key)

    @property
    def charts(self) -> dict[str, LiveChart]:
        return {c.id.removeprefix("chart-"): c for c in self.query(LiveChart)}

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
        self.read_run(self._tail, self._generation)

    @work(thread=True, group="run-tail", exit_on_error=False)
    def read_run(self, tail: TailState, generation: int) -> None:
        try:
            metrics = tail.metrics.poll(max_bytes=READ_SLICE_BYTES)
            events = tail.events.poll()
            try:
                backlog = tail.metrics.path.stat().st_size - tail.metrics.offset > READ_SLICE_BYTES // 2
            except FileNotFoundError:
                backlog = False
            tail.all_events.extend(events)
            del tail.all_events[:-MAX_EVENTS]
            last = [metrics[-1]] if metrics else []
            status = rundir.run_status(tail.run_dir, events=tail.all_events, metrics=last)
            checkpoints = [p.name for p in rundir.list_checkpoints(tail.run_dir)]
            self.post_message(RunPolled(generation, metrics, events, status, checkpoints, backlog=backlog))
        except OSError as exc:  # the directory vanished or is unreadable: say so, keep polling
            status = rundir.RunStatus("unknown", message=f"{type(exc).__name__}: {exc}")
            self.post_message(RunPolled(generation, [], [], status, [], error=str(exc)))

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
        self._add_metrics(message.metrics)
        log = self.query_one("#run-events", RichLog)
        for e in message.events:
            log.write(describe_event(e))
        # Fixed-size panels: update without a layout pass (a relayout of the screen, twice a
        # second, is what a keypress would otherwise wait behind).
        if self.failed_start is not None and self.status.state == "not_started":
            line = f"run      {short_dir(self.run_dir)}  did not start: {self.failed_start}"
        else:
            line = status_line(self.run_dir, self.status, self.last_val, self.checkpoints, self.n_metrics)
        self.query_one("#run-status", Static).update(line, layout=False)
        if self._sampler is not None:
            pid = self.status.pid if self.status.state == "running" else None
            if pid != self._sampler.pid:
                self._sampler.pid = pid
        if message.backlog:
            self._arm(0.01)
        else:
            self._arm(POLL_S if self.status.state in ("running", "not_started", "unknown") else POLL_ENDED_S)

    def _add_metrics(self, records: list[dict]) -> None:
        if not records:
            return
        loss = self.query_one("#chart-loss", LiveChart)
        speed = self.query_one("#chart-speed", LiveChart)
        mem = self.query_one("#chart-memory", LiveChart)
        for r in records:
            xs = {"step": r.get("step"), "tokens": r.get("tokens")}
            loss.append("train", xs, r.get("loss"))
            if r.get("val_loss") is not None:
                loss.append("val", xs, r["val_loss"])
                self.last_val = r
            speed.append("tok/s", xs, r.get("tok_per_s"))
            mfu = r.get("mfu")
            speed.append("MFU %", xs, None if mfu is None else 100.0 * mfu)
            t = r.get("time")
            if isinstance(t, (int, float)):
                if self.first_time is None:
                    self.first_time = t
                minutes = {"minutes": (t - self.first_time) / 60.0}
                for name, key in (("alloc", "vram_alloc_bytes"), ("peak", "vram_peak_bytes")):
                    v = r.get(key)
                    mem.append(name, minutes, None if v is None else v / GB)
        self.n_metrics += len(records)
        if all(r.get("vram_alloc_bytes") is None for r in records):
            mem.set_empty("no torch VRAM figures (a CPU run); NVML: see machine")

    # ------------------------------------------------------------------ the machine

    def _ensure_sampler(self) -> None:
        if self._sampler is None:
            self._sampler = telemetry.Sampler(interval_s=TELEMETRY_S, history=1, on_sample=self._on_sample)
            self._sampler.start()

    def _stop_sampler(self) -> None:
        if self._sampler is not None:
            self._sampler.stop(timeout_s=2.0)
            self._sampler = None

    def _on_sample(self, sample: telemetry.Sample) -> None:  # sampler thread
        self.post_message(MachineSampled(sample))

    @on(MachineSampled)
    def _sampled(self, message: MachineSampled) -> None:
        message.stop()
        s = message.sample
        self.machine = s
        self.query_one("#machine", Static).update("\n".join(render_machine(s.to_dict())), layout=False)
        if s.gpus and self.first_time is not None:
            mem = self.query_one("#chart-memory", LiveChart)
            g = s.gpus[0]
            if g.memory_used_bytes is not None:
                mem.append("NVML used", {"minutes": (s.time - self.first_time) / 60.0}, g.memory_used_bytes / GB)
            if g.memory_total_bytes is not None:
                mem.set_limit("capacity", g.memory_total_bytes / GB)
