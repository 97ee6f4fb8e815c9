"""`lsdt probe`: measure tokens/s, step time and peak VRAM per depth x sequence length (seed M0).

Each config runs in its own subprocess (engine.runtime.probe.runner). Output:
  default   one progress line per finished config on stdout, then a summary
  --jsonl   stdout is JSON lines only (start / result per config / done; what the TUI reads),
            the progress lines go to stderr
  --json    the final document on stdout, progress lines on stderr
  --out F   the document, rewritten atomically after every config (read by `lsdt bands --probe`
            and `lsdt plan --calibrate`)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from engine import fmt
from engine.commands.common import non_negative_float, non_negative_int, path_arg, positive_float, positive_int, print_json, seconds
from engine.errors import UserError
from engine.runtime.probe.runner import (
    DEFAULT_BATCH_TOKENS, DEFAULT_DEPTHS, DEFAULT_SATURATION, DEFAULT_SEQS, DEFAULT_TIMEOUT_S, ProbeSettings, Sweep, parse_int_list,
)
from engine.sizing.shapes import DEFAULT_HEAD_DIM, DEFAULT_VOCAB


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--depths", default=",".join(map(str, DEFAULT_DEPTHS)), help="comma-separated depths (default %(default)s)")
    p.add_argument("--seqs", default=",".join(map(str, DEFAULT_SEQS)), help="comma-separated sequence lengths (default %(default)s)")
    p.add_argument("--head-dim", type=positive_int, default=DEFAULT_HEAD_DIM, help="attention head width (default %(default)s)")
    p.add_argument("--vocab", type=positive_int, default=DEFAULT_VOCAB, help="vocabulary size (default %(default)s)")
    p.add_argument("--steps", type=positive_int, default=30, help="timed steps per config (default %(default)s)")
    p.add_argument("--warmup", type=non_negative_int, default=5, help="untimed steps before timing (default %(default)s)")
    p.add_argument("--device", default="auto", help="auto | cuda | cpu (default %(default)s)")
    p.add_argument("--batch-tokens", type=positive_int, default=DEFAULT_BATCH_TOKENS,
                   help="target tokens per optimizer step; sets grad_accum and caps the batch search (default 2^19, nanochat's)")
    p.add_argument("--max-batch", type=positive_int, help="cap on the device batch search (default batch-tokens / seq)")
    p.add_argument("--micro-batches", type=positive_int, default=1, help="micro-batches per timed optimizer step (default 1)")
    p.add_argument("--compile", action="store_true", help="time the torch.compile'd step (the batch search stays eager)")
    p.add_argument("--memory-cap", type=positive_float, metavar="BYTES",
                   help="probe as if the device had only this much memory, e.g. 24G (a real OOM, also on CPU)")
    p.add_argument("--saturation", type=non_negative_float, default=DEFAULT_SATURATION, metavar="FRAC",
                   help="CPU: stop doubling the batch when that raises tok/s by less than this fraction; 0 = the largest "
                        "batch under the memory cap (default %(default)g). A CPU worker's memory cap defaults to half the "
                        "available RAM")
    p.add_argument("--timeout", type=seconds, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help="seconds per config before it is killed and marked error (default %(default)g)")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--out", type=path_arg, metavar="FILE.json", help="write the results here (atomically, after every config)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--jsonl", action="store_true", help="stream JSON lines on stdout (start, result per config, done)")
    mode.add_argument("--json", action="store_true", help="print the final JSON document on stdout")


def _check_out(path: str) -> Path:
    out = Path(path).expanduser()
    if out.is_dir():
        raise UserError(f"--out {path}: is a directory; accepted: a file path, e.g. probe.json")
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK):
        raise UserError(f"--out {path}: {parent} is not writable")
    return out


def progress_line(row: dict, index: int, total: int) -> str:
    """One human line per finished config."""
    head = f"[{index + 1}/{total}] d{row['depth']:<3} seq {row['seq_len']:<5} {row['status']:<5}"
    wall = f"({fmt.duration(row.get('wall_s'))})"
    if row["status"] != "ok":
        return f"{head} {row.get('error', '')} {wall}".rstrip()
    vram = row.get("peak_vram_bytes")
    memory = f"VRAM {fmt.gb(vram, 2)}" if vram is not None else f"RSS {fmt.gb(row.get('peak_rss_bytes'), 2)}"
    return (f"{head} batch {row['device_batch']:<4} accum {row.get('grad_accum', 1):<4} {fmt.si(row['tok_per_s'], 'tok/s'):>12}  "
            f"{fmt.duration(row['step_time_s'])}/step  {memory}  MFU {fmt.pct(row['mfu'])} {wall}")


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj, allow_nan=False, default=str) + "\n")
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    # SIGTERM (how the TUI stops a probe) unwinds like Ctrl-C through engine.cli's handler (exit 143),
    # and the running worker is killed on the way out (runner.run_config).
    settings = ProbeSettings(
        head_dim=args.head_dim, vocab_size=args.vocab, steps=args.steps, warmup=args.warmup, device=args.device,
        batch_tokens=args.batch_tokens, max_batch=args.max_batch, micro_batches=args.micro_batches,
        compile=args.compile, memory_cap_bytes=args.memory_cap, saturation=args.saturation, timeout_s=args.timeout,
        seed=args.seed,
    )
    if args.compile and args.warmup < 1:
        raise UserError("--compile with --warmup 0; accepted: --warmup >= 1 (the first compiled steps pay the compile time)")
    if args.device not in ("auto", "cuda", "cpu") and not args.device.startswith("cuda:"):
        raise UserError(f"--device {args.device!r}; accepted: auto | cuda | cpu (or cuda:N)")
    sweep = Sweep(
        depths=parse_int_list(args.depths, "--depths"), seqs=parse_int_list(args.seqs, "--seqs"),
        settings=settings, out=_check_out(args.out) if args.out else None,
    )
    try:
        sweep.validate()
    except UserError as exc:
        if args.jsonl:
            _emit({"event": "error", "message": str(exc)})
        raise
    human = sys.stderr if (args.jsonl or args.json) else sys.stdout
    configs = sweep.configs()
    if args.jsonl:
        _emit({"event": "start", "total": len(configs), "configs": [{"depth": d, "seq_len": s} for d, s in configs],
               "settings": asdict(settings), "out": str(sweep.out) if sweep.out else None})
    print(f"lsdt probe: {len(configs)} configs on {args.device} (head_dim {args.head_dim}, vocab {args.vocab}, "
          f"{args.steps} timed steps after {args.warmup} warm-up, target batch {args.batch_tokens:,} tokens)", file=human, flush=True)

    def on_result(row: dict, index: int, total: int) -> None:
        if args.jsonl:
            _emit({"event": "result", "index": index, "total": total, "result": row})
        print(progress_line(row, index, total), file=human, flush=True)

    t0 = time.monotonic()
    try:
        doc = sweep.run(on_result)
    except UserError as exc:
        if args.jsonl:
            _emit({"event": "error", "message": str(exc)})
        raise
    wall_s = time.monotonic() - t0
    counts = {status: sum(r["status"] == status for r in doc["results"]) for status in ("ok", "oom", "error")}
    if args.jsonl:
        _emit({"event": "done", "device": doc["device"], "hardware": doc["hardware"], "counts": counts,
               "wall_s": wall_s, "out": str(sweep.out) if sweep.out else None})
    if args.json:
        print_json(doc)
    hw = doc["hardware"] or "no matching hardware profile, MFU n/a"
    print(f"device {doc['device']} ({hw}); {counts['ok']} ok, {counts['oom']} oom, {counts['error']} error "
          f"in {fmt.duration(wall_s)}" + (f"; wrote {sweep.out}" if sweep.out else ""), file=human, flush=True)
    return 0
