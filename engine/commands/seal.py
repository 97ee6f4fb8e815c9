"""`lsdt seal DIR --out model.s7l`: pack a quantized directory into a sealed, read-only .s7l.

Torch-free: reads DIR's manifest and raw tensor files (engine/runtime/seal/qdir.py), packs them
(engine/runtime/seal/s7l.py), writes atomically with mode 0o444, then re-verifies the written file.
"""

from __future__ import annotations

import argparse
import time

from engine.commands.common import path_arg, print_json
from engine.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=path_arg, metavar="DIR", help="output directory of `lsdt quantize`")
    p.add_argument("--out", required=True, type=path_arg, metavar="FILE", help="the .s7l file to write (replaced atomically)")
    p.add_argument("--json", action="store_true", help="print path, merkle_root, bytes and tensor count as JSON")


def run(args: argparse.Namespace) -> int:
    from engine.atomic import write_atomic
    from engine.runtime.seal import s7l
    from engine.runtime.seal.qdir import read_qdir

    t0 = time.perf_counter()
    tensors, metadata = read_qdir(args.dir)
    blob = s7l.pack(tensors, metadata)
    path = write_atomic(args.out, blob, mode=0o444)
    report = s7l.verify(path, determinism=False)  # what landed on disk, not what we meant to write
    if not report.ok:
        raise UserError(f"{path}: written but does not verify: {report.failure}")
    out = {"path": str(path), "merkle_root": report.merkle_root, "file_bytes": len(blob),
           "n_tensors": report.n_tensors, "seconds": round(time.perf_counter() - t0, 3)}
    if args.json:
        print_json(out)
    else:
        print(f"sealed {out['n_tensors']} tensors, {len(blob):,} bytes -> {path} (read-only)")
        print(f"merkle_root {out['merkle_root']}")
    return 0
