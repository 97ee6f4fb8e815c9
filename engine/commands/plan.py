"""`lsdt plan`: size a cluster for a model, a token goal and a deadline.

The answer (the `result` line, the exit code, `--json`'s "answer" and "feasible") is the
engineering model's (Step 2, engine/sizing/search.py); the seed's simple Step-1 model is shown
below it as what it is ("seed model"), and `--seed-model` makes it the answer (Step 2 skipped).
Two efficiency flags, one per model: --eta-compute is the seed model's sustained/peak FLOP/s,
--eta-gemm the engineering model's GEMM efficiency (default: the hardware profile's).

Precedence: flags > --load FILE > defaults (20 tokens per parameter, 30 days, 4M-token batch).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from engine import fmt
from engine.commands.common import (days, fraction, hours, non_negative_float, path_arg, positive_float, positive_int,
                                    print_json)
from engine.answer import SEED_NOTE, Answer
from engine.errors import UserError
from engine.plan import Plan, load_plan
from engine.sizing.calibrate import calibrated_efficiency
from engine.sizing.design import DEFAULT_ETA_COMPUTE, DEFAULT_ETA_FABRIC
from engine.sizing.efficiency import efficiency_for
from engine.sizing.objective import OBJECTIVE_WORDS, OBJECTIVES
from engine.sizing.refine import layout_text
from engine.sizing.physics import default_goal
from engine.specs import GOAL_DEFAULTS, PRECISIONS, load_hardware, load_model


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=path_arg, help="built-in model profile name, a TOML file or an HF config.json")
    p.add_argument("--hardware", type=path_arg, help="built-in hardware profile name or a TOML file")
    p.add_argument("--tokens", type=positive_float, help="training tokens (default: 20 x parameters)")
    deadline = p.add_mutually_exclusive_group()
    deadline.add_argument("--hours", type=hours, help="deadline in hours, or with a unit: 36h, 2d, 1w")
    deadline.add_argument("--days", type=days, help="deadline in days, or with a unit: 36h, 2d, 1w (default: 30)")
    p.add_argument("--global-batch-tokens", type=positive_int,
                   help=f"tokens per optimizer step (default: {GOAL_DEFAULTS['global_batch_tokens']:,})")
    p.add_argument("--seq", type=positive_int, metavar="TOKENS",
                   help="training sequence length (default: the model profile's; for an HF config.json 8,192 or its "
                        "max_position_embeddings if smaller)")
    p.add_argument("--precision", choices=PRECISIONS, help="training state: bf16 (16 B/param) or bf16-fp32grad (18)")
    p.add_argument("--G", type=positive_int, help="fixed cluster size: can these G devices do it? (default: auto-size)")
    p.add_argument("--objective", choices=OBJECTIVES,
                   help="auto-size: fewest GPUs that meet the deadline (default), shortest run, or lowest cost")
    p.add_argument("--price-per-gpu-hour", type=non_negative_float, metavar="USD",
                   help="$ per GPU-hour for the cost (default: the hardware profile's price_per_hour)")
    p.add_argument("--eta-gemm", type=fraction,
                   help="engineering model: large-GEMM efficiency (default: the hardware profile's, engine/sizing/efficiency.py)")
    p.add_argument("--eta-compute", type=fraction, help=f"seed model: sustained/peak FLOP/s (default {DEFAULT_ETA_COMPUTE})")
    p.add_argument("--eta-fabric", type=fraction, help=f"seed model: achieved/nominal link bandwidth (default {DEFAULT_ETA_FABRIC})")
    p.add_argument("--json", action="store_true",
                   help="print the answer, the seed model's run_design dict, the refined layouts and the inputs as JSON")
    p.add_argument("--save", type=path_arg, metavar="FILE", help="save the plan (inputs in full + result) as TOML")
    p.add_argument("--load", type=path_arg, metavar="FILE", help="re-run a saved plan (flags given here override it)")
    p.add_argument("--seed-model", action="store_true", help="answer with the seed's simple Step-1 model (skip the engineering model)")
    p.add_argument("--calibrate", type=path_arg, metavar="PROBE.json",
                   help="refined model: take the GEMM efficiency from `lsdt probe` results on this hardware")


def resolve_plan(args: argparse.Namespace) -> Plan:
    """The plan the flags describe: --load's inputs, then every flag given on top."""
    if args.load:
        base = load_plan(args.load)
        model = load_model(args.model) if args.model else base.model
        hardware = load_hardware(args.hardware) if args.hardware else base.hardware
        goal = base.goal
    else:
        if not args.model or not args.hardware:
            missing = "--model" if not args.model else "--hardware"
            raise UserError(f"{missing} is required (a built-in profile name or a file), or --load FILE")
        base = None
        model, hardware = load_model(args.model), load_hardware(args.hardware)
        goal = None
    if args.seq is not None:
        model = model.with_(seq_len=args.seq, source=f"{model.source}; seq_len {args.seq:,} from --seq".lstrip("; "))
    goal = goal or default_goal(model)
    deadline_s = args.hours * 3600 if args.hours else args.days * 86400 if args.days else None
    goal = replace(
        goal,
        tokens=args.tokens if args.tokens is not None else goal.tokens,
        deadline_s=deadline_s if deadline_s is not None else goal.deadline_s,
        global_batch_tokens=args.global_batch_tokens or goal.global_batch_tokens,
        precision=args.precision or goal.precision,
    )
    # Step 2's efficiencies: the saved plan's when its hardware is kept, else the hardware profile's;
    # --calibrate measures eta_gemm, --eta-gemm sets it. --eta-compute is the seed model's alone:
    # it once set eta_gemm too, so its documented default 0.4 changed the answer.
    eff = base.efficiency_refined if base and not args.hardware else None
    if getattr(args, "calibrate", None):
        eff = calibrated_efficiency(args.calibrate, hardware, eff or efficiency_for(hardware))
    if getattr(args, "eta_gemm", None):
        eff = (eff or efficiency_for(hardware)).with_(eta_gemm=args.eta_gemm, source=f"--eta-gemm {args.eta_gemm:g}")
    return Plan(
        model=model,
        hardware=hardware,
        goal=goal,
        G=args.G if args.G is not None else (base.G if base else None),
        eta_compute=args.eta_compute or (base.eta_compute if base else DEFAULT_ETA_COMPUTE),
        eta_fabric=args.eta_fabric or (base.eta_fabric if base else DEFAULT_ETA_FABRIC),
        refine=not getattr(args, "seed_model", False),
        efficiency_refined=eff,
        objective=args.objective or (base.objective if base else "gpus"),
        price_per_gpu_hour=args.price_per_gpu_hour if args.price_per_gpu_hour is not None else (
            base.price_per_gpu_hour if base else None),
    )


