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
    objective = "gpus"      # gpus | time | cost (engine/sizing/objective.py); absent in old plans
    price_per_gpu_hour = 2.5  # only when set by hand (else the [hardware] price_per_hour)
    [efficiency]            # eta_compute, eta_fabric: the seed model's (Step 1)
    [answer]                # THE answer (engine/answer.py): the engineering model's, or the seed's with --seed-model
    [result] ...            # the seed model (Step 1): feasible, and the solution or the reason there is none
    [refined]               # Step 2 (engine/sizing/search.py): feasible, mode, stats
    [refined.efficiency]    # the engineering model's efficiencies (the hardware profile's, --eta-gemm or --calibrate)
    [[refined.layouts]]     # the best layouts, fastest first (absent with --seed-model)
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomli_w

from engine import __version__, fmt
from engine.answer import Answer, from_engineering, from_seed
from engine.atomic import write_atomic
from engine.errors import UserError
from engine.sizing.design import DEFAULT_ETA_COMPUTE, DEFAULT_ETA_FABRIC, run_design
from engine.sizing.efficiency import Efficiency, efficiency_for
from engine.sizing.objective import OBJECTIVES
from engine.sizing.physics import physics
from engine.specs import Goal, HardwareSpec, ModelSpec, goal_from_dict, hardware_from_dict, model_from_dict, read_toml

