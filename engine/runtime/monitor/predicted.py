"""Predicted beside measured: the engineering model's tokens/s, MFU and memory per GPU for a run whose
model and GPU LSDT knows, next to what the run measured, and the measurement written back as a
calibration file for `lsdt plan --calibrate` / `lsdt predict --calibrate`.

Known means: an LSDT run (config.toml holds the full ModelSpec, the batch, and `env.hardware`, the
profile its GPU matched; a CPU run or an unknown GPU has none, so the prediction is "n/a" and says
why). A foreign run's config rarely says both the model's sequence length and the GPU, so for it
the answer is "n/a" with the reason too, never a guess.

The prediction is engine.sizing.refine.predict for the single-node data-parallel layout the LSDT
trainer runs (DP = world size, micro-batch = --device-batch, no recompute; ZeRO-3 with --fsdp, else
ZeRO-0), at the hardware profile's default efficiency (engine/sizing/efficiency.py). The calibration file
is a `lsdt probe` document with one row: the run's shape (`model`, the full ModelSpec, which
engine.sizing.calibrate reads instead of a band depth) and its measured tok/s per GPU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engine.atomic import write_atomic
from engine.errors import UserError
from engine.runtime.monitor.reader import RunReader


@dataclass
class Comparison:
    predicted: dict | None  # tok_per_s (per GPU), mfu, memory_bytes (per GPU); None: n/a
    measured: dict  # the same keys from the run's last metrics (None where it has none)
    why_na: str | None  # why there is no prediction
    step: int | None = None
    basis: dict | None = None  # what the prediction used: model, hardware, batch, seq, world

    def to_dict(self) -> dict:
        return {"predicted": self.predicted, "measured": self.measured, "why_na": self.why_na, "step": self.step,
                "basis": None if self.basis is None else {k: v for k, v in self.basis.items() if k != "model_spec"}}


def _basis(reader: RunReader) -> tuple[dict | None, str | None]:
    """What a prediction needs, from the run's config: (basis, None) or (None, why not)."""
    if reader.source != "lsdt":
        return None, f"n/a: the run's files ({reader.label}) do not name both the model's shape and the GPU it ran on"
    config = reader.config()
    env = config.get("env") if isinstance(config.get("env"), dict) else {}
    if not config.get("model"):
        return None, "n/a: config.toml has no [model]"
    hardware = env.get("hardware")
    if not hardware:
        return None, f"n/a: no hardware profile for device {env.get('device') or '?'} (a CPU run or an unknown GPU)"
    from engine.specs import load_hardware, model_from_dict

    try:
        model = model_from_dict(config["model"], where="config.toml [model]")
        hw = load_hardware(hardware)
    except UserError as exc:
        return None, f"n/a: {exc}"
    world = int(env.get("world_size") or 1)
    device_batch = int(config.get("device_batch") or 1)
    grad_accum = int(config.get("grad_accum") or 1)
    return {"model": model.name, "model_spec": model, "hardware": hw.name, "hardware_spec": hw, "device": env.get("device"),
            "world_size": world, "device_batch": device_batch, "grad_accum": grad_accum, "seq_len": model.seq_len,
            "zero": 3 if config.get("fsdp") else 0}, None


def compare(reader: RunReader) -> Comparison:
    last = reader.last
    world = 1
    basis, why = _basis(reader)
    if basis is not None:
        world = basis["world_size"]
    tok = last.get("tok_per_s")
    measured = {"tok_per_s": None if tok is None else tok / world, "mfu": last.get("mfu"),
                "memory_bytes": last.get("vram_peak_bytes")}
    if basis is None:
        return Comparison(None, measured, why, last.get("step"))
    from engine.sizing.prediction import Prediction
    from engine.sizing.refine import predict

    try:
        r = Prediction.of(predict(basis["model_spec"], basis.pop("hardware_spec"), gpus=world, tp=1, pp=1,
                    global_batch=basis["device_batch"] * basis["grad_accum"] * world, micro_batch=basis["device_batch"],
                    seq_len=basis["seq_len"], recompute="none", zero=basis["zero"], precision="bf16"))
    except UserError as exc:
        return Comparison(None, measured, f"n/a: {exc}", last.get("step"), basis)
    predicted = {"tok_per_s": r.tokens_per_s_per_gpu, "mfu": r.mfu, "memory_bytes": r.memory_per_gpu_bytes}
    return Comparison(predicted, measured, None, last.get("step"), basis)


def calibration_probe(reader: RunReader, comparison: Comparison) -> dict:
    """The run's measurement as a `lsdt probe` document (one "ok" row)."""
    b = comparison.basis
    tok = comparison.measured["tok_per_s"]
    if b is None or tok is None or tok <= 0:
        raise UserError(f"{reader.path}: nothing to calibrate from: "
                        + (comparison.why_na or "no tok/s measured yet"))
    model = b["model_spec"]
    tokens_per_step = b["device_batch"] * b["grad_accum"] * b["seq_len"]
    row = {"depth": model.n_layer, "model": model.to_dict(), "seq_len": b["seq_len"], "device_batch": b["device_batch"],
           "grad_accum": b["grad_accum"], "tok_per_s": tok, "step_time_s": tokens_per_step / tok,
           "peak_vram_bytes": comparison.measured["memory_bytes"], "mfu": comparison.measured["mfu"], "status": "ok"}
    return {"device": b["device"], "hardware": b["hardware"], "results": [row],
            "source": f"lsdt monitor: run {reader.path} at step {comparison.step}"}


def write_calibration(reader: RunReader, out: str | Path | None = None) -> Path:
    """Write the calibration file (default: <run>/calibration_step_<N>.json); never over an existing file."""
    comparison = compare(reader)
    doc = calibration_probe(reader, comparison)
    path = Path(out) if out else reader.path / f"calibration_step_{comparison.step}.json"
    if path.exists():
        raise UserError(f"{path}: exists already; accepted: a new file name")
    return write_atomic(path, json.dumps(doc, indent=2) + "\n")
