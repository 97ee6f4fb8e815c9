"""`lsdt moe pipeline`: train trunk -> train experts + router -> quantize (calibrated) -> seal -> verify.

Every phase writes into one MoE run directory (layout in engine/runtime/moe/config.py), then

    DIR/quant/                the quantized tensors + manifest (engine/runtime/seal/qdir.py) and report.json
    DIR/model.s7l             the sealed INT8 artifact (read-only), packed by engine/runtime/seal/s7l.py
    DIR/pipeline.json         the summary printed by --json

Summary keys: artifact (the .s7l path), merkle_root, perplexity ({domain: {fp32, int8, delta_pct,
tokens}}), verify ({ok, checks, failure}), plus path (the INT8 matmul path that ran), phases (seconds
per phase), errors (per-tensor max abs / relative Frobenius error) and routing (share of held-out
tokens the router sends to their own domain's expert).

With `resume`, finished phases are kept (a job whose sealed weights verify is not rerun) and an
interrupted one continues from its newest checkpoint; quantize, seal and verify always rerun, so
`lsdt moe pipeline --resume --run-dir DIR` on a trained directory is "quantize + seal + verify".
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from engine.errors import UserError
from engine.runtime.train import rundir
from engine.runtime.moe.config import MoETrainConfig, job_dir, write_config

QUANT_DIR = "quant"
ARTIFACT = "model.s7l"
SUMMARY = "pipeline.json"


def run_pipeline(cfg: MoETrainConfig, root: str | Path, workers: int, resume: bool = False, calib: int = 16,
                 eval_seqs: int = 16, out=None) -> dict:
    from engine.atomic import write_atomic
    from engine.runtime.moe import train as moe_train
    from engine.runtime.seal import s7l
    from engine.runtime.moe.data import DomainSet
    from engine.runtime.moe.quant import domain_windows, quantize_moe, verify_moe
    from engine.runtime.seal.qdir import read_qdir
    from engine.runtime.seal.quantize_ckpt import finite_or_null, stored_bytes, write_quantized
    from engine.runtime.seal.s7l import canonical_json

    out = out or sys.stdout
    root = Path(root)
    phases: dict[str, float] = {}

    def say(msg: str) -> None:
        print(f"lsdt moe pipeline: {msg}", file=out, flush=True)

    t0 = time.perf_counter()
    if not (resume and moe_train.job_done(root, "trunk")):
        say("phase 1: trunk on all domains")
        moe_train.run_job(cfg, root, "trunk", resume=resume and rundir.is_run_dir(job_dir(root, "trunk")), out=out)
    phases["trunk_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    say("phase 2: experts (trunk frozen) and router")
    moe_train.run_phase2(cfg, root, workers, resume=resume, out=out)
    phases["experts_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    say(f"phase 3: quantize (per-row absmax INT8, {calib} calibration + {eval_seqs} eval sequences per domain)")
    moe = moe_train.assemble(root, cfg)
    domains = DomainSet.load(cfg.domain_sources(), cfg.data_cache or None, cfg.val_fraction, cfg.mix)
    windows = domain_windows(domains, cfg.spec.seq_len, calib, eval_seqs)
    routing = routing_accuracy(moe, windows)
    result, ppl = quantize_moe(moe, windows)
    qdir = write_quantized(root / QUANT_DIR, result, result.metadata)
    report = {"perplexity": ppl, "routing": routing, **result.summary(), **stored_bytes(moe, result)}
    write_atomic(qdir / "report.json", canonical_json(finite_or_null(report)))
    phases["quantize_s"] = time.perf_counter() - t0
    for name, p in ppl.items():
        say(f"  {name:10} ppl fp32 {p['fp32']:.4f}  int8 {p['int8']:.4f}  delta {p['delta_pct']:+.3f}%")

    t0 = time.perf_counter()
    tensors, metadata = read_qdir(qdir)
    artifact = write_atomic(root / ARTIFACT, s7l.pack(tensors, metadata), mode=0o444)
    phases["seal_s"] = time.perf_counter() - t0
    say(f"phase 3: sealed {artifact}")

    t0 = time.perf_counter()
    verdict = verify_moe(artifact)
    phases["verify_s"] = time.perf_counter() - t0
    say(f"phase 3: verify {'OK' if verdict['ok'] else 'FAILED: ' + str(verdict['failure'])}; merkle_root {verdict['merkle_root']}")
    summary = {
        "artifact": str(artifact), "merkle_root": verdict["merkle_root"], "perplexity": ppl,
        "verify": {"ok": verdict["ok"], "checks": verdict["checks"], "failure": verdict["failure"]},
        "path": result.path, "act_mode": report["act_mode"], "routing": routing, "phases": phases,
        "model": cfg.spec.name, "params": moe.num_params(), "fp32_bytes": report["fp32_bytes"],
        "int8_bytes": report["int8_bytes"], "file_bytes": verdict["file_bytes"], "errors": report["errors"],
        "run_dir": str(root),
    }
    write_atomic(root / SUMMARY, canonical_json(finite_or_null(summary)))
    return finite_or_null(summary)


def routing_accuracy(moe, windows: dict) -> dict:
    """Share of each domain's held-out tokens whose top-1 expert is that domain's expert."""
    import torch

    acc = {}
    with torch.no_grad():
        for e, (name, (_, ex, _)) in enumerate(windows.items()):
            _, _, _, _, top_i = moe.route(ex)
            acc[name] = float((top_i[..., 0] == e).float().mean())
    return acc


def prepare_run_dir(root: str | Path, cfg: MoETrainConfig, resume: bool) -> None:
    """A fresh directory gets moe.toml; an existing MoE run needs --resume (and the same config)."""
    from engine.runtime.moe.config import CONFIG_FILE, read_config

    root = Path(root)
    if (root / CONFIG_FILE).is_file():
        if not resume:
            raise UserError(f"--run-dir {root} already holds a MoE run; add --resume to continue it, or pick another --run-dir")
        saved = read_config(root)
        if saved.model != cfg.model or saved.domains != cfg.domains:
            raise UserError(f"--run-dir {root}: its {CONFIG_FILE} trains another model or domains "
                            f"({saved.spec.name}); drop --tiny/--model/--domains flags that differ, or pick another --run-dir")
        return
    if root.exists() and any(root.iterdir()):
        raise UserError(f"--run-dir {root} exists and is not a MoE run; accepted: a new or empty directory")
    check_device(cfg)
    write_config(root, cfg)


def check_device(cfg: MoETrainConfig) -> None:
    """--device cuda without a GPU failed after moe.toml was written, and the corrected command
    then failed with 'already holds a MoE run': check it before anything is written."""
    from engine.runtime.train.device import resolve_device

    resolve_device(cfg.device)
