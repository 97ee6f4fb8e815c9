"""Live charts: textual-plotext plots fed from bounded series, redrawn on a timer, never per point.

Producers call `append` as often as data arrives (cheap: a list append, see app/series.py).
A timer at REDRAW_HZ rebuilds the plot only when a series changed since the last draw and the
chart is on screen (a hidden tab costs nothing), as STYLE.md asks of textual-plotext: it rebuilds
the whole plot on every render, so the render rate must not follow the data rate.
"""

from __future__ import annotations

import itertools
import math
import textwrap
import threading
import time

from rich.text import Text
from textual import on, work
from textual.dom import NoScreen
from textual.message import Message
from textual.worker import Worker, WorkerState
from textual_plotext import PlotextPlot

from app.messages import WorkerFailed

from app.series import DEFAULT_CAPACITY, MinMaxSeries
from app.widgets.ansi_text import ansi_to_text

# 2 Hz: the low end of the 2-4 Hz band (dolphie, toolong). Each repaint of three braille charts
# is a burst of terminal output that a keypress queues behind; at 3 Hz the keypress p95 under a
# 20 lines/s stream was 62 ms against 25 ms idle (benchmarks/tui_stream.py, docs/tui-live.md).
REDRAW_HZ = 2.0

# Builds of all charts take turns: several plotext threads at once would each take the GIL from
# the UI thread every switch interval (5 ms), and a keypress would wait for all of them.
_BUILD_LOCK = threading.Lock()


def render_plot(widget: PlotextPlot):
    """PlotextPlot.render with the fast ANSI conversion (app/widgets/ansi_text.py): size the
    figure to the widget, apply the app-derived plotext theme, build."""
    plot = widget.plt
    plot.plotsize(widget.size.width, widget.size.height)
    plot._set_size(widget.size.width, widget.size.height)  # textual-plotext does both (its issue #5)
    plot.theme(widget._get_plotext_theme_name(widget.app.theme))
    return ansi_to_text(plot.build())


def shown(widget) -> bool:
    """On screen and not under a modal: the only time live work is worth doing (dolphie)."""
    try:
        return widget.is_on_screen and widget.screen is widget.app.screen
    # While mounting, or after unmount. Textual's NoActiveAppError is a RuntimeError and lives in a
    # private module (textual._context): caught by its public base class.
    except (NoScreen, RuntimeError):
        return False


def axis_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = (hi - lo) / (n - 1)
    return [lo + i * step for i in range(n)]


# x axes that count things (steps, tokens): ticks at whole numbers (plotext put them at 1.5, 2.5).
COUNT_X_KEYS = ("step", "tokens")


def count_ticks(lo: float, hi: float, n: int = 5) -> list[int]:
    """At most `n` whole-number ticks from lo to hi, a round stride apart (1, 2, 5 x 10^k)."""
    first, last = math.ceil(lo), math.floor(hi)
    if last <= first:
        return [first] if first <= hi else [round(lo)]
    raw = (last - first) / max(1, n - 1)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    stride = next((m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw), 10 * magnitude)
    start = math.ceil(first / stride) * stride
    return list(range(int(start), int(last) + 1, int(stride)))


def title_lines(title: str, width: int) -> list[str]:
    """A chart's title centred in `width` cells, wrapped at spaces when longer (never cut)."""
    return [line.center(width).rstrip() for line in textwrap.wrap(title, max(1, width), break_long_words=True)] or [""]


def tick_label(v: float) -> str:
    """Short axis labels: 41k, 1.2M, 0.35 (plotext's own are 7+ digits wide, e.g. 41000.0)."""
    a = abs(v)
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= scale:
            return f"{v / scale:.3g}{suffix}"
    return f"{v:.3g}"