PLAN_KIND = "cluster-plan"
_TOP_KEYS = {"lsdt_version", "kind", "G", "objective", "price_per_gpu_hour", "model", "hardware", "goal", "efficiency",
             "answer", "result", "refined"}
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
    # hardware profile's, engine/sizing/efficiency.py).
    refine: bool = True
    efficiency_refined: Efficiency | None = None
    refined: dict = field(default_factory=dict, compare=False)  # refined_summary(), after compute()
    saved_refined: dict = field(default_factory=dict, compare=False)  # the [refined] table a loaded file held
    objective: str = "gpus"  # auto-size: fewest GPUs | shortest run | lowest cost (engine/sizing/objective.py)
    price_per_gpu_hour: float | None = None  # $ per GPU-hour set by hand; None: the hardware profile's price
    saved_answer: dict = field(default_factory=dict, compare=False)  # the [answer] table a loaded file held

    def compute(self) -> "Plan":
        """Run Step 0 + Step 1 (and Step 2 unless refine=False); a new Plan with results filled."""
        bundle = physics(self.model, self.hardware, self.goal)  # refuses impossible batches first
        check_goal(self)
        design = run_design(bundle, self.G, self.eta_compute, self.eta_fabric)
        refined = self.compute_refined() if self.refine else {}
        done = replace(self, result=design, refined=refined)
        answer = done.answer()
        if answer.cost_usd is not None and not math.isfinite(answer.cost_usd):  # --price-per-gpu-hour 1e308: "$inf"
            raise UserError(f"price_per_gpu_hour = {answer.price_per_gpu_hour:g} makes the cost of {answer.gpu_hours:,.3g} GPU-hours "
                            f"overflow; accepted: a price below {sys.float_info.max / answer.gpu_hours:.3g}",
                            field="price_per_gpu_hour")
        return done

    @property
    def price(self) -> float | None:
        """$ per GPU-hour: set by hand, else the hardware profile's list price, else unknown."""
        return self.price_per_gpu_hour if self.price_per_gpu_hour is not None else self.hardware.price_per_hour

    def answer(self) -> Answer:
        """THE answer (engine/answer.py): the engineering model's, or the seed's with refine=False."""
        if not self.refine or not self.refined:
            return from_seed(self.result, self.result["diagnostics"]["physics"]["n_steps"], self.price)
        problem = None
        if self.refined["stats"]["space"] == 0:  # not one layout to try: the cluster has no split
            problem = no_split_message(self)
        return from_engineering(self.refined, problem, self.hardware.gpus_per_node, self.price, self.objective)

    def refined_efficiency(self) -> Efficiency:
        return self.efficiency_refined or efficiency_for(self.hardware)

    def compute_refined(self) -> dict:
        """Step 2: the best refined layouts (flat dicts of REFINED_LAYOUT_KEYS) + search stats."""
        from engine.sizing.objective import search_objective  # Step 2 only when asked for

        eff = self.refined_efficiency()
        layouts, stats = search_objective(self.model, self.hardware, self.goal, self.G, REFINED_TOP, eff, self.objective)
        flat = []
        for r in layouts:
            row = {**r["chosen"], **r, "bubble_fraction": r["breakdown"]["bubble_fraction"],
                   "exposed_comm_s": r["breakdown"]["exposed_comm_s"]}
            flat.append({k: row[k] for k in REFINED_LAYOUT_KEYS if row.get(k) is not None})
        return {
            "mode": stats["mode"],
            "feasible": bool(stats["feasible"]),
            "efficiency": eff.to_dict(),
            "stats": {k: stats[k] for k in ("splits", "space", "memory_checks", "timed", "sizes")},
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
        doc["objective"] = self.objective
        if self.price_per_gpu_hour is not None:
            doc["price_per_gpu_hour"] = self.price_per_gpu_hour
        doc["model"] = self.model.to_dict()
        doc["hardware"] = self.hardware.to_dict()
        doc["goal"] = self.goal.to_dict()
        doc["efficiency"] = {"eta_compute": self.eta_compute, "eta_fabric": self.eta_fabric}
        if self.result:
            doc["answer"] = _drop_none(self.answer().to_dict())
            doc["result"] = _drop_none(self.summary())
        if self.refined:
            doc["refined"] = _drop_none(self.refined)
        elif self.efficiency_refined is not None:
            doc["refined"] = {"efficiency": self.efficiency_refined.to_dict()}
        return tomli_w.dumps(doc)

    def save(self, path: str | Path) -> Path:
        return write_atomic(path, self.to_toml())


def check_goal(plan: Plan) -> None:
    """Goals that describe no training run, refused with the field and the real reason."""
    seqs = plan.goal.global_batch_tokens // plan.model.seq_len
    batch = seqs * plan.model.seq_len
    if seqs >= 1 and plan.goal.tokens < batch:
        raise UserError(
            f"tokens = {fmt.count(plan.goal.tokens)} is less than one global batch ({batch:,} tokens = {seqs:,} sequences "
            f"of {plan.model.seq_len:,}): not one optimizer step; accepted: at least {fmt.count(batch)} tokens, or a smaller batch"
        )


def no_split_message(plan: Plan) -> str:
    """Why G (or any G) has no DP x TP x PP split at all (the engineering model's split rules)."""
    from engine.sizing.search import tp_options

    seqs = plan.goal.global_batch_tokens // plan.model.seq_len
    one_node = "" if plan.hardware.inter_node_bw is not None else (
        f"; {plan.hardware.name} has no inter_node_bw, so at most {plan.hardware.gpus_per_node} GPUs (one node)")
    where = f"G = {plan.G:,} has" if plan.G is not None else "no G has"
    return (f"layout: {where} no valid DP x TP x PP x CP x EP split: TP in {{{', '.join(map(str, tp_options(plan.model, plan.hardware)))}}} "
            f"(divides the heads and the node), PP at most n_layer = {plan.model.n_layer} stages (the first and last may "
            f"hold fewer layers), DP at most the global batch of {seqs:,} sequences (rounded down to a multiple of DP), "
            f"CP divides the sequence, EP divides the experts{one_node}")


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
    objective = doc.get("objective", "gpus")
    if objective not in OBJECTIVES:
        raise UserError(f"{where}: objective = {objective!r}; accepted: {' | '.join(OBJECTIVES)}")
    price = doc.get("price_per_gpu_hour")
    if price is not None and (isinstance(price, bool) or not isinstance(price, (int, float)) or not 0 <= price < math.inf):
        raise UserError(f"{where}: price_per_gpu_hour = {price!r}; accepted: a number of dollars >= 0")
    G = doc.get("G")
    if G is not None and (isinstance(G, bool) or not isinstance(G, int) or G < 1):
        raise UserError(f"{where}: G = {G!r}; accepted: an integer >= 1")
    refined = doc.get("refined", {})
    if not isinstance(refined, dict):
        raise UserError(f"{where}: [refined] must be a table")
    saved_answer = doc.get("answer", {})
    if not isinstance(saved_answer, dict):
        raise UserError(f"{where}: [answer] must be a table")
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
        objective=objective,
        price_per_gpu_hour=None if price is None else float(price),
        saved_answer=saved_answer,
    )


def load_plan(path: str | Path) -> Plan:
    """Read a saved plan (its stored result is kept in `saved`; call .compute() to re-run)."""
    return plan_from_dict(read_toml(Path(path)), str(path))
