"""Saved plans on disk: where they live, what a valid name is, and each file's key numbers.

Textual-free so it is unit-tested directly. The directory is `saved_plans/` under the working
directory, or $LSDT_PLANS_DIR, or what `make_app(plans_dir=...)` is given (tests use a tmp dir).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from engine import fmt
from engine.errors import UserError
from engine.plan import Plan, load_plan

PLANS_DIR_ENV = "LSDT_PLANS_DIR"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def default_plans_dir() -> Path:
    return Path(os.environ.get(PLANS_DIR_ENV) or Path.cwd() / "saved_plans")


def plan_path(plans_dir: Path, name: str) -> Path:
    """The file a plan named `name` is saved to; the name becomes the file stem."""
    name = name.strip()
    if name.endswith(".toml"):
        name = name[: -len(".toml")]
    if not _NAME.match(name):
        raise UserError(
            f"plan name {name!r}; accepted: 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return plans_dir / f"{name}.toml"


def suggest_name(plan: Plan) -> str:
    """model-on-hardware, with the fixed G when there is one: 'llama-13b-h100-sxm-G512'."""
    base = f"{plan.model.name}-{plan.hardware.name}".replace("/", "-")
    base = re.sub(r"[^A-Za-z0-9._-]", "-", base).strip("-._") or "plan"
    return (base + (f"-G{plan.G}" if plan.G else ""))[:64]


@dataclass(frozen=True)
class SavedPlanRow:
    """One saved plan's key numbers, as the Open dialog lists them (all strings, ready to show)."""

    path: Path
    name: str
    model: str
    hardware: str
    mode: str
    result: str  # the plan's answer: "G 512 (64 nodes) $1.2M" or "no solution: memory" ("(seed)": an older file)
    layout: str  # "32x8x2" (DP x TP x PP) or ""
    step: str  # "4.1 s/6.2 s" or ""
    refined: str = ""  # the refined model's best layout: "G 16 = 8x1x2, 38.4 s" (plans saved with Step 2)
    error: str = ""  # a file that does not load shows why, instead of vanishing from the list


def describe(path: Path) -> SavedPlanRow:
    try:
        plan = load_plan(path)
    except UserError as exc:
        return SavedPlanRow(path, path.stem, "", "", "", "unreadable", "", "", error=str(exc))
    mode = f"G={plan.G}" if plan.G else "auto"
    answer = plan.saved_answer  # the plan's one answer (engine/answer.py); absent in older files
    if answer.get("feasible") and answer.get("gpus"):
        nodes = answer.get("nodes")
        result = f"G {answer['gpus']}" + (f" ({nodes} node{'s' * (nodes != 1)})" if nodes else "")
        if answer.get("cost_usd") is not None:
            result += f" ${fmt.count(answer['cost_usd'])}"
        layout = f"{answer.get('dp')}x{answer.get('tp')}x{answer.get('pp')}"
        step = f"{fmt.duration(answer.get('step_time_s'))}/{fmt.duration(answer.get('t_step_max_s'))}"
    elif answer:
        result, layout, step = f"no solution: {answer.get('constraint', '?')}", "", ""
    else:  # saved before [answer]: its [result] is the seed model's, and says so
        saved = plan.saved
        if saved.get("feasible"):
            nodes = saved.get("nodes")
            result = f"G {saved.get('G')}" + (f" ({nodes} node{'s' * (nodes != 1)})" if nodes else "") + " (seed)"
            layout = f"{saved.get('dp')}x{saved.get('tp')}x{saved.get('pp')}"
            step = f"{fmt.duration(saved.get('t_step_s'))}/{fmt.duration(saved.get('t_step_max_s'))}"
        elif saved:
            result, layout, step = f"no solution: {saved.get('constraint', '?')} (seed)", "", ""
        else:
            result, layout, step = "not computed", "", ""
    best = (plan.saved_refined.get("layouts") or [{}])[0] if isinstance(plan.saved_refined, dict) else {}
    refined = ""
    if {"gpus", "dp", "tp", "pp", "step_time_s"} <= set(best):
        refined = f"G {best['gpus']} = {best['dp']}x{best['tp']}x{best['pp']}, {fmt.duration(best['step_time_s'])}"
    return SavedPlanRow(path, path.stem, plan.model.name, plan.hardware.name, mode, result, layout, step, refined)


def list_saved(plans_dir: Path) -> list[SavedPlanRow]:
    """Every *.toml in the directory, newest first."""
    if not plans_dir.is_dir():
        return []
    files = sorted(plans_dir.glob("*.toml"), key=lambda p: (-p.stat().st_mtime, p.name))
    return [describe(p) for p in files]
