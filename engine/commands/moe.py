"""`lsdt moe`: cluster sizing of the two-phase trunk + experts MoE (thin over engine.sizing.moe).

The bare command is the sizing. `lsdt moe train ...` and `lsdt moe pipeline ...` belong to
engine/commands/moe_run.py (the MoE runtime); they are registered only when that module exists, and
it supplies add_train_arguments(p), add_pipeline_arguments(p), run_train(args), run_pipeline(args).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util

from engine import fmt
from engine.commands.common import fraction, path_arg, positive_float, positive_int, print_json
from engine.flags import token_list
from engine.sizing import moe as M
from engine.sizing.design import DEFAULT_ETA_COMPUTE
from engine.specs import load_hardware, load_model

RUN_MODULE = "engine.commands.moe_run"
DEFAULT_MODEL = M.SEED_MODEL
DEFAULT_HARDWARE = M.SEED_HARDWARE


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_MODEL, type=path_arg, help=f"MoE model profile or file with trunk_layers > 0 (default {DEFAULT_MODEL})")
    p.add_argument("--hardware", default=DEFAULT_HARDWARE, type=path_arg, help=f"hardware profile or file (default {DEFAULT_HARDWARE})")
    p.add_argument("--price-per-gpu-hour", type=positive_float,
                   help=f"USD per GPU-hour (default: the profile's price_per_hour, else the seed's ${M.DEFAULT_PRICE_PER_GPU_HOUR:g})")
    p.add_argument("--mfu", type=fraction, default=DEFAULT_ETA_COMPUTE, help=f"sustained / peak FLOP/s (default {DEFAULT_ETA_COMPUTE})")
    p.add_argument("--trunk-tokens", type=positive_float, default=M.TRUNK_TOKENS, help="phase-1 tokens (default the seed's 50B)")
    p.add_argument("--expert-tokens", type=token_list, help="phase-2 tokens per expert (default the seed's 20e9,15e9,12e9,12e9)")
    p.add_argument("--trunk-gpus", type=positive_int, default=M.TRUNK_GPUS, help=f"phase-1 GPUs (default {M.TRUNK_GPUS})")
    p.add_argument("--gpus-per-expert", type=positive_int, default=M.GPUS_PER_EXPERT, help=f"phase-2 GPUs per expert (default {M.GPUS_PER_EXPERT})")
    p.add_argument("--qa-gpus", type=positive_int, default=M.QA_GPUS, help=f"phase-3 GPUs (default {M.QA_GPUS})")
    p.add_argument("--json", action="store_true", help="print the sizing as JSON")
    if importlib.util.find_spec(RUN_MODULE) is not None:
        run_mod = importlib.import_module(RUN_MODULE)
        # argparse matches abbreviations of this parser's options against the whole command line, so
        # `moe train --trunk X` would be "ambiguous" with --trunk-tokens/--trunk-gpus: exact names only.
        p.allow_abbrev = False
        sub = p.add_subparsers(dest="moe_action", required=False, metavar="ACTION", parser_class=type(p))
        run_mod.add_train_arguments(sub.add_parser("train", help="train the two-phase MoE (trunk, then experts)"))
        run_mod.add_pipeline_arguments(sub.add_parser("pipeline", help="train, quantize, seal and verify end to end"))


def compute(args: argparse.Namespace) -> dict:
    return M.size_moe(
        load_model(args.model),
        load_hardware(args.hardware),
        price_per_gpu_hour=args.price_per_gpu_hour,
        mfu=args.mfu,
        trunk_tokens=args.trunk_tokens,
        expert_tokens=args.expert_tokens,
        trunk_gpus=args.trunk_gpus,
        gpus_per_expert=args.gpus_per_expert,
        qa_gpus=args.qa_gpus,
    )


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def render(r: dict) -> str:
    lines = [
        f"LSDT moe: {r['model']} on {r['hardware']}; peak {fmt.si(r['peak_flops'], 'FLOP/s')} x MFU {r['mfu']:g} = "
        f"{fmt.si(r['sustained_flops'], 'FLOP/s')}",
        "",
        f"  {'component':<32} {'params':>12} {'FP32':>11} {'INT8':>11}",
    ]
    for c in r["components"]:
        lines.append(f"  {c['name']:<32} {c['params']:>12,} {_mb(c['fp32_bytes']):>11} {_mb(c['int8_bytes']):>11}")
    lines.append(f"  {'total':<32} {r['total_params']:>12,} {_mb(r['total_fp32_bytes']):>11} {_mb(r['total_int8_bytes']):>11}"
                 f"   (active per token {fmt.count(r['active_params'])}; INT8 = weights + fp32 row scales, 32-B aligned)")
    lines += ["", f"  {'phase':<46} {'GPUs':>4} {'tokens':>7} {'GPU-h':>9} {'wall':>8} {'mem/GPU':>9}  micro-batch"]
    for p in r["phases"]:
        micro = f"{p['micro_batch']} x {p['grad_accum']} accum" if p.get("micro_batch") else ("-" if "micro_batch" not in p else "OOM")
        lines.append(f"  {p['name']:<46} {p['gpus']:>4} {fmt.count(p['tokens']):>7} {p['gpu_hours']:>9,.1f} "
                     f"{fmt.duration(p['wall_hours'] * 3600):>8} {fmt.gb(p['memory_per_gpu_bytes']):>9}  {micro}")
        if p.get("domain_tokens"):
            lines.append("    data mix  " + ", ".join(f"{d} {p['data_mix'][d]:.0%} ({fmt.count(t)})" for d, t in p["domain_tokens"].items()))
        for x in p.get("experts", []):
            label = f"expert {x['expert']} ({x['domain']})"
            lines.append(f"    {label:<44} {x['gpus']:>4} {fmt.count(x['tokens']):>7} "
                         f"{x['gpu_hours']:>9,.1f} {fmt.duration(x['wall_hours'] * 3600):>8}")
    lines += [
        f"  {'total':<46} {r['peak_gpus']:>4} {'':>7} {r['total_gpu_hours']:>9,.1f} {fmt.duration(r['wall_hours'] * 3600):>8}"
        f"   peak {r['peak_gpus']} GPUs",
        f"  cost      ${r['cost_usd']:,.0f} at ${r['price_per_gpu_hour']:g}/GPU-h ({r['price_source']})",
    ]
    lay = r["layout"]
    lines += ["", f"  INT8 layout, one expert layer ({lay['alignment_bytes']}-byte aligned; fp32 scale per output row):",
              f"    {'tensor':<18} {'shape':>12} {'numel':>10} {'int8 B':>10} {'scale B':>8} {'stored B':>10}"]
    for t in lay["expert_layer"]:
        shape = "x".join(str(s) for s in t["shape"])
        lines.append(f"    {t['tensor']:<18} {shape:>12} {t['numel']:>10,} {t['int8_bytes']:>10,} {t['scale_bytes']:>8,} {t['stored_bytes']:>10,}")
    lines.append(f"    {'per layer':<18} {'':>12} {'':>10} {'':>10} {'':>8} {lay['expert_layer_bytes']:>10,}")
    lines.append("  per artifact:")
    for a in lay["artifacts"]:
        lines.append(f"    {a['name']:<32} {a['tensors']:>4} tensors {a['stored_bytes']:>13,} B  (padding {a['padding_bytes']:,} B)")
    lines.append(f"    {'total':<32} {'':>4}         {lay['total_stored_bytes']:>13,} B  ({lay['note']})")
    if r["seed_comparison"]:
        lines += ["", "  seed 002 vs computed (ratio = computed / seed):",
                  f"    {'item':<58} {'seed':>11} {'computed':>11} {'ratio':>8}"]
        for i in r["seed_comparison"]:
            lines.append(f"    {i['item']:<58} {i['seed']:>11.4g} {i['computed']:>11.4g} {i['ratio']:>8.3g}"
                         + (f"  {i['note']}" if i["note"] else ""))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "moe_action", None)
    if action:
        run_mod = importlib.import_module(RUN_MODULE)
        return int((run_mod.run_train if action == "train" else run_mod.run_pipeline)(args) or 0)
    result = compute(args)
    if args.json:
        print_json(result)
    else:
        print(render(result))
    return 0
