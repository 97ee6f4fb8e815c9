"""The plan's answer at a glance (engine/answer.py: the engineering model's, or the seed's with
--seed-model): cluster size and layout, memory and step-time bars, run time, GPU-hours and $; or
the reason there is no solution, with the closest layout's bars. The seed model's answer is one
dim line below, labelled as what it is."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from engine import fmt
from engine.answer import Answer
from engine.plan import Plan

from app.widgets.meter import meter

# The bars' row ("mem  ████████ 79.6/80 GB 0% free") fits the Result panel's 35 columns at 80x24.
BAR_WIDTH = 8


def _bars(a: Answer, memory_bytes: float) -> list[Table | Text]:
    """Memory per device against capacity, step time against its budget, for the answer's layout."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", width=4)
    grid.add_column(width=BAR_WIDTH, overflow="ellipsis", no_wrap=True)
    grid.add_column(justify="right")
    grid.add_column(justify="right", style="dim")  # headroom: 1 - used/available, labelled (a bare "9%" read as a load)
    grid.add_row("mem", meter(a.memory_per_gpu_bytes, memory_bytes, BAR_WIDTH),
                 f"{a.memory_per_gpu_bytes / 1e9:.1f}/{memory_bytes / 1e9:.0f} GB", headroom_text(a.memory_per_gpu_bytes, memory_bytes))
    grid.add_row("step", meter(a.step_time_s, a.t_step_max_s, BAR_WIDTH),
                 f"{fmt.duration(a.step_time_s)}/{fmt.duration(a.t_step_max_s)}", headroom_text(a.step_time_s, a.t_step_max_s))
    return [grid]


def headroom_text(used: float, available: float) -> str:
    """What is left of a limit, as the Compare table's "headroom" column counts it: "9% free", or
    by how much it is exceeded: "12% over"."""
    return f"{fmt.pct(1 - used / available)} free" if used <= available else f"{fmt.pct(used / available - 1)} over"


def layout_text(a: Answer) -> str:
    """DP · TP · PP (CP and EP where > 1, and the interleave v)."""
    v = f" v{a.interleave}" if a.interleave and a.interleave > 1 else ""
    more = "".join(f" · {name} {n}" for name, n in (("CP", a.cp), ("EP", a.ep)) if n and n > 1)
    return f"DP {a.dp} · TP {a.tp} · PP {a.pp}{more}{v}"


def settings_text(a: Answer) -> str:
    """What else tells two layouts of one split apart (engineering model only)."""
    return f"mb {a.micro_batch} · recompute {a.recompute} · ZeRO-{a.zero}" if a.micro_batch is not None else ""


def cost_text(a: Answer) -> str:
    return "n/a (no price: set one)" if a.cost_usd is None else f"${fmt.count(a.cost_usd)} at ${a.price_per_gpu_hour:.3g}/GPU-h"


def seed_text(plan: Plan) -> str:
    """The seed model's answer in one line, labelled as what it is (engine/answer.SEED_NOTE)."""
    r = plan.result
    if r["feasible"]:
        s = r["solution"]
        what = f"G = {s['G']:,} = {s['dp']}x{s['tp']}x{s['pp']}"
    else:
        what = f"no solution ({r['no_solution_reason']['constraint']})"
    return f"seed model: {what} (activations / PP, one η)"


def render_result(plan: Plan) -> Group:
    phys = plan.result["diagnostics"]["physics"]
    a = plan.answer()
    parts: list = []  # (which model answers is the panel's title: PlanTab.show)
    if a.feasible:
        nodes = f"{a.nodes:,} node{'s' * (a.nodes != 1)}"
        parts.append(Text.assemble(("FEASIBLE ", "bold green"), (f"G = {a.gpus:,}", "bold"), f" ({nodes})"))
        parts.append(Text(layout_text(a), style="bold"))
    else:
        parts.append(Text.assemble(("NO SOLUTION ", "bold red"), (f"({a.constraint})", "bold")))
        parts.append(Text(a.message))
        if a.has_layout:
            parts.append(Text.assemble(("closest ", "dim"), f"G = {a.gpus:,} · {layout_text(a)}"))
    if settings_text(a):
        parts.append(Text(settings_text(a)))
    if a.has_layout:
        parts += _bars(a, plan.hardware.memory_bytes)
        parts.append(Text.assemble(("run      ", "dim"), f"{fmt.duration(a.wall_time_s)} · {fmt.count(a.gpu_hours)} GPU-h"))
        parts.append(Text.assemble(("cost     ", "dim"), cost_text(a)))
    if a.model == "engineering":
        parts.append(Text(seed_text(plan), style="dim"))
    # An HF config.json is planned at a training context, not its maximum position (engine/specs.py):
    # say so, as `lsdt plan` does on its `model` line.
    hf = " (HF config: training default, seq field to change)" if "training context default" in plan.model.source else ""
    parts.append(Text(f"{fmt.count(phys['params'])} params · {fmt.count(phys['n_steps'])} steps · seq {plan.model.seq_len:,}{hf}",
                      style="dim"))
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
        # G_min on a line of its own: after the budget it wrapped in the Goal panel's 26 columns,
        # leaving "G_min" at one line's end and its number on the next.
        ("budget ", "dim"), f"{fmt.duration(phys['t_step_max_s'])}/step\n",
        ("G_min ", "dim"), f"{phys['G_min']:,} GPUs at least",
    )
