"""`lsdt moe train` and `lsdt moe pipeline`: run the two-phase MoE (registered by engine/commands/moe.py).

    lsdt moe train --phase trunk   [--tiny] [--domains code=PATH,...] --run-dir DIR
    lsdt moe train --phase experts [--trunk CKPT] --run-dir DIR
    lsdt moe pipeline [--tiny] --run-dir DIR [--json]

The model is `lsdt moe --model` (default s7-moe-140m; `--model` also works after `train`/`pipeline`).
torch is imported only when a run starts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.commands.common import path_arg, positive_float, positive_int, print_json, seed
from engine.errors import UserError

OVERRIDES = ("trunk_steps", "expert_steps", "router_steps", "device_batch", "lr", "seed", "device",
             "eval_every", "ckpt_every", "log_every")
# what a later phase (or a --resume) may change: how long the remaining jobs run and where
PHASE2_MAY_CHANGE = {"expert_steps", "router_steps", "device", "eval_every", "ckpt_every", "log_every"}
# what `--phase trunk --resume` may change: the trunk's budget and where it runs (not what it learns)
TRUNK_RESUME_MAY_CHANGE = {"trunk_steps", "device", "eval_every", "ckpt_every", "log_every"}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", required=True, type=path_arg, metavar="DIR", help="the MoE run directory (phases, weights, artifact)")
    p.add_argument("--model", dest="moe_model", type=path_arg, metavar="NAME|FILE", help="MoE profile or file with trunk_layers > 0 (default s7-moe-140m)")
    p.add_argument("--tiny", action="store_true", help="the CPU-sized model (2+2 layers, d_model 64, byte vocab) and step budgets")
    p.add_argument("--domains", metavar="NAME=PATH,...", help="override domain slices (built-in: code, math, reasoning, general)")
    p.add_argument("--trunk-steps", type=positive_int, help="phase-1 steps (default 300 with --tiny, else 2000)")
    p.add_argument("--expert-steps", type=positive_int, help="phase-2 steps per expert (default 200 with --tiny, else 1000)")
    p.add_argument("--router-steps", type=positive_int, help="router steps (default 300 with --tiny, else 1000)")
    p.add_argument("--device-batch", type=positive_int, help="sequences per step (default 8)")
    p.add_argument("--lr", type=positive_float, help="peak learning rate (default 3e-3 with --tiny, else 6e-4)")
    p.add_argument("--seed", type=seed, help="seed of the weights and the data order (default 1337)")
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), help="default auto")
    p.add_argument("--workers", type=positive_int, help="parallel phase-2 processes (default: one per GPU; 2 on CPU; 1 = sequential in-process)")
    p.add_argument("--eval-every", type=positive_int, help="steps between val evaluations (default 100)")
    p.add_argument("--ckpt-every", type=positive_int, help="steps between checkpoints (default 100; always at the end)")
    p.add_argument("--log-every", type=positive_int, help="steps between metrics lines (default 10)")
    p.add_argument("--data-cache", type=path_arg, help="token cache directory (default $LSDT_CACHE_DIR or ~/.cache/lsdt)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir (finished jobs are kept)")


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--phase", required=True, choices=("trunk", "experts"), help="trunk (phase 1) or experts (phase 2, trunk frozen)")
    p.add_argument("--trunk", type=path_arg, metavar="CKPT", help="phase 2: the trunk (a trunk .s7l, a trunk checkpoint .pt, or a MoE run dir; "
                                                  "default DIR/weights/trunk.s7l)")
    _common(p)


def add_pipeline_arguments(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--calib", type=positive_int, default=16, help="calibration sequences per domain, held out (default 16)")
    p.add_argument("--eval-seqs", type=positive_int, default=16, help="perplexity sequences per domain, held out (default 16)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (progress goes to stderr)")


def resolve_config(args: argparse.Namespace):
    """A fresh MoETrainConfig from the flags."""
    from engine.runtime.moe.config import BUILTIN, FULL_DEFAULTS, TINY_DEFAULTS, MoETrainConfig
    from engine.runtime.moe.data import default_mix, parse_domains
    from engine.specs import load_model

    spec = load_model(args.moe_model or getattr(args, "model", None) or "s7-moe-140m")
    if not spec.is_moe or not spec.trunk_layers:
        raise UserError(f"--model {spec.name}: not a trunk + experts MoE (trunk_layers = {spec.trunk_layers}, "
                        f"n_experts = {spec.n_experts}); accepted: e.g. s7-moe-140m")
    if args.tiny:
        from engine.runtime.model.moe import tiny_spec

        spec = tiny_spec(spec)
    domains = {n: (s or BUILTIN) for n, s in parse_domains(args.domains, spec.n_experts).items()}
    values = dict(TINY_DEFAULTS if args.tiny else FULL_DEFAULTS)
    extra = {}
    for k in OVERRIDES:
        v = getattr(args, k, None)
        if v is not None:
            (values if k in values else extra)[k] = v
    cfg = MoETrainConfig(model=spec.to_dict(), tiny=bool(args.tiny), domains=domains, mix=default_mix(list(domains)),
                         data_cache=args.data_cache or "", **values, **extra)
    if cfg.warmup >= min(cfg.trunk_steps, cfg.expert_steps, cfg.router_steps):
        cfg.warmup = max(0, min(cfg.trunk_steps, cfg.expert_steps, cfg.router_steps) // 5)
    return cfg


def _apply_phase2_flags(cfg, args: argparse.Namespace, where: str, may_change: set[str] = PHASE2_MAY_CHANGE,
                        who: str = "phase 2"):
    for k in OVERRIDES:
        v = getattr(args, k, None)
        if v is None:
            continue
        if k in may_change:
            setattr(cfg, k, v)
        elif v != getattr(cfg, k):
            raise UserError(f"--{k.replace('_', '-')} {v}: fixed to {getattr(cfg, k)} by {where}; drop the flag "
                            f"({who} may change --{', --'.join(sorted(x.replace('_', '-') for x in may_change))})")
    if args.tiny and not cfg.tiny:
        raise UserError(f"--tiny: {where} trains the full-size model; drop --tiny")
    return cfg


def _workers(args, cfg) -> int:
    from engine.runtime.moe.train import default_workers

    return args.workers or default_workers(cfg.device)


def run_train(args: argparse.Namespace) -> int:
    from engine.runtime.moe import train as moe_train
    from engine.runtime.moe.config import CONFIG_FILE, read_config, write_config
    from engine.runtime.moe.pipeline import check_device, prepare_run_dir

    root = Path(args.run_dir)
    if args.phase == "trunk":
        if args.trunk:
            raise UserError("--trunk is for --phase experts (phase 1 trains the trunk)")
        cfg = resolve_config(args)
        prepare_run_dir(root, cfg, args.resume)  # a resume: the flags' model and domains must be the run's
        if args.resume:
            # The run's moe.toml is what it trains with (the flags' defaults are not: a resume
            # without --trunk-steps kept going to the default budget); given flags may change the
            # budget and the device, and the file is rewritten so a later resume agrees.
            where = str(root / CONFIG_FILE)
            cfg = _apply_phase2_flags(read_config(root), args, where, TRUNK_RESUME_MAY_CHANGE, "a trunk --resume")
            write_config(root, cfg)
        moe_train.run_job(cfg, root, "trunk", resume=args.resume)
        print(f"next: lsdt moe train --phase experts --run-dir {root}")
        return 0
    if (root / CONFIG_FILE).is_file():
        cfg = _apply_phase2_flags(read_config(root), args, str(root / CONFIG_FILE))
        if args.trunk:
            _import_trunk(args.trunk, root, cfg)
    else:
        if not args.trunk:
            raise UserError(f"--run-dir {root} holds no MoE run ({CONFIG_FILE}); give --trunk CKPT, or run --phase trunk first")
        cfg = _apply_phase2_flags(_trunk_config(args.trunk), args, f"--trunk {args.trunk}")
        if args.data_cache:
            cfg.data_cache = args.data_cache
        if args.domains:
            from engine.runtime.moe.config import BUILTIN
            from engine.runtime.moe.data import parse_domains

            cfg.domains = {n: (s or BUILTIN) for n, s in parse_domains(args.domains, cfg.spec.n_experts).items()}
        check_device(cfg)
        root.mkdir(parents=True, exist_ok=True)
        write_config(root, cfg)
        _import_trunk(args.trunk, root, cfg)
    if (root / "experts").exists() and not args.resume:
        raise UserError(f"{root / 'experts'} already holds phase 2; add --resume to continue it, or pick another --run-dir")
    moe_train.run_phase2(cfg, root, _workers(args, cfg), resume=args.resume)
    print(f"next: lsdt moe pipeline --resume --run-dir {root}  (quantize + seal + verify)")
    return 0


def _trunk_source(trunk: str) -> tuple[str, Path]:
    """('s7l' | 'pt', path) of a --trunk value."""
    from engine.runtime.train.checkpoint import list_checkpoints
    from engine.runtime.moe.config import weights_path

    p = Path(trunk)
    if p.is_dir():
        if weights_path(p, "trunk").is_file():
            return "s7l", weights_path(p, "trunk")
        for d in (p, p / "trunk"):
            found = list_checkpoints(d)
            if found:
                return "pt", found[0][1]
        raise UserError(f"--trunk {trunk}: no weights/trunk.s7l and no checkpoints/step_*.pt under it")
    if not p.is_file():
        raise UserError(f"--trunk {trunk}: no such file or directory")
    return ("s7l" if p.suffix == ".s7l" else "pt"), p


def _read_trunk(trunk: str):
    """(MoETrainConfig of the trunk's run, {name: tensor})."""
    import json

    from engine.runtime.moe.config import MoETrainConfig

    kind, path = _trunk_source(trunk)
    if kind == "s7l":
        from engine.runtime.moe.train import PART_KIND
        from engine.runtime.seal.s7l import load_tensors

        tensors, meta = load_tensors(path)
        if meta.get("kind") != PART_KIND or meta.get("part") != "trunk":
            raise UserError(f"--trunk {path}: not trunk weights of `lsdt moe train` (kind {meta.get('kind')!r}, part {meta.get('part')!r})")
        return MoETrainConfig.from_dict(json.loads(meta["train_config"]), str(path)), tensors
    from engine.runtime.train.checkpoint import read_checkpoint

    try:
        state = read_checkpoint(path)
    except (ValueError, OSError) as exc:
        raise UserError(f"--trunk {path}: not a usable checkpoint: {exc}") from None
    if state.get("job") != "trunk" or "config" not in state:
        raise UserError(f"--trunk {path}: not a trunk checkpoint of `lsdt moe train` (job {state.get('job')!r})")
    return MoETrainConfig.from_dict(state["config"], str(path)), state["model"]


def _trunk_config(trunk: str):
    return _read_trunk(trunk)[0]


def _import_trunk(trunk: str, root: Path, cfg) -> None:
    """Seal the given trunk into DIR/weights/trunk.s7l (the file phase 2 loads)."""
    import torch

    from engine.runtime.moe.config import weights_path
    from engine.runtime.moe.train import build_moe, seal_part

    src_cfg, tensors = _read_trunk(trunk)
    if src_cfg.model != cfg.model:
        raise UserError(f"--trunk {trunk}: trained for model {src_cfg.spec.name}, this run is {cfg.spec.name}")
    target = weights_path(root, "trunk")
    moe = build_moe(cfg)
    params = moe.trunk_parameters()
    if set(tensors) != set(params):
        raise UserError(f"--trunk {trunk}: its tensors do not match the trunk of {cfg.spec.name}")
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(tensors[n])
    seal_part(moe, "trunk", src_cfg, target, None)


def run_pipeline(args: argparse.Namespace) -> int:
    from engine.runtime.moe.config import CONFIG_FILE, read_config
    from engine.runtime.moe.pipeline import prepare_run_dir, run_pipeline as pipeline

    root = Path(args.run_dir)
    if args.resume and (root / CONFIG_FILE).is_file():
        cfg = _apply_phase2_flags(read_config(root), args, str(root / CONFIG_FILE))
    else:
        cfg = resolve_config(args)
        prepare_run_dir(root, cfg, args.resume)
    out = sys.stderr if args.json else sys.stdout
    summary = pipeline(cfg, root, _workers(args, cfg), resume=args.resume, calib=args.calib,
                       eval_seqs=args.eval_seqs, out=out)
    if args.json:
        print_json(summary)
    else:
        print(f"artifact    {summary['artifact']}")
        print(f"merkle_root {summary['merkle_root']}")
        print(f"INT8 path   {summary['path']} (activations {summary['act_mode']})")
        print(f"  {'domain':10} {'ppl fp32':>10} {'ppl int8':>10} {'delta':>9} {'routed ok':>10}")
        for name, p in summary["perplexity"].items():
            print(f"  {name:10} {p['fp32']:10.4f} {p['int8']:10.4f} {p['delta_pct']:+8.3f}% {summary['routing'][name]:10.1%}")
        v = summary["verify"]
        print(f"verify      {'OK' if v['ok'] else 'FAILED: ' + str(v['failure'])} "
              f"({sum(1 for c in v['checks'] if c['ok'])} checks passed)")
    return 0 if summary["verify"]["ok"] else 1