def render(plan: Plan) -> str:
    """The human table: the answer first, then the engineering model's layouts, then the seed model."""
    r, m, hw, g = plan.result, plan.model, plan.hardware, plan.goal
    phys = r["diagnostics"]["physics"]
    a = plan.answer()
    mode = f"fixed G = {plan.G}" if plan.G else f"auto-size, {OBJECTIVE_WORDS[plan.objective]}"
    lines = [
        f"LSDT plan: {m.name} on {hw.name} ({mode}; {'seed model' if a.model == 'seed' else 'engineering model'})",
        f"  goal      {fmt.count(g.tokens)} tokens in {fmt.duration(g.deadline_s)}; batch {fmt.count(phys['global_batch_seqs'] * m.seq_len)} tokens "
        f"({phys['global_batch_seqs']:,} x {m.seq_len:,}); {phys['n_steps']:,} steps",
        f"  physics   {fmt.count(phys['params'])} params; {phys['F_total_flop']:.3g} FLOP total; state {fmt.gb(phys['B_state_min_bytes'], 0)}; "
        f"step budget {fmt.duration(phys['t_step_max_s'])}; G_min {phys['G_min']:,}",
    ]
    if m.source.startswith("Hugging Face"):
        lines.append(f"  model     {m.source}")
    lines += render_answer(a, hw.memory_bytes, plan)
    if plan.refined:
        lines += render_refined(plan)
    lines += render_seed(plan, a.model == "seed")
    return "\n".join(lines)


def render_answer(a: Answer, memory_bytes: float, plan: Plan) -> list[str]:
    """The answer's lines: verdict and layout, memory and step, run time, GPU-hours and $."""
    if a.feasible:
        head = f"FEASIBLE  G = {a.gpus:,} ({a.nodes:,} node{'s' * (a.nodes != 1)})  {layout_words(a)}"
    else:
        head = f"NO SOLUTION: {a.message}"  # the message starts with the constraint
    lines = [f"  result    {head}"]
    if not a.has_layout:
        return lines
    if not a.feasible:
        lines.append(f"  closest   G = {a.gpus:,} ({a.nodes:,} node{'s' * (a.nodes != 1)})  {layout_words(a)}")
    mfu = f"; MFU {fmt.pct(a.mfu)}" if a.mfu is not None else ""
    lines += [
        f"  memory    {fmt.gb(a.memory_per_gpu_bytes)} of {fmt.gb(memory_bytes, 0)} per device",
        f"  step      {fmt.duration(a.step_time_s)} of {fmt.duration(a.t_step_max_s)} budget{mfu}",
        f"  run       {fmt.duration(a.wall_time_s)}; {fmt.count(a.gpu_hours)} GPU-hours; {cost_words(a, plan)}",
    ]
    return lines


