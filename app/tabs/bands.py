"""The Bands tab: the best nanochat-style model for one GPU in a time window (engine.sizing.bands).

The same call as `lsdt bands`: plan_bands(hardware, hours, depths, ...) -> the per-depth table with
the recommended depth highlighted, the FLOP envelope, the pretrain/SFT split, the sequence-length
curriculum and a pilot run's projected loss. Field values use the input grammar the CLI's argument
types use (engine/inputs.py), so a value means the same thing in both. The pilot's metrics.jsonl is
read in the worker (it can be long), the probe JSON while reading the form; both are cached by
(path, mtime, size) because the form is read on every keystroke.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Label, Select, Static

from engine import fmt, inputs  # the input grammar the CLI uses too (depth lists, fractions)
from engine.errors import UserError
from engine.sizing import bands as B
from engine.sizing.curriculum import parse_curriculum
from engine.sizing.design import DEFAULT_ETA_COMPUTE
from engine.sizing.pilot import PILOT_AXES, PILOT_METRICS, PilotProjection
from engine.sizing.shapes import DEFAULT_HEAD_DIM, DEFAULT_VOCAB, DEFAULT_WINDOW_PATTERN
from engine.specs import builtin_names, load_hardware

from app.adoption import ProbeAdopted, ProbeAdoption
from app.tabs.form_tab import FormTab
from app.widgets.form_field import FormField
from app.widgets.tables import fill_table

# As `lsdt bands` prints them: batch is the device batch the run uses (the curriculum's), "max" the
# largest that fits; memory at that batch; pretrain tokens are what tok/param divides.
COLUMNS = ("depth", "band", "d_model", "params", "memory", "batch", "max", "tok/s", "step", "pretrain", "tok/param")


def _num(text: str, style: str = "") -> Text:
    return Text(text, style=style, justify="right")


def pilot_text(p: PilotProjection) -> Text:
    """The pilot's fit and projection (or its refusal) in the words of `lsdt bands`."""
    first, *rest = p.lines()
    out = Text("pilot     ", style="bold cyan" if p.ok else "bold red")
    out.append(f"{first}\n", style="" if p.ok else "red")
    for line in rest:
        out.append(f"          {line}\n")
    return out


def _read_metrics(path: Path) -> list[dict]:
    """`lsdt bands --pilot`'s reader, imported only once a pilot is given (start-up imports stay few)."""
    from engine.sizing import pilot

    return pilot.read_metrics(path)


class FileCache:
    """One file as an engine reader returns it, kept while its (path, mtime, size) stays the same:
    the form is read on every keystroke, and the probe or pilot file is nearly always unchanged."""

    def __init__(self, reader) -> None:
        self.reader = reader  # path -> value; raises UserError naming the file and what is wrong
        self._key: tuple | None = None
        self._value = None

    def read(self, text: str):
        path = Path(text).expanduser()
        try:
            st = path.stat()
            key = (str(path), st.st_mtime_ns, st.st_size)
        except OSError:
            key = None  # no cache: the reader says what is wrong with the path
        if key is None or key != self._key:
            self._key, self._value = None, None
            self._value = self.reader(path)
            self._key = key
        return self._value


