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
from engine.sizing.physics import physics
from engine.specs import Goal, HardwareSpec, ModelSpec, goal_from_dict, hardware_from_dict, model_from_dict, read_toml

PLAN_KIND = "cluster-plan"
_TOP_KEYS = {"lsdt_version", "kind", "G", "model", "hardware", "goal", "efficiency", "result"}


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

    def compute(self) -> "Plan":
        """Run Step 0 + Step 1 on the inputs; a new Plan with `result` filled."""
        design = run_design(physics(self.model, self.hardware, self.goal), self.G, self.eta_compute, self.eta_fabric)
        return replace(self, result=design)

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
    return Plan(
        model=model_from_dict(doc["model"], f"{where} [model]"),
        hardware=hardware_from_dict(doc["hardware"], f"{where} [hardware]"),
        goal=goal_from_dict(doc["goal"], f"{where} [goal]"),
        G=G,
        eta_compute=float(eff.get("eta_compute", DEFAULT_ETA_COMPUTE)),
        eta_fabric=float(eff.get("eta_fabric", DEFAULT_ETA_FABRIC)),
        saved=doc.get("result", {}),
    )


def load_plan(path: str | Path) -> Plan:
    """Read a saved plan (its stored result is kept in `saved`; call .compute() to re-run)."""
    return plan_from_dict(read_toml(Path(path)), str(path))