def layout_words(a: Answer) -> str:
    """DP x TP x PP and, for the engineering model, what else tells two layouts apart."""
    if a.layout:  # the engineering model's full layout
        return f"DP x TP x PP x CP x EP = {a.layout}"
    return f"DP {a.dp} x TP {a.tp} x PP {a.pp}"


def cost_words(a: Answer, plan: Plan) -> str:
    """'$12,345 at $4.18/GPU-h (where the price is from)', or n/a with the reason."""
    if a.cost_usd is None:
        return f"cost n/a (no price for {plan.hardware.name}: --price-per-gpu-hour USD)"
    where = "--price-per-gpu-hour" if plan.price_per_gpu_hour is not None else f"{plan.hardware.name} list price"
    return f"${a.cost_usd:,.0f} at ${a.price_per_gpu_hour:.3g}/GPU-h ({where})"


def render_refined(plan: Plan) -> list[str]:
    """The engineering model's best layouts, one line each (#1 is the answer when it is feasible)."""
    ref = plan.refined
    eff = ref["efficiency"]
    lines = [
        f"  layouts   engineering model, eta_gemm {eff['eta_gemm']:g} ({eff['source'].split(',')[0] or 'engine/sizing/efficiency.py'}); "
        f"{ref['stats']['space']:,} layouts covered, {ref['stats']['timed']:,} timed"
        + (f", {ref['stats']['sizes']} cluster sizes" if ref["stats"].get("sizes", 1) > 1 else ""),
    ]
    for i, c in enumerate(ref["layouts"]):
        lines.append(
            f"  {'#' + str(i + 1):>3s}  G {c['gpus']:,} = {layout_text(c)}  step {fmt.duration(c['step_time_s'])}"
            f"{'' if c['meets_deadline'] else ' (> ' + fmt.duration(c['t_step_max_s']) + ')'}  "
            f"MFU {fmt.pct(c['mfu'])}  {fmt.gb(c['memory_per_gpu_bytes'])}  wall {fmt.duration(c['wall_time_s'])}  "
            f"{fmt.count(c['gpu_hours'])} GPU-h"
        )
    return lines


def render_seed(plan: Plan, is_answer: bool) -> list[str]:
    """The seed's Step-1 answer, labelled as what it is."""
    r = plan.result
    if is_answer:
        return [f"  note      answer from {SEED_NOTE} (eta_compute {plan.eta_compute:g}, eta_fabric {plan.eta_fabric:g})"]
    if r["feasible"]:
        s = r["solution"]
        what = (f"G = {s['G']:,} = DP {s['dp']} x TP {s['tp']} x PP {s['pp']}, "
                f"{fmt.gb(s['bytes_per_device'])}/device, step {fmt.duration(s['t_step_s'])}")
    else:
        what = f"no solution ({r['no_solution_reason']['constraint']})"
    return [f"  seed      {what}", f"            ({SEED_NOTE}; eta_compute {plan.eta_compute:g}; --seed-model answers with it)"]


def run(args: argparse.Namespace) -> int:
    plan = resolve_plan(args).compute()
    if args.save:
        plan.save(args.save)
    answer = plan.answer()
    if args.json:
        print_json({
            "inputs": {
                "model": plan.model.to_dict(), "hardware": plan.hardware.to_dict(), "goal": plan.goal.to_dict(),
                "G": plan.G, "objective": plan.objective, "price_per_gpu_hour": plan.price,
                "eta_compute": plan.eta_compute, "eta_fabric": plan.eta_fabric,
            },
            "feasible": answer.feasible,
            "answer": answer.to_dict(),
            "seed_model": plan.result,
            **({"refined": plan.refined} if plan.refined else {}),
        })
    else:
        print(render(plan))
        if args.save:
            print(f"  saved     {args.save}")
    if not answer.feasible:
        # An unreachable goal is the user's to change: say so in one line, exit 2 (README, "Exit codes").
        print(f"lsdt: error: no solution: {answer.message}", file=sys.stderr)
        return 2
    return 0
