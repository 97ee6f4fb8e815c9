"""A cluster plan = its inputs in full + its results; saved and loaded as TOML.

A plan file stands alone: it holds the model, hardware and goal with every key resolved (not just
profile names, which may change), the efficiencies, the mode, the results and the LSDT version.
Loading it and re-running gives the same numbers (a test pins this).

    lsdt_version = "0.1.0"
    kind = "cluster-plan"
    G = 128                 # absent in auto-size mode
    [model] ...             # every ModelSpec key
    [hardware] ...          # every HardwareSpec key that is known
    [goal] ...              # tokens, deadline_s, global_batch_tokens, precision
    [efficiency]            # eta_compute, eta_fabric
    [result] ...            # feasible, and the solution or the reason there is none
    [refined]               # Step 2 (engine/sizing/search.py): feasible, mode, stats
    [refined.efficiency]    # the engineering model's efficiencies (generation, --eta-compute or --calibrate)
    [[refined.layouts]]     # the best layouts, fastest first (absent with --seed-model)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomli_w

from engine import __version__
from engine.atomic import write_atomic
from engine.errors import UserError
from engine.sizing.design import DEFAULT_ETA_COMPUTE, DEFAULT_ETA_FABRIC, run_design
from engine.sizing.efficiency import Efficiency, efficiency_for
from engine.sizing.physics import physics
from engine.specs import Goal, HardwareSpec, ModelSpec, goal_from_dict, hardware_from_dict, model_from_dict, read_toml

PLAN_KIND = "cluster-plan"
_TOP_KEYS = {"lsdt_version", "kind", "G", "model", "hardware", "goal", "efficiency", "result", "refined"}
REFINED_TOP = 5  # refined layouts a plan keeps
# The flat keys of one refined layout in a plan file and in `lsdt plan --json` (refined.layouts).
REFINED_LAYOUT_KEYS = (
    "gpus", "dp", "tp", "pp", "micro_batch", "recompute", "zero", "interleave", "sequence_parallel",
    "step_time_s", "t_step_max_s", "meets_deadline", "wall_time_s", "gpu_hours", "tokens_per_s_per_gpu",
    "mfu", "model_tflops_per_gpu", "hardware_tflops_per_gpu", "memory_per_gpu_bytes", "fits", "bubble_fraction",
    "exposed_comm_s",
    # The 2026 dimensions (engine/sizing/refine.Layout); None stages (even split) are left out of files.
    "cp", "ep", "first_stage_layers", "last_stage_layers", "offload_optimizer", "offload_weights",
    "offload_activations", "global_batch", "global_batch_used",
)


@dataclass(frozen=True)
class Plan:
    model: ModelSpec
    hardware: HardwareSpec
    goal: Goal
    G: int | None = None
    eta_compute: float = DEFAULT_ETA_COMPUTE
    eta_fabric: float = DEFAULT_ETA_FABRIC
    result: dict = field(default_factory=dict, compare=False)  # run_design's dict, after compute()
    saved: dict = field(default_factory=dict, compare=False)  # the [result] table a loaded file held
    # Step 2 (additive): run the engineering-model search too, with these efficiencies (None: the
    # hardware generation's, engine/sizing/efficiency.py).
    refine: bool = True
    efficiency_refined: Efficiency | None = None
    refined: dict = field(default_factory=dict, compare=False)  # refined_summary(), after compute()
    saved_refined: dict = field(default_factory=dict, compare=False)  # the [refined] table a loaded file held

    def compute(self) -> "Plan":
        """Run Step 0 + Step 1 (and Step 2 unless refine=False); a new Plan with results filled."""
        design = run_design(physics(self.model, self.hardware, self.goal), self.G, self.eta_compute, self.eta_fabric)
        refined = self.compute_refined() if self.refine else {}
        return replace(self, result=design, refined=refined)

    def refined_efficiency(self) -> Efficiency:
        return self.efficiency_refined or efficiency_for(self.hardware)

    def compute_refined(self) -> dict:
        """Step 2: the best refined layouts (flat dicts of REFINED_LAYOUT_KEYS) + search stats."""
        from engine.sizing.search import search_with_stats  # Step 2 only when asked for

        eff = self.refined_efficiency()
        layouts, stats = search_with_stats(self.model, self.hardware, self.goal, self.G, top=REFINED_TOP, efficiency=eff)
        flat = []
        for r in layouts:
            row = {**r["chosen"], **r, "bubble_fraction": r["breakdown"]["bubble_fraction"],
                   "exposed_comm_s": r["breakdown"]["exposed_comm_s"]}
            flat.append({k: row[k] for k in REFINED_LAYOUT_KEYS if row.get(k) is not None})
        return {
            "mode": stats["mode"],
            "feasible": bool(stats["feasible"]),
            "efficiency": eff.to_dict(),
            "stats": {k: stats[k] for k in ("splits", "space", "memory_checks", "timed")},
            "layouts": flat,
        }

    def summary(self) -> dict:
        """The result in the flat form a plan file stores: the solution or the reason."""
        r = self.result
        if not r:
            return {}
        if r["feasible"]:
            return {"feasible": True, **r["solution"]}
        reason = r["no_solution_reason"]
        out = {"feasible": False, "constraint": reason["constraint"], "message": reason["message"]}
        if reason.get("closest"):
            out["closest"] = reason["closest"]
        return out

    def to_toml(self) -> str:
        doc: dict[str, Any] = {"lsdt_version": __version__, "kind": PLAN_KIND}
        if self.G is not None:
            doc["G"] = self.G
        doc["model"] = self.model.to_dict()
        doc["hardware"] = self.hardware.to_dict()
        doc["goal"] = self.goal.to_dict()
        doc["efficiency"] = {"eta_compute": self.eta_compute, "eta_fabric": self.eta_fabric}
        if self.result:
            doc["result"] = _drop_none(self.summary())
        if self.refined:
            doc["refined"] = _drop_none(self.refined)
        elif self.efficiency_refined is not None:
            doc["refined"] = {"efficiency": self.efficiency_refined.to_dict()}
        return tomli_w.dumps(doc)

    def save(self, path: str | Path) -> Path:
        return write_atomic(path, self.to_toml())


def _drop_none(value: Any) -> Any:
    """TOML has no null: leave unknown values out."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def plan_from_dict(doc: dict, where: str) -> Plan:
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise UserError(f"{where}: unknown key '{unknown[0]}'; accepted: {', '.join(sorted(_TOP_KEYS))}")
    if doc.get("kind", PLAN_KIND) != PLAN_KIND:
        raise UserError(f"{where}: kind = {doc.get('kind')!r}; accepted: {PLAN_KIND!r}")
    for section in ("model", "hardware", "goal"):
        if not isinstance(doc.get(section), dict):
            raise UserError(f"{where}: missing table [{section}]")
    eff = doc.get("efficiency", {})
    if not isinstance(eff, dict) or set(eff) - {"eta_compute", "eta_fabric"}:
        raise UserError(f"{where}: [efficiency] accepts only eta_compute and eta_fabric")
    for key in ("eta_compute", "eta_fabric"):
        value = eff.get(key, DEFAULT_ETA_COMPUTE if key == "eta_compute" else DEFAULT_ETA_FABRIC)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value <= 1) or math.isnan(value):
            raise UserError(f"{where}: efficiency.{key} = {value!r}; accepted: a number in (0, 1]")
    G = doc.get("G")
    if G is not None and (isinstance(G, bool) or not isinstance(G, int) or G < 1):
        raise UserError(f"{where}: G = {G!r}; accepted: an integer >= 1")
    refined = doc.get("refined", {})
    if not isinstance(refined, dict):
        raise UserError(f"{where}: [refined] must be a table")
    eff_refined = None
    if "efficiency" in refined:
        raw = refined["efficiency"]
        keys = set(Efficiency.__dataclass_fields__)
        if not isinstance(raw, dict) or set(raw) - keys:
            raise UserError(f"{where}: [refined.efficiency] accepts only {', '.join(sorted(keys))}")
        try:
            eff_refined = Efficiency(**raw)
        except TypeError:
            raise UserError(f"{where}: [refined.efficiency] needs eta_gemm, eta_mem, eta_intra, eta_inter") from None
    return Plan(
        model=model_from_dict(doc["model"], f"{where} [model]"),
        hardware=hardware_from_dict(doc["hardware"], f"{where} [hardware]"),
        goal=goal_from_dict(doc["goal"], f"{where} [goal]"),
        G=G,
        eta_compute=float(eff.get("eta_compute", DEFAULT_ETA_COMPUTE)),
        eta_fabric=float(eff.get("eta_fabric", DEFAULT_ETA_FABRIC)),
        saved=doc.get("result", {}),
        efficiency_refined=eff_refined,
        saved_refined=refined,
    )


def load_plan(path: str | Path) -> Plan:
    """Read a saved plan (its stored result is kept in `saved`; call .compute() to re-run)."""
    return plan_from_dict(read_toml(Path(path)), str(path))
