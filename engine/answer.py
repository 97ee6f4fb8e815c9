"""The plan's one answer: what `lsdt plan`'s `result` line, its exit code, `--json`'s top level,
the Plan tab's header and status bar, Compare and a saved plan's [answer] all show.

It is the engineering model's (Step 2, engine/sizing/search.py) best layout, or, with
`--seed-model`, the seed's simple Step-1 model (engine/sizing/design.py). The two differ by
design: the seed divides the activations by PP and applies one eta_compute to all compute, while
the engineering model keeps each pipeline stage's in-flight micro-batches, picks recompute and
ZeRO, and times GEMMs, memory-bound kernels, bubbles and link tiers separately.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from engine import fmt
from engine.sizing.refine import layout_text

SEED_NOTE = "seed model: activations / PP, one eta_compute for all compute, no recompute or ZeRO"


@dataclass(frozen=True)
class Answer:
    """One layout (the answer, or the closest miss) and its run. Unknown is None ("n/a")."""

    model: str  # "engineering" | "seed"
    feasible: bool
    constraint: str | None = None  # why not: "layout" | "memory" | "time"; None when feasible
    message: str = ""  # the reason in one line, when not feasible
    gpus: int | None = None  # the layout shown (the closest one when not feasible)
    nodes: int | None = None
    dp: int | None = None
    tp: int | None = None
    pp: int | None = None
    cp: int | None = None  # engineering model only: context and expert parallel degrees
    ep: int | None = None
    layout: str = ""  # engineering model only: the full layout line (refine.Layout.text())
    micro_batch: int | None = None  # engineering model only
    recompute: str | None = None
    zero: int | None = None
    interleave: int | None = None
    step_time_s: float | None = None
    t_step_max_s: float | None = None
    wall_time_s: float | None = None
    gpu_hours: float | None = None
    memory_per_gpu_bytes: float | None = None
    mfu: float | None = None
    price_per_gpu_hour: float | None = None  # $ per GPU-hour; None: no price known
    cost_usd: float | None = None
    objective: str = "gpus"

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def has_layout(self) -> bool:
        return self.gpus is not None


def _money(answer_fields: dict, price: float | None) -> dict:
    hours = answer_fields.get("gpu_hours")
    return {"price_per_gpu_hour": price, "cost_usd": hours * price if hours is not None and price is not None else None}


def from_engineering(refined: dict, layout_problem: str | None, gpus_per_node: int, price: float | None,
                     objective: str) -> Answer:
    """The engineering model's answer from Plan.refined (flat layouts, best first). `layout_problem`
    is the message when no split of the cluster exists at all (so no layout was tried)."""
    layouts = refined.get("layouts", [])
    if not layouts:
        if layout_problem:
            return Answer("engineering", False, "layout", layout_problem, objective=objective)
        return Answer("engineering", False, "memory", "memory: no layout fits in device memory "
                      "(even with full recompute and ZeRO-3)", objective=objective)
    c = layouts[0]
    fields = {k: c[k] for k in ("gpus", "dp", "tp", "pp", "micro_batch", "recompute", "zero", "interleave",
                                "step_time_s", "t_step_max_s", "wall_time_s", "gpu_hours", "memory_per_gpu_bytes", "mfu")}
    fields["nodes"] = -(-c["gpus"] // gpus_per_node)
    fields.update(cp=c.get("cp", 1), ep=c.get("ep", 1), layout=layout_text(c))
    fields.update(_money(fields, price))
    if refined["feasible"]:
        return Answer("engineering", True, objective=objective, **fields)
    message = (f"time: the fastest layout that fits needs a {fmt.duration(c['step_time_s'])} step, "
               f"{c['step_time_s'] / c['t_step_max_s']:.3g}x the {fmt.duration(c['t_step_max_s'])} budget")
    return Answer("engineering", False, "time", message, objective=objective, **fields)


def from_seed(result: dict, n_steps: int, price: float | None) -> Answer:
    """The seed model's (Step 1, run_design) answer."""
    reason = result["no_solution_reason"]
    c = result["solution"] if result["feasible"] else (reason or {}).get("closest")
    fields: dict = {}
    if c:
        wall = c["t_step_s"] * n_steps
        fields = {"gpus": c["G"], "nodes": c["nodes"], "dp": c["dp"], "tp": c["tp"], "pp": c["pp"],
                  "step_time_s": c["t_step_s"], "t_step_max_s": c["t_step_max_s"], "wall_time_s": wall,
                  "gpu_hours": c["G"] * wall / 3600.0, "memory_per_gpu_bytes": c["bytes_per_device"]}
        fields.update(_money(fields, price))
    if result["feasible"]:
        return Answer("seed", True, **fields)
    return Answer("seed", False, reason["constraint"], reason["message"], **fields)

