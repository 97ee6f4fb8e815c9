"""`lsdt sparsity capture|sae|si|dynamic-k|run`: the sparsity lab (thin over engine/runtime/sparsity).

    lsdt sparsity capture   --model SRC [--tasks builtin|tasks.jsonl|NAME=PATH,...] [--layers auto]
    lsdt sparsity sae       --model SRC [--expansion 8] [--l1 3e-3,1e-2,3e-2,1e-1]
    lsdt sparsity si        --model SRC [--sae-from ARTIFACT] [--top-edges 200]
    lsdt sparsity dynamic-k --model SRC [--k 0.1,0.2,0.3,0.5,0.7,1.0] [--seeds 3] [--mode mask|gather]
    lsdt sparsity run       --model SRC   (all four stages into one artifact)

SRC: an `lsdt train` run dir or checkpoint, an `lsdt moe train` run dir, or a local Hugging Face
directory. Each writes a new artifact directory (artifacts/YYYYMMDD_HHMMSS-<model>/ or --out);
progress goes to stderr, the result to stdout (--json: as JSON). torch is imported only when a
stage runs.
"""

from __future__ import annotations

import argparse
import math

from engine.commands.common import non_negative_int, path_arg, positive_float, positive_int, print_json, seed
from engine.errors import UserError

ACTIONS = ("capture", "sae", "si", "dynamic-k", "run")
HELP = {
    "capture": "per-layer activation sparsity (frac > threshold, participation ratio, dead neurons)",
    "sae": "train a sparse autoencoder per layer (L1 sweep, early stopping; SAELens layout)",
    "si": "specialization index per neuron / SAE feature, co-activation communities and modularity Q",
    "dynamic-k": "perplexity and tokens/s under top-k gating of MLP neurons, with the FLOP reduction",
    "run": "all four stages in order into one artifact",
}


