"""`lsdt quantize CKPT --out DIR [--calib N] [--json]`: INT8 per-row PTQ of a training checkpoint.

Writes DIR/manifest.json + DIR/tensors/*.bin (what `lsdt seal DIR --out model.s7l` packs) and
DIR/report.json: per-tensor errors, the INT8 path that ran, and held-out perplexity FP32 vs INT8.
"""

from __future__ import annotations

import argparse

from engine.commands.common import path_arg, positive_int, print_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("ckpt", type=path_arg, metavar="CKPT", help="a checkpoint (checkpoints/step_*.pt) or a run directory (its newest)")
    p.add_argument("--out", required=True, type=path_arg, metavar="DIR", help="directory for the quantized tensors and report.json")
    p.add_argument("--calib", type=positive_int, default=64, metavar="N",
                   help="held-out calibration sequences for static activation scales (default 64)")
    p.add_argument("--eval-seqs", type=positive_int, default=64, metavar="N", help="held-out sequences for perplexity (default 64)")
    p.add_argument("--act", choices=("static", "dynamic"), default="static",
                   help="activation scales: static per-tensor from calibration (default) or dynamic per-token")
    p.add_argument("--batch", type=positive_int, default=8, metavar="N", help="sequences per forward pass (default 8)")
    p.add_argument("--data", type=path_arg, metavar="PATH", help="held-out corpus (default: the checkpoint's training data, its val split)")
    p.add_argument("--json", action="store_true", help="print report.json to stdout")


def run(args: argparse.Namespace) -> int:
    from engine.runtime.seal.quantize_ckpt import quantize_checkpoint

    outcome = quantize_checkpoint(args.ckpt, args.out, args.calib, args.eval_seqs, args.act, args.batch, args.data)
    r = outcome.report
    if args.json:
        print_json(r)
        return 0
    ppl = r["perplexity"]
    print(f"quantized {r['checkpoint']} (step {r['checkpoint_step']}) -> {outcome.out_dir}  [{outcome.seconds:.1f} s]")
    print(f"  method {r['method']}, INT8 path {r['path']}, activations {r['act_mode']}; "
          f"{r['fp32_bytes'] / 1e6:.2f} MB fp32 -> {r['int8_bytes'] / 1e6:.2f} MB")
    print(f"  {'tensor':40} {'shape':>14} {'max abs err':>12} {'rel Frobenius':>14}")
    for e in r["errors"]:
        print(f"  {e['name']:40} {'x'.join(map(str, e['shape'])):>14} {e['max_abs']:12.3e} {e['rel_fro']:14.3e}")
    print(f"  perplexity on {r['evaluation']['tokens']:,} held-out tokens: fp32 {ppl['fp32']:.4f}, int8 {ppl['int8']:.4f}, "
          f"delta {ppl['delta_pct']:+.2f}%")
    print(f"next: lsdt seal {outcome.out_dir} --out model.s7l")
    return 0
