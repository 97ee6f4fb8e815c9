"""Tables of candidate layouts: the engine's ranked top layouts, and the pinned designs the user
compares side by side. Columns are aligned numbers with units."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Label, Static

from engine import fmt
from engine.sizing.refine import layout_from

from app.widgets.tables import fill_table


def _num(text: str) -> Text:
    return Text(text, justify="right")


class TopLayouts(DataTable):
    """The search's best candidates (Step 1's search_trace.top, or the refined search's)."""

    DEFAULT_CSS = "TopLayouts { height: auto; max-height: 8; }"

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        # Short headers: this table shares a 36-column panel at 100x30 (the help screen spells them out).
        self.show([])

    def show(self, candidates: list[dict]) -> None:
        rows = []
        for c in candidates:
            head = min(c["memory_headroom"], c["time_headroom"])
            rows.append((_num(f"{c['G']:,}"), f"{c['dp']}x{c['tp']}x{c['pp']}", _num(fmt.gb(c["bytes_per_device"])),
                         _num(fmt.duration(c["t_step_s"])), _num(fmt.pct(head))))
        fill_table(self, (_num("G"), "layout", _num("mem"), _num("step"), _num("room")), rows)


class RefinedLayouts(DataTable):
    """The refined engineering model's best layouts (Plan.refined["layouts"]): fastest first."""

    DEFAULT_CSS = "RefinedLayouts { height: auto; max-height: 7; }"

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.layouts: list[dict] = []
        # Short headers: the table shares a ~42-column panel at 100x30; the row detail line spells it out.
        self.show([])

    def show(self, layouts: list[dict]) -> None:
        self.layouts = layouts
        rows = []
        for i, r in enumerate(layouts):
            c = r  # flat: engine.plan.REFINED_LAYOUT_KEYS
            late = not r["meets_deadline"]
            step = Text(fmt.duration(r["step_time_s"]), style="red" if late else "", justify="right")
            mem = Text(fmt.gb(r["memory_per_gpu_bytes"]), style="" if r["fits"] else "red", justify="right")
            # What tells two rows apart is on the row: the split (DP x TP x PP x CP x EP; older saved
            # plans: cp = ep = 1), interleave v, recompute and ZeRO (rows once read "8 4x1x2 1 53.4 s 57%" x3).
            lay = layout_from(c)
            v = f" v{c['interleave']}" if c["interleave"] > 1 else ""
            rows.append((_num(f"{c['gpus']:,}"), f"{lay.dp}x{lay.tp}x{lay.pp}x{lay.cp}x{lay.ep}{v}", _num(str(c["micro_batch"])),
                         f"{_RECOMPUTE_SHORT.get(c['recompute'], c['recompute'])}/Z{c['zero']}", step,
                         _num(fmt.pct(r["mfu"])), mem))
        fill_table(self, (_num("G"), "layout", _num("mb"), "rc/ZeRO", _num("step"), _num("MFU"), _num("mem")), rows,
                   keys=[str(i) for i in range(len(rows))])


_RECOMPUTE_SHORT = {"none": "-", "selective": "sel", "full": "full"}


def refined_detail(r: dict) -> str:
    """One line with what the table leaves out: interleave, recompute, ZeRO, SP, uneven stages,
    offload, a rounded batch, deadline."""
    c = r
    parts = [f"v{c['interleave']}" if c["pp"] > 1 else "no PP", f"recompute {c['recompute']}", f"ZeRO-{c['zero']}",
             "SP" if c["sequence_parallel"] else "no SP"]
    lay = layout_from(c)
    if lay.stages:
        parts.append(f"stages {lay.stages}")
    if lay.offload:
        parts.append(f"offload {lay.offload}")
    if c.get("global_batch_used") and c["global_batch_used"] != c.get("global_batch"):
        parts.append(f"batch {c['global_batch_used']:,} of {c['global_batch']:,}")
    if not r["meets_deadline"]:
        parts.append("misses deadline")
    return " · ".join(parts)


class RefinedSection(Vertical):
    """Title, the refined table and the detail line of its highlighted row. May mount after the
    first answer (it is lazy: not in the first frame), so it also pulls the latest state on mount."""

    DEFAULT_CSS = """
    RefinedSection { height: auto; }
    RefinedSection #refined-detail { height: auto; padding: 0 0 0 1; color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        yield Label("top layouts (engineering model)", id="top-title", classes="section-title")
        yield RefinedLayouts(id="refined-layouts")
        yield Static("", id="refined-detail", markup=False)

    def on_mount(self) -> None:
        for node in self.ancestors:
            state = getattr(node, "refined_state", None)
            if state is not None:
                self.show(*state)
                break

    def show(self, layouts: list[dict], error: str | None) -> None:
        self.query_one(RefinedLayouts).show(layouts)
        detail = self.query_one("#refined-detail", Static)
        if error:
            detail.update(f"refined model: {error}")
        elif not layouts:
            detail.update("refined model: no layout fits in memory")
        else:
            detail.update(refined_detail(layouts[0]))

    @on(DataTable.RowHighlighted, "#refined-layouts")
    def _row(self, event: DataTable.RowHighlighted) -> None:
        layouts = self.query_one(RefinedLayouts).layouts
        index = int(event.row_key.value)
        if index < len(layouts):
            self.query_one("#refined-detail", Static).update(refined_detail(layouts[index]))


COMPARE_COLUMNS = ("#", "model", "hardware", "mode", "G", "nodes", "DPxTPxPP", "mem/dev", "step / budget", "headroom",
                   "run", "GPU-h", "$")


class CompareTable(DataTable):
    """Pinned designs, one row each, so several plans line up column by column (each row is the
    plan's answer, engine/answer.py: what its header showed)."""

    DEFAULT_CSS = "CompareTable { height: 1fr; }"
    BINDINGS = [Binding("delete", "remove_row", "remove pinned")]

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns(*COMPARE_COLUMNS)

    def add_plan(self, index: int, plan) -> None:
        a = plan.answer()
        mode = f"G={plan.G}" if plan.G else "auto" if plan.objective == "gpus" else f"auto/{plan.objective}"
        verdict = "" if a.feasible else f"no ({a.constraint})"
        if not a.has_layout:
            cells = ["-"] * 9
            cells[5] = verdict  # the headroom column, as with a closest layout
        else:
            head = min(1 - a.memory_per_gpu_bytes / plan.hardware.memory_bytes, 1 - a.step_time_s / a.t_step_max_s)
            cells = [f"{a.gpus:,}", f"{a.nodes:,}", f"{a.dp}x{a.tp}x{a.pp}", fmt.gb(a.memory_per_gpu_bytes),
                     f"{fmt.duration(a.step_time_s)} / {fmt.duration(a.t_step_max_s)}",
                     fmt.pct(head) if a.feasible else verdict, fmt.duration(a.wall_time_s), fmt.count(a.gpu_hours),
                     "n/a" if a.cost_usd is None else fmt.count(a.cost_usd)]
        row = [str(index), plan.model.name, plan.hardware.name, mode, *cells]
        self.add_row(*[_num(v) if i in (0, 4, 5, 7, 8, 9, 10, 11, 12) else v for i, v in enumerate(row)], key=str(index))

    def action_remove_row(self) -> None:
        if self.row_count:
            self.remove_row(self.coordinate_to_cell_key(self.cursor_coordinate).row_key)
