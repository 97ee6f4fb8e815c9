"""The plan's answer at a glance: cluster size and layout, memory and step-time bars, headroom;
or the structured reason there is no solution, with the closest candidate's bars."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from engine import fmt
from engine.plan import Plan

from app.widgets.meter import meter

BAR_WIDTH = 10


def _bars(c: dict, memory_bytes: float) -> list[Table | Text]:
    """Memory per device against capacity, step time against its budget, for one candidate."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", width=6)
    grid.add_column(width=BAR_WIDTH, overflow="ellipsis", no_wrap=True)
    grid.add_column(justify="right")
    grid.add_column(justify="right", style="dim")  # headroom: 1 - used/available
    grid.add_row("memory", meter(c["bytes_per_device"], memory_bytes, BAR_WIDTH),
                 f"{c['bytes_per_device'] / 1e9:.1f}/{memory_bytes / 1e9:.0f} GB", fmt.pct(c["memory_headroom"]))
    grid.add_row("step", meter(c["t_step_s"], c["t_step_max_s"], BAR_WIDTH),
                 f"{fmt.duration(c['t_step_s'])}/{fmt.duration(c['t_step_max_s'])}", fmt.pct(c["time_headroom"]))
    split = Text.assemble(("       = compute ", "dim"), fmt.duration(c["t_compute_s"]), (" + comm ", "dim"),
                          fmt.duration(c["t_comm_s"]))
    return [grid, split]


def layout_text(c: dict) -> str:
    return f"DP {c['dp']} · TP {c['tp']} · PP {c['pp']}"


def render_result(plan: Plan) -> Group:
    r, hw = plan.result, plan.hardware
    phys = r["diagnostics"]["physics"]
    parts: list = []
    if r["feasible"]:
        s = r["solution"]
        nodes = f"{s['nodes']:,} node{'s' * (s['nodes'] != 1)}"
        parts.append(Text.assemble(("FEASIBLE ", "bold green"), (f"G = {s['G']:,}", "bold"), f" ({nodes})",
                                   (f" · G_min {phys['G_min']:,}", "dim")))
        parts.append(Text(layout_text(s), style="bold"))
        parts += _bars(s, hw.memory_bytes)
        run_s = s["t_step_s"] * phys["n_steps"]
        parts.append(Text.assemble(("run      ", "dim"), f"{fmt.duration(run_s)} · {fmt.count(s['G'] * run_s / 3600)} GPU-h"))
    else:
        reason = r["no_solution_reason"]
        parts.append(Text.assemble(("NO SOLUTION ", "bold red"), (f"({reason['constraint']})", "bold")))
        parts.append(Text(reason["message"]))
        closest = reason.get("closest")
        if closest:
            parts.append(Text.assemble(("closest ", "dim"), f"G = {closest['G']:,} · {layout_text(closest)}"))
            parts += _bars(closest, hw.memory_bytes)
    parts.append(Text(f"{fmt.count(phys['params'])} params · {fmt.count(plan.goal.tokens)} tokens · "
                      f"{fmt.count(phys['n_steps'])} steps", style="dim"))
    return Group(*parts)


class ResultPanel(Static):
    """Shows the latest computed plan; greys out (and says why) while the inputs are invalid."""

    DEFAULT_CSS = """
    ResultPanel { height: auto; padding: 0 1; }
    ResultPanel.-stale { opacity: 60%; }
    """

    def show_plan(self, plan: Plan) -> None:
        self.plan = plan
        self.remove_class("-stale")
        self.update(render_result(plan))

    def mark_stale(self, why: str) -> None:
        """Inputs are invalid: keep the last answer visible but dimmed, with the reason on top."""
        self.add_class("-stale")
        last = render_result(self.plan) if getattr(self, "plan", None) else Text("")
        self.update(Group(Text(why, style="bold yellow"), last))


def render_physics(plan: Plan) -> Text:
    """Step 0 at a glance: what must be true whatever the layout (engine/sizing/physics.py)."""
    phys = plan.result["diagnostics"]["physics"]
    seq = plan.model.seq_len
    return Text.assemble(
        ("Step 0 physics\n", "bold"),
        f"{fmt.count(phys['params'])} params · {fmt.si(phys['flops_per_token'], 'FLOP')}/tok\n",
        ("state ", "dim"), f"{fmt.gb(phys['B_state_min_bytes'], 0)} · {phys['F_total_flop']:.3g} FLOP\n",
        ("batch ", "dim"), f"{phys['global_batch_seqs']:,} x {seq:,} tokens\n",
        ("budget ", "dim"), f"{fmt.duration(phys['t_step_max_s'])}/step · G_min {phys['G_min']:,}",
    )