def _floats(flag: str, lo_open: float, hi: float | None = None):
    def parse(text: str) -> list[float]:
        try:
            vals = [float(x) for x in text.split(",") if x.strip()]
        except ValueError:
            vals = []
        if not vals or not all(math.isfinite(v) and v > lo_open and (hi is None or v <= hi) for v in vals):
            accepted = f"in ({lo_open:g}, {hi:g}]" if hi is not None else f"> {lo_open:g}"
            raise argparse.ArgumentTypeError(f"{text!r}: accepted: comma-separated numbers {accepted}")
        return vals

    return parse


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: accepted: a finite number, e.g. 0.0")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, type=path_arg, metavar="SRC",
                   help="an `lsdt train` run dir or step_*.pt, an `lsdt moe train` run dir, or a local Hugging Face dir")
    p.add_argument("--tasks", default="builtin", type=path_arg,
                   help="builtin (the MoE's code/math/reasoning/general val slices), a tasks.jsonl, or NAME=PATH,... (default builtin)")
    p.add_argument("--layers", default="auto", type=path_arg,
                   help="auto (depths 0.25/0.5/0.75, plus MoE expert layers), all, rel:0.25,0.5, or labels 0,2 (default auto)")
    p.add_argument("--seq", type=positive_int, default=128, help="tokens per probe window, capped at the model's context (default 128)")
    p.add_argument("--max-tokens", type=positive_int, default=8192, help="probe tokens per task (default 8192)")
    p.add_argument("--batch", type=positive_int, default=8, help="windows per forward pass (default 8)")
    p.add_argument("--out", type=path_arg, metavar="DIR", help="artifact directory, must not exist (default artifacts/YYYYMMDD_HHMMSS-<model>)")
    p.add_argument("--data-cache", type=path_arg, help="token cache for the built-in tasks (default $LSDT_CACHE_DIR or ~/.cache/lsdt)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the null labels, SAE init and split, eval windows (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default auto (cuda when present)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _capture_args(p):
    p.add_argument("--threshold", type=_finite, default=0.0, help="an activation counts as active above this (default 0.0, as seed 004)")
    p.add_argument("--save-acts", type=non_negative_int, default=0, metavar="N",
                   help="also write the first N tokens' raw activations per layer as acts/<layer>.npy (default 0: none)")


def _sae_args(p):
    p.add_argument("--expansion", type=positive_int, default=8, help="dictionary size / layer width (default 8)")
    p.add_argument("--l1", type=_floats("--l1", 0.0), default=None, help="L1 coefficients to sweep (default 3e-3,1e-2,3e-2,1e-1)")
    p.add_argument("--sae-tokens", type=positive_int, default=16384, help="activations per layer for training + validation (default 16384)")
    p.add_argument("--sae-steps", type=positive_int, default=2000, help="most Adam steps per L1 (early stopping usually ends sooner; default 2000)")
    p.add_argument("--sae-lr", type=positive_float, default=1e-3, help="Adam learning rate (default 1e-3)")


def _si_args(p, with_from: bool):
    p.add_argument("--min-support", type=positive_int, default=5, help="co-activations a PMI edge needs (default 5)")
    p.add_argument("--top-edges", type=positive_int, default=200, help="strongest NPMI edges in the graph (default 200, as seed 004)")
    if with_from:
        p.add_argument("--sae-from", type=path_arg, metavar="ARTIFACT", help="an artifact with sae/<layer>/: also SI of its SAE features")


def _dk_args(p):
    p.add_argument("--k", type=_floats("--k", 0.0, 1.0), default=None, help="kept fractions in (0, 1] (default 0.1,0.2,0.3,0.5,0.7,1.0)")
    p.add_argument("--seeds", type=positive_int, default=3, help="evaluation window sets, reported as mean +- std (default 3)")
    p.add_argument("--eval-windows", type=positive_int, default=32, help="held-out windows per seed (default 32)")
    p.add_argument("--gate-layers", default="all", type=path_arg, help="layers to gate (default all; same grammar as --layers)")
    p.add_argument("--mode", choices=("mask", "gather"), default="mask",
                   help="mask: zero the rest (quality); gather: needs CUDA, batch 1, really skips rows (speed) (default mask)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="sparsity_action", required=True, metavar="STAGE", parser_class=type(p))
    for action in ACTIONS:
        sp = sub.add_parser(action, help=HELP[action], description=HELP[action])
        _common(sp)
        if action in ("capture", "run"):
            _capture_args(sp)
        if action in ("sae", "run"):
            _sae_args(sp)
        if action in ("si", "run"):
            _si_args(sp, with_from=action == "si")
        if action in ("dynamic-k", "run"):
            _dk_args(sp)


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device here; accepted: --device cpu or auto")
    return name


def build_config(args: argparse.Namespace):
    from engine.runtime.sparsity.pipeline import LabConfig

    cfg = LabConfig(model=args.model, tasks=args.tasks, layers=args.layers, seq_len=args.seq, max_tokens=args.max_tokens,
                    batch=args.batch, seed=args.seed, device=resolve_device(args.device), data_cache=args.data_cache)
    for name in ("threshold", "save_acts", "expansion", "sae_tokens", "sae_steps", "sae_lr", "min_support", "top_edges",
                 "sae_from", "seeds", "eval_windows", "gate_layers", "mode"):
        if getattr(args, name, None) is not None:
            setattr(cfg, name, getattr(args, name))
    if getattr(args, "l1", None):
        cfg.l1 = args.l1
    if getattr(args, "k", None):
        cfg.k = args.k
    if args.sparsity_action == "dynamic-k" and args.layers != "auto":
        cfg.gate_layers = args.layers  # on dynamic-k alone, --layers names the gated layers too
    return cfg


def render(result: dict) -> str:
    from engine.runtime.sparsity.artifacts import fmt

    lines = [f"artifact  {result['artifact']}"]
    if "sparsity" in result:
        lines += ["", f"  {'layer':<10} {'width':>6} {'tokens':>8} {'frac':>8} {'pr':>9} {'dead':>6}"]
        lines += [f"  {r['layer']:<10} {r['width']:>6} {r['tokens']:>8} {r['frac']:>8.4f} {r['pr']:>9.2f} {r['dead']:>6.3f}"
                  for r in result["sparsity"]]
    if "sae" in result:
        lines += ["", f"  {'layer':<10} {'l1':>8} {'L0':>8} {'EV':>7} {'CE rec':>7} {'dead':>6}  chosen"]
        lines += [f"  {r['layer']:<10} {r['l1']:>8.2g} {r['l0']:>8.1f} {r['explained_variance']:>7.3f} "
                  f"{fmt(r['ce_loss_recovered']):>7.7} {r['dead_frac']:>6.3f}  {'*' if r['chosen'] else ''}" for r in result["sae"]]
    if "si" in result:
        lines += ["", f"  {'layer':<10} {'unit':<8} {'task':<10} {'units':>6} {'SI':>7} {'null':>7} {'Q':>7} {'comm':>5}"]
        lines += [f"  {r['layer']:<10} {r['unit']:<8} {r['task']:<10} {r['n_units']:>6} {fmt(r['SI']):>7.7} "
                  f"{fmt(r['SI_null']):>7.7} {fmt(r['Q']):>7.7} {fmt(r['n_communities']):>5}" for r in result["si"]]
    if "dynamic_k" in result:
        lines += ["", f"  {'k':>5} {'perplexity':>17} {'tokens/s':>16} {'FLOPs saved':>11} {'ppl delta':>10}"]
        lines += [f"  {r['k']:>5.2f} {r['perplexity']:>9.4f} ± {r['perplexity_std']:<6.4f} {r['tokens_per_sec']:>9.0f} ± "
                  f"{r['tokens_per_sec_std']:<5.0f} {fmt(r['flops_reduction']):>11.6} {100 * r['quality_delta']:>+9.2f}%"
                  for r in result["dynamic_k"]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from engine.runtime.sparsity.pipeline import STAGES, run_stages

    action = args.sparsity_action
    stages = list(STAGES) if action == "run" else [action]
    result = run_stages(build_config(args), stages, args.out)
    if args.json:
        from engine.runtime.seal.quantize_ckpt import finite_or_null

        print_json(finite_or_null(result))
    else:
        print(render(result))
    return 0