class LiveChart(PlotextPlot):
    """Line series against one of several x axes (e.g. step or tokens), with optional limit lines.

    Each named series keeps one MinMaxSeries per x key, so switching the x axis (`x_key`) redraws
    from data already held, without re-reading the run.
    """

    def __init__(self, title: str, x_keys: tuple[str, ...] = ("step",), y_label: str = "", *,
                 capacity: int = DEFAULT_CAPACITY, redraw_hz: float = REDRAW_HZ, empty: str = "waiting for data",
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.x_keys = x_keys
        self.x_key = x_keys[0]
        self.y_label = y_label
        self.capacity = capacity
        self.redraw_hz = redraw_hz
        self.empty = empty  # shown in the title while there is nothing to draw
        self._series: dict[str, dict[str, MinMaxSeries]] = {}
        self._style: dict[str, dict] = {}
        self.limits: dict[str, float] = {}  # label -> y of a horizontal line (e.g. memory capacity)
        self.hidden: set[str] = set()  # series held but not drawn (e.g. the machine history's other metrics)
        self.log_y = False  # y drawn as log10 (ticks labelled in y's own units); y <= 0 is left out
        self._drawn_version = -1
        self._meta_version = 0
        self.redraws = 0  # plots built (tests and benchmarks read it)
        self.last_redraw_s = 0.0  # seconds the last rebuild took
        self.no_data = True
        self._text: Text | None = None  # the last plot built (render returns it; no work at paint time)
        self._building = False

    def render(self):
        # plotext draws an empty frame and drops a long title when there is no data: say why instead.
        if self.no_data or self._text is None:
            return Text(f"{self.title}\n{self.empty}", style="dim", justify="center")
        return self._text

    # ------------------------------------------------------------------ data

    def add_series(self, name: str, color: str | None = None, yside: str = "left") -> None:
        self._series.setdefault(name, {k: MinMaxSeries(self.capacity) for k in self.x_keys})
        self._style[name] = {"color": color, "yside": yside}

    def set_style(self, name: str, color: str | None) -> None:
        """Recolour a series (e.g. the raw loss goes grey once a smoothed one is drawn over it)."""
        if name in self._style and self._style[name].get("color") != color:
            self._style[name]["color"] = color
            self._meta_version += 1

    def set_hidden(self, names: set[str]) -> None:
        if names != self.hidden:
            self.hidden = set(names)
            self._meta_version += 1

    def set_log_y(self, on: bool) -> None:
        if on != self.log_y:
            self.log_y = on
            self._meta_version += 1
            if self.is_mounted:
                self.request_redraw()

    def remove_series(self, name: str) -> None:
        removed = self._series.pop(name, None)
        if removed is not None:
            self._style.pop(name, None)
            # `version` sums the series' versions: keep it growing, or a redraw could be missed
            self._meta_version += 1 + sum(s.version for s in removed.values())

    def series_names(self) -> list[str]:
        return list(self._series)

    def append(self, name: str, xs: dict[str, float | None], y: float | None) -> bool:
        """One point of series `name`; `xs` gives its x for each x key. False when y is missing."""
        if name not in self._series:
            self.add_series(name)
        ok = False
        for key, series in self._series[name].items():
            ok = series.append(xs.get(key), y) or ok
        return ok

    def set_empty(self, text: str) -> None:
        """What the chart says while it has nothing to draw (e.g. why: "MFU n/a on this device")."""
        if text != self.empty:
            self.empty = text
            self.refresh()

    def set_limit(self, label: str, y: float | None) -> None:
        new = None if y is None or not math.isfinite(y) else float(y)
        if self.limits.get(label) == new:
            return
        if new is None:
            self.limits.pop(label, None)
        else:
            self.limits[label] = new
        self._meta_version += 1

    def reset(self) -> None:
        for by_key in self._series.values():
            for s in by_key.values():
                s.clear()
        self.limits.clear()
        self._meta_version += 1

    def set_x_key(self, key: str) -> None:
        if key in self.x_keys and key != self.x_key:
            self.x_key = key
            self._meta_version += 1
            if self.is_mounted:
                self.request_redraw()  # a key the user pressed: answer now, not at the next tick

    def series(self, name: str, x_key: str | None = None) -> MinMaxSeries:
        return self._series[name][x_key or self.x_key]

    @property
    def n_points(self) -> int:
        return sum(len(by_key[self.x_key]) for by_key in self._series.values())

    @property
    def version(self) -> int:
        """Changes whenever anything drawn changed (a point, a limit line, the x axis)."""
        return self._meta_version + sum(s.version for by_key in self._series.values() for s in by_key.values())

    # ------------------------------------------------------------------ drawing
    #
    # A redraw has two halves. On the UI thread, `_spec()` thins each series to what the chart's
    # width can show (~1 ms). On a worker thread, `build_text()` runs plotext and turns its ANSI
    # into a Text (~10 ms at 80x20): the UI thread stays free for keys meanwhile. The answer
    # comes back as a Built message; one build per chart is in flight at a time.

    class Built(Message):
        def __init__(self, text: Text | None, version: int, elapsed_s: float) -> None:
            super().__init__()
            self.text = text
            self.version = version
            self.elapsed_s = elapsed_s

    _instances = itertools.count()

    def on_mount(self) -> None:
        super().on_mount()
        # Charts take turns in the redraw period (a third of it apart for three charts), so their
        # repaints reach the terminal as small bursts a keypress is not stuck behind.
        period = 1.0 / self.redraw_hz
        offset = (next(self._instances) % 3) * period / 3
        self.set_timer(offset or 0.001, lambda: self.set_interval(period, self._tick, name="chart-redraw"))

    def on_resize(self) -> None:
        self._meta_version += 1  # the built text has the old size; the next tick rebuilds

    def _tick(self) -> None:
        if self.version != self._drawn_version and not self._building and shown(self):
            self.request_redraw()

    def request_redraw(self) -> None:
        """Start a build now (unless one is running; the next tick then catches up)."""
        if self._building:
            return
        self._building = True
        self._build_in_thread(self._spec(), self.version)

    def _spec(self) -> dict:
        width, height = self.size.width or 80, self.size.height or 20
        # One bucket per 2 columns (its min and max): a braille column holds 2 x-dots, and plotext's
        # build time grows with the points it joins (80 points: ~5 ms, 160: ~14 ms at 80x20).
        buckets = max(10, width // 2)
        lines = []
        for name, by_key in self._series.items():
            if name in self.hidden:
                continue
            xs, ys = by_key[self.x_key].view(buckets)
            if self.log_y:  # log10 of the positive points; the ticks are labelled back in y's units
                kept = [(x, math.log10(y)) for x, y in zip(xs, ys) if y > 0]
                xs, ys = [p[0] for p in kept], [p[1] for p in kept]
            if xs:
                lines.append((name, xs, ys, self._style.get(name, {})))
        limits = dict(self.limits)
        if self.log_y:
            limits = {k: math.log10(v) for k, v in limits.items() if v > 0}
        return {"lines": lines, "limits": limits, "title": self.title + (" (log y)" if self.log_y else ""),
                "x_label": self.x_key, "log_y": self.log_y,
                "y_label": self.y_label, "size": (width, height),
                "theme": self._get_plotext_theme_name(self.app.theme)}

    def build_text(self, spec: dict) -> Text | None:
        """plotext -> Text for `spec` (any thread; the chart's one Plot object, one build at a time).
        None when there is nothing to draw."""
        if not spec["lines"]:
            return None
        plt = self.plt
        plt.clear_figure()
        for name, xs, ys, style in spec["lines"]:
            kwargs = {"label": name, "marker": "braille", "yside": style.get("yside", "left")}
            if style.get("color"):
                kwargs["color"] = style["color"]
            plt.plot(xs, ys, **kwargs)
        for y in spec["limits"].values():
            plt.hline(y, "red")
        for side in ("left", "right"):
            ys = [y for _, _, line_ys, style in spec["lines"] if style.get("yside", "left") == side for y in line_ys]
            if side == "left":
                ys += list(spec["limits"].values())
            if ys:
                ticks = axis_ticks(min(ys), max(ys))
                labels = [tick_label(10 ** t if spec.get("log_y") else t) for t in ticks]
                plt.yticks(ticks, labels, yside=side)
        if spec["x_label"] in COUNT_X_KEYS:
            xs = [x for _, line_xs, _, _ in spec["lines"] for x in line_xs]
            ticks = count_ticks(min(xs), max(xs))
            plt.xticks(ticks, [tick_label(t) for t in ticks])
        plt.xlabel(spec["x_label"])
        if spec["y_label"]:
            plt.ylabel(spec["y_label"])
        width, height = spec["size"]
        # The title is ours, centred over the whole chart and wrapped, never dropped: plotext
        # centres it over the plot area only and drops one longer than that (at 80 columns the
        # speed chart lost "tok/s · MFU %").
        title = title_lines(spec["title"], width)
        plt.plotsize(width, max(1, height - len(title)))
        plt._set_size(width, max(1, height - len(title)))  # textual-plotext sets both (its issue #5)
        plt.theme(spec["theme"])
        return Text("\n").join([Text(line, style="bold") for line in title] + [ansi_to_text(plt.build())])

    @work(thread=True, group="chart-redraw", exit_on_error=False)
    def _build_in_thread(self, spec: dict, version: int) -> None:
        with _BUILD_LOCK:
            t0 = time.perf_counter()
            text = self.build_text(spec)
            elapsed = time.perf_counter() - t0
        self.post_message(self.Built(text, version, elapsed))

    @on(Built)
    def _built(self, message: Built) -> None:
        message.stop()
        self._building = False
        self._text = message.text
        self.no_data = message.text is None
        self._drawn_version = message.version
        self.redraws += 1
        self.last_redraw_s = message.elapsed_s
        self.refresh()

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        if event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._building = False
            if event.state == WorkerState.ERROR and event.worker.error is not None:
                self.post_message(WorkerFailed(f"LiveChart#{self.id}", event.worker.error))

    def rebuild_now(self) -> None:
        """A synchronous redraw on the calling thread (benchmarks; tests)."""
        version = self.version
        t0 = time.perf_counter()
        self._text = self.build_text(self._spec())
        self.no_data = self._text is None
        self._drawn_version = version
        self.redraws += 1
        self.last_redraw_s = time.perf_counter() - t0
        self.refresh()


class BarChart(PlotextPlot):
    """Labelled bars (e.g. 24 h token capacity per probe config), redrawn on the same timer rule."""

    def __init__(self, title: str, y_label: str = "", *, redraw_hz: float = REDRAW_HZ, empty: str = "waiting for data",
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.title = title
        self.y_label = y_label
        self.redraw_hz = redraw_hz
        self.empty = empty
        self.bars: dict[str, float] = {}
        self.no_data = True
        self._version = 0
        self._drawn_version = -1
        self.redraws = 0

    def render(self):
        if self.no_data:
            return Text(f"{self.title}\n{self.empty}", style="dim", justify="center")
        return render_plot(self)

    def set_bar(self, label: str, value: float | None) -> None:
        if value is None or not math.isfinite(value):
            return
        self.bars[label] = float(value)
        self._version += 1

    def clear_bars(self) -> None:
        self.bars.clear()
        self._version += 1

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(1.0 / self.redraw_hz, self._tick, name="chart-redraw")
        self.rebuild()

    def _tick(self) -> None:
        if self._version != self._drawn_version and shown(self):
            self.rebuild()

    def rebuild(self) -> None:
        plt = self.plt
        plt.clear_figure()
        self.no_data = not self.bars
        if self.bars:
            plt.bar(list(self.bars), list(self.bars.values()), color="cyan")
            ticks = axis_ticks(0.0, max(self.bars.values()))
            plt.yticks(ticks, [tick_label(t) for t in ticks])
            plt.title(self.title)
        else:
            plt.title(f"{self.title} ({self.empty})")
        if self.y_label:
            plt.ylabel(self.y_label)
        self._drawn_version = self._version
        self.redraws += 1
        self.refresh()
