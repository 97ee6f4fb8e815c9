"""Quantize a training checkpoint: load it, calibrate, quantize, measure, write the qdir.

CKPT is a checkpoint file (checkpoints/step_XXXXXXXX.pt, engine/runtime/train/checkpoint.py: read with
weights_only=True and its SHA-256 sidecar checked) or a run directory (its newest good checkpoint).
The checkpoint's "config" (the resolved TrainConfig) rebuilds the GPT and names the data.

Held-out data is the run's val split (engine/runtime/train/data.py), cut in two halves so that the
calibration and the perplexity never see the same tokens: calibration windows from the first
half, evaluation windows from the second, each a run of non-overlapping windows of seq_len + 1
tokens from the half's start (no sampling: the same checkpoint gives the same numbers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.errors import UserError
from engine.runtime.seal import quant_infer
from engine.runtime.train.checkpoint import file_sha256
from engine.runtime.seal.qdir import write_qdir
from engine.runtime.seal.s7l import canonical_json

DTYPE_CODES = {torch.int8: "I8", torch.float32: "F32"}


def load_checkpoint(ckpt: str | Path) -> tuple[dict, Path]:
    from engine.runtime.train.checkpoint import load_latest, read_checkpoint

    path = Path(ckpt)
    if path.is_dir():
        state, found, skipped = load_latest(path)
        if state is None:
            why = f" ({len(skipped)} unreadable: {skipped[0].reason})" if skipped else ""
            raise UserError(f"{path}: no usable checkpoint under {path / 'checkpoints'}{why}; accepted: a run directory or a step_*.pt file")
        return state, found
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint file or run directory")
    try:
        return read_checkpoint(path), path
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: not a usable checkpoint: {exc}") from None


def model_from_checkpoint(state: dict, where: str):
    """(GPT in eval mode with the checkpoint's weights, its TrainConfig)."""
    from engine.runtime.model import GPT, GPTConfig
    from engine.runtime.train.config import TrainConfig

    if "config" not in state or "model" not in state:
        raise UserError(f"{where}: checkpoint lacks 'config' or 'model'; accepted: a checkpoint written by `lsdt train`")
    cfg = TrainConfig.from_dict(state["config"], where)
    model = GPT(GPTConfig.from_spec(cfg.spec, dropout=0.0, **cfg.model_options()))
    weights = {k.removeprefix("_orig_mod.").removeprefix("module."): v for k, v in state["model"].items()}
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise UserError(f"{where}: weights do not fit the config's model ({str(exc).splitlines()[0][:160]})") from None
    return model.eval(), cfg


def held_out_windows(val, seq_len: int, n_calib: int, n_eval: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(calib idx [n_c, T], eval x [n_e, T], eval y [n_e, T]) from the two halves of the val tokens."""
    half = len(val) // 2
    span = seq_len + 1

    def windows(lo: int, hi: int, n: int) -> torch.Tensor:
        avail = (hi - lo - 1) // seq_len if hi - lo >= span else 0
        if avail < 1:
            raise UserError(f"the val split ({len(val):,} tokens) is too short for windows of {span} tokens in each half; "
                            "accepted: more data or a larger --val-fraction at training time")
        n = min(n, avail)
        rows = [torch.as_tensor(val[lo + i * seq_len: lo + i * seq_len + span].astype("int64")) for i in range(n)]
        return torch.stack(rows)

    calib = windows(0, half, n_calib)[:, :-1]
    ev = windows(half, len(val), n_eval)
    return calib, ev[:, :-1], ev[:, 1:]


@dataclass
class QuantizeOutcome:
    out_dir: Path
    report: dict
    seconds: float


def quantize_checkpoint(ckpt: str | Path, out_dir: str | Path, calib: int = 64, eval_seqs: int = 64,
                        act_mode: str = "static", batch: int = 8, data: str | None = None) -> QuantizeOutcome:
    from engine.runtime.train.data import load_tokens

    t0 = time.perf_counter()
    state, path = load_checkpoint(ckpt)
    model, cfg = model_from_checkpoint(state, str(path))
    tokens = load_tokens(data or cfg.data, cfg.data_cache, cfg.val_fraction)
    T = model.config.seq_len
    calib_idx, ex, ey = held_out_windows(tokens.val, T, calib, eval_seqs)
    calib_batches = list(calib_idx.split(batch))
    eval_batches = list(zip(ex.split(batch), ey.split(batch)))
    result = quant_infer.quantize_gpt(model, calib_batches if act_mode == "static" else None, act_mode)
    ppl_fp32 = quant_infer.perplexity(model, eval_batches)
    ppl_int8 = quant_infer.perplexity(result.model, eval_batches)
    metadata = dict(result.metadata, tokenizer="bytes" if tokens.vocab_size == 256 else "unknown")
    out = write_quantized(out_dir, result, metadata)
    report = {
        "checkpoint": str(path), "checkpoint_step": int(state["step"]), "checkpoint_sha256": file_sha256(path),
        "data": tokens.source, "seq_len": T,
        "calibration": ({"sequences": len(calib_idx), "tokens": calib_idx.numel(), "act_mode": act_mode,
                         "source": "val split, first half"} if act_mode == "static" else
                        {"sequences": 0, "tokens": 0, "act_mode": act_mode, "source": "none: dynamic per-token scales"}),
        "evaluation": {"sequences": len(ex), "tokens": ex.numel(), "source": "val split, second half"},
        "perplexity": {"fp32": ppl_fp32, "int8": ppl_int8, "delta_pct": 100.0 * (ppl_int8 / ppl_fp32 - 1.0)},
        **result.summary(),
        **stored_bytes(model, result),
    }
    from engine.atomic import write_atomic

    write_atomic(out / "report.json", canonical_json(finite_or_null(report)))
    return QuantizeOutcome(out, report, time.perf_counter() - t0)


def write_quantized(out_dir: str | Path, result: quant_infer.QuantResult, metadata: dict[str, str]) -> Path:
    """The quantized tensors and `metadata` as a qdir (engine/runtime/seal/qdir.py), ready to seal."""
    return write_qdir(out_dir, {n: (DTYPE_CODES[t.dtype], tuple(t.shape), bytes(quant_infer.tensor_bytes(t)))
                                for n, t in result.tensors.items()}, metadata)


def stored_bytes(model, result: quant_infer.QuantResult) -> dict:
    """The report's sizes: the FP32 model's parameters (4 bytes each) and the sealed INT8 tensors."""
    return {"fp32_bytes": sum(p.numel() * 4 for p in model.parameters()),
            "int8_bytes": sum(t.numel() * t.element_size() for t in result.tensors.values())}


def finite_or_null(obj):
    """JSON has no NaN/inf: such values (a diverged checkpoint) are written as null."""
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [finite_or_null(v) for v in obj]
    return obj
