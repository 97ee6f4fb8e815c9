"""`lsdt plan`: size a cluster for a model, a token goal and a deadline (Step 0 + Step 1), and
show the best Step-2 (engineering model) layouts beside Step 1's answer.

Precedence: flags > --load FILE > defaults (20 tokens per parameter, 30 days, 4M-token batch).
The exit code and the Step-1 JSON keys are Step 1's (unchanged); Step 2 adds the key "refined"
(and a [refined] table to saved plans). --seed-model runs Step 1 alone, as before Step 2 existed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from engine import fmt
from engine.commands.common import days, fraction, hours, path_arg, positive_float, positive_int, print_json
from engine.errors import UserError
from engine.plan import Plan, load_plan
from engine.sizing.calibrate import calibrated_efficiency
from engine.sizing.design import DEFAULT_ETA_COMPUTE, DEFAULT_ETA_FABRIC
from engine.sizing.efficiency import efficiency_for
from engine.sizing.physics import default_goal
from engine.specs import GOAL_DEFAULTS, PRECISIONS, load_hardware, load_model


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=path_arg, help="built-in model profile name, a TOML file or an HF config.json")
    p.add_argument("--hardware", type=path_arg, help="built-in hardware profile name or a TOML file")
    p.add_argument("--tokens", type=positive_float, help="training tokens (default: 20 x parameters)")
    deadline = p.add_mutually_exclusive_group()
    deadline.add_argument("--hours", type=hours, help="deadline in hours")
    deadline.add_argument("--days", type=days, help="deadline in days (default: 30)")
    p.add_argument("--global-batch-tokens", type=positive_int,
                   help=f"tokens per optimizer step (default: {GOAL_DEFAULTS['global_batch_tokens']:,})")
    p.add_argument("--precision", choices=PRECISIONS, help="training state: bf16 (16 B/param) or bf16-fp32grad (18)")
    p.add_argument("--G", type=positive_int, help="fixed cluster size: can these G devices do it? (default: auto-size)")
    p.add_argument("--eta-compute", type=fraction, help=f"sustained/peak FLOP/s (default {DEFAULT_ETA_COMPUTE})")
    p.add_argument("--eta-fabric", type=fraction, help=f"achieved/nominal link bandwidth (default {DEFAULT_ETA_FABRIC})")
    p.add_argument("--json", action="store_true", help="print the run_design dict and the resolved inputs as JSON")
    p.add_argument("--save", type=path_arg, metavar="FILE", help="save the plan (inputs in full + result) as TOML")
    p.add_argument("--load", type=path_arg, metavar="FILE", help="re-run a saved plan (flags given here override it)")
    p.add_argument("--seed-model", action="store_true", help="Step 1 only (the seed model): skip the refined layout search")
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
        goal = default_goal(model)
    deadline_s = args.hours * 3600 if args.hours else args.days * 86400 if args.days else None
    goal = replace(
        goal,
        tokens=args.tokens if args.tokens is not None else goal.tokens,
        deadline_s=deadline_s if deadline_s is not None else goal.deadline_s,
        global_batch_tokens=args.global_batch_tokens or goal.global_batch_tokens,
        precision=args.precision or goal.precision,
    )
    # Step 2's efficiencies: the saved plan's when its hardware is kept, else the generation's;
    # --calibrate measures eta_gemm, an explicit --eta-compute sets it.
    eff = base.efficiency_refined if base and not args.hardware else None
    if getattr(args, "calibrate", None):
        eff = calibrated_efficiency(args.calibrate, hardware, eff or efficiency_for(hardware))
    if args.eta_compute:
        eff = (eff or efficiency_for(hardware)).with_(eta_gemm=args.eta_compute, source=f"--eta-compute {args.eta_compute:g}")
    return Plan(
        model=model,
        hardware=hardware,
        goal=goal,
        G=args.G if args.G is not None else (base.G if base else None),
        eta_compute=args.eta_compute or (base.eta_compute if base else DEFAULT_ETA_COMPUTE),
        eta_fabric=args.eta_fabric or (base.eta_fabric if base else DEFAULT_ETA_FABRIC),
        refine=not getattr(args, "seed_model", False),
        efficiency_refined=eff,
    )


def render(plan: Plan) -> str:
    """The human table."""
    r, m, hw, g = plan.result, plan.model, plan.hardware, plan.goal
    phys = r["diagnostics"]["physics"]
    mode = f"fixed G = {plan.G}" if plan.G else "auto-size"
    lines = [
        f"LSDT plan: {m.name} on {hw.name} ({mode}, eta_compute {plan.eta_compute:g}, eta_fabric {plan.eta_fabric:g})",
        f"  goal      {fmt.count(g.tokens)} tokens in {fmt.duration(g.deadline_s)}; batch {fmt.count(phys['global_batch_seqs'] * m.seq_len)} tokens "
        f"({phys['global_batch_seqs']} x {m.seq_len}); {phys['n_steps']:,} steps",
        f"  physics   {fmt.count(phys['params'])} params; {phys['F_total_flop']:.3g} FLOP total; state {fmt.gb(phys['B_state_min_bytes'], 0)}; "
        f"step budget {fmt.duration(phys['t_step_max_s'])}; G_min {phys['G_min']:,}",
    ]
    if r["feasible"]:
        s = r["solution"]
        lines += [
            f"  result    FEASIBLE  G = {s['G']:,} ({s['nodes']:,} node{'s' * (s['nodes'] != 1)})  DP {s['dp']} x TP {s['tp']} x PP {s['pp']}",
            f"  memory    {fmt.gb(s['bytes_per_device'])} of {fmt.gb(hw.memory_bytes, 0)} per device (headroom {fmt.pct(s['memory_headroom'])})",
            f"  step      {fmt.duration(s['t_step_s'])} = compute {fmt.duration(s['t_compute_s'])} + comm {fmt.duration(s['t_comm_s'])} "
            f"of {fmt.duration(s['t_step_max_s'])} (headroom {fmt.pct(s['time_headroom'])})",
            f"  wall      {fmt.duration(s['t_step_s'] * phys['n_steps'])} for the run; {fmt.count(s['G'] * s['t_step_s'] * phys['n_steps'] / 3600)} GPU-hours",
        ]
        top = r["diagnostics"]["search_trace"]["top"][1:]
        if top:
            lines.append("  next best " + "; ".join(
                f"G {c['G']} = {c['dp']}x{c['tp']}x{c['pp']} ({fmt.duration(c['t_step_s'])}, {fmt.gb(c['bytes_per_device'])})" for c in top[:3]
            ))
    else:
        reason = r["no_solution_reason"]
        lines.append(f"  result    NO SOLUTION: {reason['message']}")  # the message starts with the constraint
    if plan.refined:
        lines += render_refined(plan)
    return "\n".join(lines)


def render_refined(plan: Plan) -> list[str]:
    """Step 2's best layouts, one line each, beside Step 1's answer above."""
    ref = plan.refined
    eff = ref["efficiency"]
    head = "FEASIBLE" if ref["feasible"] else "NOT FEASIBLE (closest below: step > budget)" if ref["layouts"] else "NO LAYOUT FITS"
    lines = [
        f"  refined   {head}  engineering model (bubbles, link tiers, ZeRO, recompute; eta_gemm {eff['eta_gemm']:g}); "
        f"{ref['stats']['space']:,} layouts covered, {ref['stats']['timed']:,} timed",
    ]
    for i, c in enumerate(ref["layouts"]):
        v = f" v{c['interleave']}" if c["interleave"] > 1 else ""
        lines.append(
            f"  {'#' + str(i + 1):>3s}  G {c['gpus']:,} = DP {c['dp']} x TP {c['tp']} x PP {c['pp']}{v}  mb {c['micro_batch']} "
            f"{c['recompute']} ZeRO-{c['zero']}  step {fmt.duration(c['step_time_s'])}"
            f"{'' if c['meets_deadline'] else ' (> ' + fmt.duration(c['t_step_max_s']) + ')'}  "
            f"MFU {fmt.pct(c['mfu'])}  {fmt.gb(c['memory_per_gpu_bytes'])}  wall {fmt.duration(c['wall_time_s'])}"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    plan = resolve_plan(args).compute()
    if args.save:
        plan.save(args.save)
    if args.json:
        print_json({"inputs": {
            "model": plan.model.to_dict(), "hardware": plan.hardware.to_dict(), "goal": plan.goal.to_dict(),
            "G": plan.G, "eta_compute": plan.eta_compute, "eta_fabric": plan.eta_fabric,
        }, **plan.result, **({"refined": plan.refined} if plan.refined else {})})
    else:
        print(render(plan))
        if args.save:
            print(f"  saved     {args.save}")
    problem = unreachable(plan)
    if problem:
        # An unreachable goal is the user's to change: say so in one line, exit 2 (README, "Exit codes").
        print(f"lsdt: error: no solution: {problem}", file=sys.stderr)
        return 2
    return 0


def unreachable(plan: Plan) -> str | None:
    """Why the goal cannot be met, or None. The refined (Step 2) answer decides when it ran: it is
    the better model; with --seed-model, Step 1 decides."""
    step1 = plan.result["no_solution_reason"]
    if not plan.refined or (step1 and step1["constraint"] == "layout"):  # no valid split: no model can help
        return step1["message"] if step1 else None
    if plan.refined["feasible"]:
        return None
    layouts = plan.refined["layouts"]
    if not layouts:
        return "engineering model: no layout fits in device memory"
    best = layouts[0]
    return (
        f"engineering model: the fastest layout that fits needs a {fmt.duration(best['step_time_s'])} step, "
        f"{best['step_time_s'] / best['t_step_max_s']:.3g}x the {fmt.duration(best['t_step_max_s'])} budget"
    )
