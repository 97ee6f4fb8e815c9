"""Quantize + seal and verify throughput on this CPU (targets: >= 300 MB/s and >= 500 MB/s).

Weights: the matrices of a GPT-2-small-shaped model (12 layers, d_model 768, d_ff 3072, vocab
50257, tied head), ~85M fp32 parameters (~340 MB), random N(0, 0.02) as at initialisation (the
values do not change the work). Timed, once each, after one small warm-up:

    quantize   per-row absmax INT8 of every matrix (engine.runtime.seal.quant.quantize_rows)
    errors     the per-tensor error report (max abs, rel. Frobenius), timed apart: a QA pass that
               `lsdt quantize` runs too, quoted both with and without
    seal       pack int8 weights + fp32 scales into .s7l, SHA-256 per tensor, Merkle root
               (engine.runtime.seal.s7l.build_sealed), then the atomic write with fsync and chmod 0o444
               (engine.atomic.write_atomic): what seal_tensors does, timed in its two parts
    verify     every format check of the written file (engine.runtime.seal.s7l.verify, V6 off: these
               are not a model's tensors): mmap, header, layout, padding, SHA-256 of every tensor

Quantize + seal is quoted in MB/s of FP32 weights in; verify in MB/s of .s7l file read. The file
was just written, so verify reads it from the page cache (a cold read is bounded by the disk).

    python benchmarks/seal_verify_speed.py [--layers 12] [--out-dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from engine.atomic import write_atomic
from engine.runtime.seal import s7l
from engine.runtime.seal.quant import intra_op_threads, quantize_rows, tensor_error


def gpt2_small_matrices(n_layer: int, d: int = 768, d_ff: int = 3072, vocab: int = 50257) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    shapes = {"embed.weight": (vocab, d)}
    for i in range(n_layer):
        for m in ("q", "k", "v", "o"):
            shapes[f"blocks.{i}.attn.{m}.weight"] = (d, d)
        shapes[f"blocks.{i}.mlp.up.weight"] = (d_ff, d)
        shapes[f"blocks.{i}.mlp.down.weight"] = (d, d_ff)
    return {n: torch.randn(s, generator=g) * 0.02 for n, s in shapes.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--out-dir", default=tempfile.gettempdir())
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads while quantizing (default 1, see quant.py)")
    args = ap.parse_args()
    weights = gpt2_small_matrices(args.layers)
    fp32_bytes = sum(w.numel() * 4 for w in weights.values())
    out = Path(args.out_dir) / f"lsdt-bench-{os.getpid()}.s7l"
    quantize_rows(torch.randn(64, 64))  # warm-up (thread pool, allocator)

    with intra_op_threads(args.threads):  # as engine.runtime.seal.quant_infer.quantize_gpt does
        t0 = time.perf_counter()
        sealed = {}
        for name, w in weights.items():
            q, s = quantize_rows(w)
            sealed[name], sealed[name + "_scale"] = q, s
        t_quant = time.perf_counter() - t0
        t0 = time.perf_counter()
        worst = max(tensor_error(n, w, sealed[n], sealed[n + "_scale"]).rel_fro for n, w in weights.items())
        t_error = time.perf_counter() - t0
    t0 = time.perf_counter()
    blob, root, _ = s7l.build_sealed(sealed, {"kind": "benchmark"})
    t_pack = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_atomic(out, blob, mode=0o444)
    t_write = time.perf_counter() - t0
    t_seal = t_pack + t_write
    file_bytes = len(blob)
    del blob
    t0 = time.perf_counter()
    report = s7l.verify(out, determinism=False)
    t_verify = time.perf_counter() - t0
    assert report.ok, report.failure
    os.chmod(out, 0o644)
    out.unlink()

    mb = 1e6
    print(f"machine      {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{args.threads} quantize thread(s); load average {os.getloadavg()[0]:.2f} (shared machine)")
    print(f"weights      {len(weights)} fp32 matrices, {fp32_bytes / mb:.1f} MB; .s7l {file_bytes / mb:.1f} MB; "
          f"worst rel. Frobenius error {worst:.4f}")
    print(f"quantize     {t_quant:.3f} s  ({fp32_bytes / mb / t_quant:.0f} MB/s fp32)")
    print(f"error report {t_error:.3f} s  ({fp32_bytes / mb / t_error:.0f} MB/s fp32; max abs + rel. Frobenius per tensor)")
    print(f"seal         {t_seal:.3f} s  ({file_bytes / mb / t_seal:.0f} MB/s of .s7l): pack + SHA-256 + Merkle {t_pack:.3f} s, "
          f"atomic write + fsync {t_write:.3f} s ({file_bytes / mb / t_write:.0f} MB/s to disk)")
    print(f"quantize+seal {fp32_bytes / mb / (t_quant + t_seal):.0f} MB/s of FP32 weights   (target >= 300)")
    print(f"  without the disk (pack only) {fp32_bytes / mb / (t_quant + t_pack):.0f} MB/s of FP32 weights")
    print(f"  with the error report {fp32_bytes / mb / (t_quant + t_error + t_seal):.0f} MB/s (what `lsdt quantize` + `lsdt seal` do)")
    print(f"verify       {t_verify:.3f} s  {file_bytes / mb / t_verify:.0f} MB/s of .s7l   (target >= 500)")


if __name__ == "__main__":
    main()
