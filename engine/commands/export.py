"""`lsdt export`: a saved plan's refined layout as a launch config for a real training engine.

    lsdt export --plan FILE --to megatron|torchtitan|torchrun [--layout N] [--out FILE]

The plan is re-run (its inputs are stored in full), and layout N (1 = the fastest) of its refined
search is exported: Megatron-LM pretrain_gpt.py flags, a torchtitan config module (Python), or a
torchrun command for LSDT's own trainer. Written to --out atomically, else printed.
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import replace
from pathlib import Path

from engine.atomic import write_atomic
from engine.commands.common import path_arg, positive_int
from engine.errors import UserError
from engine.plan import load_plan
from engine.sizing import export, megatron_args
from engine.sizing.physics import physics
from engine.specs import builtin_names, load_model

TARGETS = ("megatron", "torchtitan", "torchrun")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plan", required=True, type=path_arg, metavar="FILE", help="a saved plan (lsdt plan --save FILE)")
    p.add_argument("--to", required=True, choices=TARGETS, help="the engine to launch on")
    p.add_argument("--layout", type=positive_int, default=1, help="which refined layout, 1 = fastest (default 1)")
    p.add_argument("--out", type=path_arg, metavar="FILE", help="write here (atomically) instead of printing")


def _model_ref(plan, plan_path: Path) -> tuple[str, Path | None]:
    """A --model argument for LSDT's trainer: the profile name when the plan's model is the
    shipped profile, else a model TOML written beside the plan."""
    model = plan.model
    if model.name in builtin_names("models") and load_model(model.name) == model:
        return model.name, None
    import tomli_w

    path = plan_path.with_name(f"{plan_path.stem}.model.toml")
    return str(path), write_atomic(path, tomli_w.dumps(model.to_dict()))


def run(args: argparse.Namespace) -> int:
    plan_path = Path(args.plan)
    plan = load_plan(plan_path)
    plan = replace(plan, refine=True).compute()
    layouts = plan.refined["layouts"]
    if not layouts:
        raise UserError(f"{args.plan}: the refined search found no layout that fits; nothing to export")
    if args.layout > len(layouts):
        raise UserError(f"--layout {args.layout}: the plan has {len(layouts)} refined layout(s); accepted: 1..{len(layouts)}")
    layout = layouts[args.layout - 1]
    b0 = physics(plan.model, plan.hardware, plan.goal)
    B, steps = b0.global_batch_seqs, b0.n_steps
    head = f"LSDT export of {plan_path.name}: {plan.model.name}, layout #{args.layout} on {layout['gpus']} x {plan.hardware.name}"
    if args.to == "megatron":
        flags = export.megatron_args(plan.model, layout, B, steps, plan.goal.precision)
        groups: list[list[str]] = []
        for token in flags:  # one flag and its values per line
            if token.startswith("--") or not groups:
                groups.append([token])
            else:
                groups[-1].append(token)
        pairs = [shlex.join(g) for g in groups]
        env = megatron_args.required_env(megatron_args.parse(flags))
        env_line = "".join(f"# environment: {k}={v} (Megatron-LM asserts it for this layout on GPUs before Blackwell)\n" for k, v in env.items())
        # routing is not a sizing input (no parameters, no FLOPs beyond the router LSDT counts)
        router = ("# router: Megatron's defaults (softmax top-k, aux-loss balancing); a model trained otherwise adds its own, "
                  "e.g. DeepSeek-V3's --moe-router-score-function sigmoid --moe-router-enable-expert-bias\n") if plan.model.n_experts else ""
        text = (f"# {head}\n# Megatron-LM {megatron_args.RELEASE} pretrain_gpt.py arguments. Add data and optimizer flags "
                "(--mock-data runs as is); NullTokenizer stands for a tokenizer of this --vocab-size.\n"
                + env_line + router + " \\\n".join(pairs) + "\n")
    elif args.to == "torchtitan":
        text = export.torchtitan_config(plan.model, layout, B, steps, plan.goal.precision)
    else:
        ref, written = _model_ref(plan, plan_path)
        cmd = export.torchrun_command(ref, layout, B, steps, plan.hardware.gpus_per_node, plan.model.seq_len,
                                      export.rope_base(plan.model), plan.goal.precision)
        note = f"# model file written: {written}\n" if written else ""
        text = f"# {head}\n{note}{shlex.join(cmd).replace(shlex.quote('$NODE_RANK'), '$NODE_RANK').replace(shlex.quote('$MASTER_ADDR:29500'), '$MASTER_ADDR:29500')}\n"
    if args.out:
        write_atomic(args.out, text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0