class BandsTab(FormTab):
    HELP_KEYS = (
        ("↑ / ↓ in the table", "highlight a depth (the recommended one at first); Train's ctrl+n takes it"),
        ("any field", "the table recomputes as you type (the same engine as `lsdt bands`)"),
    )
    DEFAULT_CSS = """
    BandsTab { layout: vertical; height: 1fr; }
    BandsTab #bands-form { height: auto; padding: 0 1; }
    BandsTab #bands-form Grid { grid-size: 4; grid-columns: 1.35fr 1fr 1.2fr 1fr; grid-rows: auto; grid-gutter: 0 2; height: auto; }
    BandsTab .select-row { height: 1; }
    BandsTab .select-row Select { width: 1fr; }
    BandsTab #field-b_curriculum, BandsTab #field-b_pilot { column-span: 2; }
    BandsTab #bands-body { height: 1fr; }
    BandsTab #bands-table-box { height: auto; max-height: 10; }
    BandsTab #bands-table { height: auto; }
    BandsTab #bands-notes { height: 1fr; padding: 0 1; }
    BandsTab .form-status { color: $warning; height: auto; padding: 0 1; display: none; }
    BandsTab .form-status.-shown { display: block; }
    BandsTab #bands-body.-stale { opacity: 60%; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._probe_file = FileCache(B.read_probe)  # read while reading the form
        self._pilot_file = FileCache(_read_metrics)  # read in the worker: a metrics.jsonl can be long

    def compose(self) -> ComposeResult:
        # A probe adopted on the Probe tab before this tab was built: start from it.
        adopted: ProbeAdoption | None = self.app.adopted_probe
        hardware_names = builtin_names("hardware")
        hardware = B.DEFAULT_HARDWARE
        if adopted is not None and adopted.hardware in hardware_names:
            hardware = adopted.hardware
        with Vertical(id="bands-form", classes="panel") as form:
            form.border_title = "One GPU, one window (lsdt bands)"
            with Grid():
                with Horizontal(classes="select-row"):
                    yield Label("hardware", classes="field-label")
                    yield Select([(n, n) for n in hardware_names], value=hardware,
                                 allow_blank=False, compact=True, id="b-hardware")
                yield FormField("b_hours", "hours", f"{B.DEFAULT_HOURS:g}")
                yield FormField("b_depths", "depths", ",".join(map(str, B.DEFAULT_DEPTHS)))
                yield FormField("b_seq", "seq len", "2048")
                yield FormField("b_vocab", "vocab", str(DEFAULT_VOCAB))
                yield FormField("b_mfu", "MFU", f"{DEFAULT_ETA_COMPUTE:g}")
                yield FormField("b_sft", "SFT share", f"{B.DEFAULT_SFT_FRACTION:g}")
                yield FormField("b_batch", "batch tok", f"{B.DEFAULT_GLOBAL_BATCH_TOKENS}")
                yield FormField("b_head_dim", "head dim", str(DEFAULT_HEAD_DIM))
                yield FormField("b_kv", "kv heads", placeholder="= heads")
                yield FormField("b_reserve", "reserve", f"{B.DEFAULT_RESERVE_BYTES / 1e9:g}", unit="GB")
                yield FormField("b_window", "window", DEFAULT_WINDOW_PATTERN, placeholder="S/L, e.g. SSSL")
                # --curriculum; empty = the CLI's default (512, 1024, ... up to seq len, equal time shares).
                yield FormField("b_curriculum", "stages", placeholder="512,1024,…,seq len; or SEQ:TIME,…")
                yield FormField("b_min_ratio", "min tok/p", f"{B.NANOCHAT_TOKENS_PER_PARAM[0]:g}")
                yield FormField("b_probe", "probe", str(adopted.path) if adopted else "", placeholder="JSON path")
                yield FormField("b_pilot", "pilot", placeholder="a pilot run's metrics.jsonl")
                with Horizontal(classes="select-row"):
                    yield Label("pilot fit", classes="field-label")
                    yield Select([(m, m) for m in PILOT_METRICS], value=PILOT_METRICS[0],
                                 allow_blank=False, compact=True, id="b-pilot-metric")
                with Horizontal(classes="select-row"):
                    yield Label("against", classes="field-label")
                    yield Select([(a, a) for a in PILOT_AXES], value=PILOT_AXES[0],
                                 allow_blank=False, compact=True, id="b-pilot-axis")
            yield Static("", classes="form-status", markup=False)
        with Vertical(id="bands-body"):
            with Vertical(id="bands-table-box", classes="panel") as box:
                box.border_title = "Depth bands"
                yield DataTable(id="bands-table", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="bands-notes", classes="panel") as notes:
                notes.border_title = "Recommendation"
                yield Static("computing…", id="bands-summary")
                yield Static("", id="bands-verdict", markup=False)

    HEADERS = tuple(_num(c) if i > 1 else c for i, c in enumerate(COLUMNS))

    def on_mount(self) -> None:
        fill_table(self.query_one("#bands-table", DataTable), self.HEADERS, [])
        super().on_mount()

    # ------------------------------------------------------------------ form

    def read_form(self) -> tuple[dict, dict[str, str]]:
        errors: dict[str, str] = {}
        t = self.take
        args = {
            "hardware": t(errors, "b_hardware", lambda: load_hardware(str(self.query_one("#b-hardware", Select).value))),
            "hours": t(errors, "b_hours", lambda: inputs.hours(self.text("b_hours"))),
            "depths": t(errors, "b_depths", lambda: inputs.int_list(self.text("b_depths"))),
            "seq_len": t(errors, "b_seq", lambda: inputs.positive_int(self.text("b_seq"))),
            "vocab_size": t(errors, "b_vocab", lambda: inputs.positive_int(self.text("b_vocab"))),
            "mfu": t(errors, "b_mfu", lambda: inputs.fraction(self.text("b_mfu"))),
            "sft_fraction": t(errors, "b_sft", lambda: inputs.share_below_one(self.text("b_sft"))),
            "global_batch_tokens": t(errors, "b_batch", lambda: inputs.positive_int(self.text("b_batch"))),
            "head_dim": t(errors, "b_head_dim", lambda: inputs.positive_int(self.text("b_head_dim"))),
            "n_kv_head": t(errors, "b_kv", lambda: inputs.positive_int(self.text("b_kv")) if self.text("b_kv").strip() else None),
            "window_pattern": self.text("b_window").strip().upper() or DEFAULT_WINDOW_PATTERN,  # empty = the CLI's default; checked by the engine
            "reserve_bytes": t(errors, "b_reserve", lambda: inputs.gigabytes(self.text("b_reserve")) * 1e9),
            "curriculum": t(errors, "b_curriculum",
                            lambda: parse_curriculum(self.text("b_curriculum")) if self.text("b_curriculum").strip() else None),
            "min_tokens_per_param": t(errors, "b_min_ratio", lambda: inputs.positive_float(self.text("b_min_ratio"))),
            "probe": t(errors, "b_probe", self._read_probe),
            "pilot": self.text("b_pilot").strip() or None,  # a path: read in the worker (engine_call)
            "pilot_metric": str(self.query_one("#b-pilot-metric", Select).value),
            "pilot_axis": str(self.query_one("#b-pilot-axis", Select).value),
        }
        return args, errors

    def _read_probe(self) -> dict | None:
        """The probe file in the field, checked by the engine's reader (`lsdt bands --probe`)."""
        text = self.text("b_probe").strip()
        return self._probe_file.read(text) if text else None

    # The engine's refusals (engine.sizing.bands / shapes, the model's window pattern) name the
    # input in UserError.field; the pilot's file is read here, in engine_call, and named "pilot".
    ERROR_FIELDS = {"pilot": "b_pilot", "probe": "b_probe", "global_batch_tokens": "b_batch", "n_kv_head": "b_kv",
                    "window_pattern": "b_window"}

    @on(ProbeAdopted)
    def _probe_adopted(self, message: ProbeAdopted) -> None:
        """"use in plan" on the Probe tab: plan with its measured tok/s, on the hardware it measured."""
        adoption = message.adoption
        select = self.query_one("#b-hardware", Select)
        if adoption.hardware and adoption.hardware != select.value and adoption.hardware in builtin_names("hardware"):
            select.value = adoption.hardware
        self.query_one("#input-b_probe", Input).value = str(adoption.path)  # Input.Changed recomputes

    def engine_call(self, args: dict) -> B.BandsPlan:
        hardware = args.pop("hardware")
        if args["pilot"] is not None:
            try:
                args["pilot"] = self._pilot_file.read(args["pilot"])
            except UserError as exc:  # the metrics.jsonl's own refusal (read_metrics names the file)
                raise UserError(str(exc), field="pilot") from None
        return B.plan_bands(hardware, **args)

    def show_stale(self, why: str) -> None:
        super().show_stale(why)
        self.query_one("#bands-body").add_class("-stale")

    @property
    def stale(self) -> bool:
        """The table is dimmed: it answers inputs the form no longer holds (the Train tab asks)."""
        return self.query_one("#bands-body").has_class("-stale")

    # ------------------------------------------------------------------ result

    def show(self, r: B.BandsPlan) -> None:
        self.query_one("#bands-body").remove_class("-stale")
        table = self.query_one("#bands-table", DataTable)
        rows, keys = [], []
        rec = r.recommended.depth if r.recommended else None
        fb = r.fallback.depth if r.fallback else None
        for row in r.rows:
            style = "bold reverse" if row.depth == rec else "bold" if row.depth == fb else ""
            mark = "▶ " if row.depth == rec else "  "
            batch = f"{row.device_batch}@{row.seq_len}" if row.fits else "OOM"
            memory = fmt.gb(row.memory_bytes) if row.memory_bytes else "-"
            src = "*" if row.tokens_per_s_source == "probe" else ""
            keys.append(str(row.depth))
            rows.append((
                Text(f"{mark}d{row.depth}", style=style), Text(row.band, style=style),
                _num(f"{row.d_model}", style), _num(fmt.count(row.params), style),
                _num(memory, style), _num(batch, style if row.fits else "red"),
                _num(str(row.max_device_batch) if row.fits else "-", style),
                _num(f"{row.tokens_per_s:,.0f}{src}", style),
                _num(fmt.duration(row.step_time_s), style), _num(fmt.count(row.pretrain_tokens), style),
                _num(f"{row.tokens_per_param:.1f}", style),
            ))
        fill_table(table, self.HEADERS, rows, keys)
        box = self.query_one("#bands-table-box")
        box.border_title = (f"{r.hours:g} h on one {r.hardware}: {fmt.gb(r.usable_memory_bytes)} usable, "
                            f"{fmt.si(r.sustained_flops, 'FLOP/s')} sustained"
                            + (f" · tok/s* measured on {r.probe_device}" if r.measured_rows else ""))
        if rec is not None:
            table.move_cursor(row=[x.depth for x in r.rows].index(rec))
        self.query_one("#bands-summary", Static).update(self._summary(r))
        # A refused pilot is a result (the plan stands; the reason is under RECOMMEND), flagged at
        # its field in one line: the reason itself runs to several lines in a grid cell.
        p = r.pilot
        if p is not None and not p.ok:
            self.query_one("#field-b_pilot", FormField).set_error("pilot refused: see Recommendation")

    def _summary(self, r: B.BandsPlan) -> Text:
        s = r.split
        out = Text()
        if r.probe_device:
            out.append("measured  ", style="bold cyan")
            out.append(f"tok/s of {r.measured_rows} of {len(r.rows)} depths measured by the probe on {r.probe_device} (marked *); "
                       "the others are estimates\n")
        if r.recommended:
            rc, fb = r.recommended, r.fallback
            out.append("RECOMMEND ", style="bold green")
            out.append(f"d{rc.depth} (band {rc.band}): ", style="bold")
            out.append(rc.reason + "\n")
            out.append("fallback  ", style="dim")
            out.append((f"d{fb.depth} (band {fb.band}): {fb.reason}" if fb else r.no_fallback_reason()) + "\n")
        else:
            out.append("NO DEPTH FITS ", style="bold red")
            out.append("in memory: try shallower depths, a shorter seq or a smaller vocab\n")
        if r.pilot:
            out.append_text(pilot_text(r.pilot))  # right under the recommendation: its expected loss
        out.append("envelope  ", style="dim")
        out.append(f"{r.envelope_flop:.3g} FLOP; pretrain {s.pretrain_fraction:.0%} ({fmt.duration(s.pretrain_s)}) / "
                   f"SFT + eval {s.sft_fraction:.0%} ({fmt.duration(s.sft_s)})\n")
        c = r.curriculum
        if c:
            out.append("curriculum", style="dim")
            note = r.curriculum_note(fmt.count)
            out.append(f" d{c.depth}: {fmt.count(c.tokens)} pretraining tokens in {fmt.duration(c.time_s)}"
                       + (f" ({note})" if note else "") + "\n")
            for st in c.stages:
                fit = f"batch {st.device_batch} x {st.grad_accum}" if st.fits else "OOM"
                out.append(f"  seq {st.seq_len:>5}  {st.time_fraction:>4.0%}  {fmt.duration(st.time_s):>8}  "
                           f"{st.tokens_per_s:>8,.0f} tok/s  {fmt.count(st.tokens):>6}  {fit}\n")
        return out

    @on(DataTable.RowHighlighted, "#bands-table")
    def _row(self, event: DataTable.RowHighlighted) -> None:
        if self.result is None or event.row_key is None:
            return
        row = next((x for x in self.result.rows if str(x.depth) == event.row_key.value), None)
        if row is not None:
            self.query_one("#bands-verdict", Static).update(f"d{row.depth}: {row.verdict}")
