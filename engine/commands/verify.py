"""`lsdt verify model.s7l [--json]`: every format check, then V6 determinism where a model is sealed.

Exit 0 when every check passes; 1 with one line naming the first failed check otherwise;
2 for a usage error (missing file).
"""

from __future__ import annotations

import argparse
import sys

from engine.commands.common import path_arg, print_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", type=path_arg, metavar="FILE", help="a .s7l file")
    p.add_argument("--json", action="store_true", help="print the full report (every check) as JSON")
    p.add_argument("--no-determinism", action="store_true",
                   help="skip V6 (two loads, same tokens, bitwise-identical logits); format checks only")


def run(args: argparse.Namespace) -> int:
    from engine.runtime.seal import s7l

    report = s7l.verify(args.file, determinism=not args.no_determinism)
    if args.json:
        print_json(report.to_json())
    elif report.ok:
        for c in report.checks:
            mark = "ok " if c["ok"] else "n/a" if c["ok"] is None else "FAIL"
            print(f"  {mark:4} {c['check']:16} {c['detail']}")
        print(f"{args.file}: OK  merkle_root {report.merkle_root}")
    if not report.ok:
        print(f"lsdt verify: {args.file}: FAILED {report.failure}", file=sys.stderr)
        return 1
    return 0
