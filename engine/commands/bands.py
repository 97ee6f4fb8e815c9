"""`lsdt bands`: the best nanochat-style model for one GPU in a time window (thin over engine.sizing.bands).

Hardware precedence: --hardware > the probe file's "hardware" > rtx4090. Exit 2 (one line on stderr,
after the table) when a --pilot is refused: the user asked for a projection the pilot cannot support.
"""

from __future__ import annotations

import argparse
import sys

from engine import fmt
from engine.commands.common import fraction, hours, path_arg, positive_float, positive_int, print_json
from engine.flags import depth_list, gigabytes, share_below_one
from engine.sizing import bands as B
from engine.sizing.curriculum import parse_curriculum
from engine.sizing.design import DEFAULT_ETA_COMPUTE
from engine.sizing.pilot import PILOT_AXES, PILOT_METRICS
from engine.sizing.shapes import DEFAULT_HEAD_DIM, DEFAULT_VOCAB, DEFAULT_WINDOW_PATTERN
from engine.specs import load_hardware

DEFAULT_HARDWARE = B.DEFAULT_HARDWARE


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hardware", type=path_arg, help=f"hardware profile name or TOML file (default: the probe's, else {DEFAULT_HARDWARE})")
    p.add_argument("--hours", type=hours, default=B.DEFAULT_HOURS, help="the time window: hours, or a number with a unit s/min/h/d/w (36h, 2d) (default 24)")
    p.add_argument("--depths", type=depth_list, default=list(B.DEFAULT_DEPTHS), help="depths to size (default 12,14,16,18,20)")
    p.add_argument("--seq", type=positive_int, default=2048, help="training sequence length of the table (default 2048)")
    p.add_argument("--head-dim", type=positive_int, default=DEFAULT_HEAD_DIM, help=f"head dimension (default {DEFAULT_HEAD_DIM})")
    p.add_argument("--kv-heads", type=positive_int, help="GQA: key/value heads (must divide every depth's n_head; default n_head)")
    p.add_argument("--window-pattern", default=DEFAULT_WINDOW_PATTERN, help="nanochat window pattern of S (short) and L (long), e.g. L or SSSL")
    p.add_argument("--vocab", type=positive_int, default=DEFAULT_VOCAB, help=f"vocabulary size (default {DEFAULT_VOCAB})")
    p.add_argument("--mfu", type=fraction, default=DEFAULT_ETA_COMPUTE,
                   help=f"sustained / peak FLOP/s for the estimates (default {DEFAULT_ETA_COMPUTE}); a --probe measures it")
    p.add_argument("--sft-fraction", type=share_below_one, default=B.DEFAULT_SFT_FRACTION,
                   help="share of the window for SFT + eval (default 0.15: 85/15)")
    p.add_argument("--curriculum", type=str, help="sequence stages SEQ[:TIME_FRACTION],... (default 512,1024,...,--seq in equal shares)")
    p.add_argument("--global-batch-tokens", type=positive_int, default=B.DEFAULT_GLOBAL_BATCH_TOKENS,
                   help=f"tokens per optimizer step (default {B.DEFAULT_GLOBAL_BATCH_TOKENS:,}, nanochat's)")
    p.add_argument("--vram-reserve-gb", type=gigabytes, default=B.DEFAULT_RESERVE_BYTES / 1e9,
                   help="VRAM kept free for the CUDA context and fragmentation (default 2)")
    p.add_argument("--min-tokens-per-param", type=positive_float, default=B.NANOCHAT_TOKENS_PER_PARAM[0],
                   help="tokens/param a recommended depth must reach (default 8, nanochat's low end)")
    p.add_argument("--probe", type=path_arg, metavar="FILE", help="a `lsdt probe` JSON: measured tok/s replace the estimates")
    p.add_argument("--pilot", type=path_arg, metavar="METRICS.jsonl", help="a pilot run's metrics.jsonl: fit L(t) = a + b t^-c and project")
    p.add_argument("--pilot-metric", choices=PILOT_METRICS, default=PILOT_METRICS[0], help="which loss to fit (default loss)")
    p.add_argument("--pilot-axis", choices=PILOT_AXES, default=PILOT_AXES[0],
                   help="fit against time (to the pretraining time) or tokens (to the pretraining tokens); auto: time if logged")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def compute(args: argparse.Namespace) -> B.BandsPlan:
    """The plan_bands answer the flags describe (files read here, errors as UserError)."""
    probe = B.read_probe(args.probe) if args.probe else None
    name = args.hardware or (probe or {}).get("hardware") or DEFAULT_HARDWARE
    hardware = load_hardware(name)
    pilot = None
    if args.pilot:
        from engine.sizing.pilot import read_metrics

        pilot = read_metrics(args.pilot)
    return B.plan_bands(
        hardware,
        hours=args.hours,
        depths=args.depths,
        seq_len=args.seq,
        head_dim=args.head_dim,
        n_kv_head=args.kv_heads,
        window_pattern=args.window_pattern,
        vocab_size=args.vocab,
        mfu=args.mfu,
        sft_fraction=args.sft_fraction,
        curriculum=parse_curriculum(args.curriculum) if args.curriculum else None,
        global_batch_tokens=args.global_batch_tokens,
        reserve_bytes=args.vram_reserve_gb * 1e9,
        min_tokens_per_param=args.min_tokens_per_param,
        probe=probe,
        pilot=pilot,
        pilot_metric=args.pilot_metric,
        pilot_axis=args.pilot_axis,
    )


def render(r: B.BandsPlan) -> str:
    hours = f"{r.hours:g} h"
    lines = [
        f"LSDT bands: one {r.hardware} for {hours}; peak {fmt.si(r.peak_flops, 'FLOP/s')} x MFU {r.mfu:g} = "
        f"{fmt.si(r.sustained_flops, 'FLOP/s')}; {fmt.gb(r.usable_memory_bytes)} usable of {fmt.gb(r.memory_bytes, 0)}",
        f"  envelope  {r.envelope_flop:.3g} FLOP in {hours}; global batch {r.global_batch_tokens:,} tokens; "
        f"vocab {r.shape.vocab_size:,}, head_dim {r.shape.head_dim}, window {r.shape.window_pattern}",
        "",
        f"  {'depth':>5} {'band':>4} {'d_model':>7} {'heads':>5} {'params':>7} {'FLOP/tok':>9} {'memory':>8} {'max batch':>11} "
        f"{'tok/s':>9} {'step':>8} {'pretrain':>8} {'tok/param':>9}",
    ]
    seqs = "/".join(str(x.seq_len) for x in r.rows[0].by_seq) if r.rows else ""
    rec = r.recommended.depth if r.recommended else None
    for row in r.rows:
        batch = "/".join(str(x.max_device_batch) for x in row.by_seq) if row.fits else "OOM"
        memory = fmt.gb(row.memory_bytes) if row.memory_bytes else "-"
        src = "*" if row.tokens_per_s_source == "probe" else " "
        mark = ">" if row.depth == rec else " "
        heads = f"{row.n_head}/{row.n_kv_head}" if row.n_kv_head != row.n_head else str(row.n_head)
        lines.append(
            f"{mark} {'d' + str(row.depth):>5} {row.band:>4} {row.d_model:>7} {heads:>5} {fmt.count(row.params):>7} "
            f"{row.flops_per_token:>9.3g} {memory:>8} {batch:>11} {row.tokens_per_s:>8,.0f}{src} {fmt.duration(row.step_time_s):>8} "
            f"{fmt.count(row.pretrain_tokens):>8} {row.tokens_per_param:>9.1f}"
        )
    lines.append(f"  (memory: at the power-of-two device batch; max batch: largest device batch that fits at seq {seqs}; "
                 f"tok/s, step: at seq {r.rows[0].seq_len if r.rows else ''};\n   pretrain: tokens in the pretraining split at that seq; tok/param: pretrain / params"
                 + ("; * measured by the probe)" if r.measured_rows else ")"))
    lines.append("")
    for row in r.rows:
        lines.append(f"  d{row.depth:<3} {row.verdict}")
    s = r.split
    lines += [
        "",
        f"  split     pretrain {s.pretrain_fraction:.0%} ({fmt.duration(s.pretrain_s)}, {s.pretrain_flop:.3g} FLOP) / "
        f"SFT + eval {s.sft_fraction:.0%} ({fmt.duration(s.sft_s)}, {s.sft_flop:.3g} FLOP)",
    ]
    if r.recommended:
        rc, fb = r.recommended, r.fallback
        lines.append(f"  RECOMMEND d{rc.depth} (band {rc.band}): {rc.reason}")
        lines.append(f"  fallback  d{fb.depth} (band {fb.band}): {fb.reason}" if fb else f"  fallback  {r.no_fallback_reason()}")
        c = r.curriculum
        note = r.curriculum_note(fmt.count)
        lines.append(f"  curriculum for d{c.depth}: {fmt.count(c.tokens)} pretraining tokens in {fmt.duration(c.time_s)}"
                     + (f" ({note})" if note else "") + f"; SFT + eval {fmt.count(s.sft_tokens)} tokens")
        for st in c.stages:
            fit = f"batch {st.device_batch} x {st.grad_accum} accum" if st.fits else "OOM"
            lines.append(f"    seq {st.seq_len:>5}  {st.time_fraction:.0%} of time  {fmt.duration(st.time_s):>7}  "
                         f"{st.tokens_per_s:>8,.0f} tok/s  {fmt.count(st.tokens):>6} tokens  {fit}")
    else:
        lines.append("  RECOMMEND none: no depth fits in memory; try shallower depths, a shorter --seq or a smaller --vocab")
    if r.measured:
        lines += ["", f"  measured map ({r.probe_device}):",
                  f"    {'depth':>5} {'seq':>5} {'batch':>5} {'accum':>5} {'tok/s':>9} {'step':>8} {'peak VRAM':>9} {'MFU':>5} {'tokens/window':>13}  status"]
        for m in r.measured:
            tps = f"{m.tok_per_s:,.0f}" if m.tok_per_s else "n/a"
            mfu = fmt.pct(m.mfu) if m.mfu is not None else "n/a"
            lines.append(
                f"    {'d' + str(m.depth):>5} {m.seq_len:>5} {m.device_batch or '-':>5} {m.grad_accum or '-':>5} {tps:>9} "
                f"{fmt.duration(m.step_time_s):>8} {fmt.gb(m.peak_vram_bytes):>9} {mfu:>5} {fmt.count(m.tokens_in_window):>13}  {m.status}"
            )
    if r.pilot:
        first, *rest = r.pilot.lines()
        lines += ["", f"  pilot     {first}", *(f"            {line}" for line in rest)]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    result = compute(args)
    if args.json:
        print_json(result.to_dict())
    else:
        print(render(result))
    if result.pilot and not result.pilot.ok:
        print(f"lsdt: error: --pilot {args.pilot}: pilot refused: {result.pilot.reason}", file=sys.stderr)
        return 2
    return 0
