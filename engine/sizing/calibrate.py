"""Calibrate the engineering model's GEMM efficiency from local probe measurements.

`lsdt probe` writes {"device": str, "hardware": profile name or null, "results": [{"depth",
"seq_len", "device_batch", "tok_per_s", "step_time_s", "peak_vram_bytes", "mfu", "status"}, ...]}.
Each "ok" row is one GPU training a nanochat-style band model (engine/sizing/shapes.band_spec) of
that depth at that sequence length and batch. For each, `calibrated_efficiency` solves for the
eta_gemm at which the engineering model's single-GPU tokens/s equals the measured one (bisection:
predicted throughput rises monotonically with eta_gemm), and takes the median over the rows; the
memory, link and overlap efficiencies stay the shared constants (efficiency.py). A probe of other hardware than the
plan's is refused (its efficiency says nothing about this GPU).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from engine.errors import UserError
from engine.sizing.efficiency import Efficiency, efficiency_for
from engine.sizing.refine import EngineeringModel, Layout
from engine.sizing.shapes import band_spec
from engine.specs import HardwareSpec, model_from_dict


def _eta_for_row(row: dict, hardware: HardwareSpec, base: Efficiency) -> float:
    """An ok row of a probe checked by bands.read_probe (integer shape, tok_per_s > 0)."""
    measured = row["tok_per_s"]
    # Rows of `lsdt probe` carry the band's head_dim and vocab_size when they differ from the defaults.
    shape = {k: row[k] for k in ("head_dim", "vocab_size") if isinstance(row.get(k), int) and not isinstance(row.get(k), bool)}
    # A row written from a training run (`lsdt monitor --calibration-out`) carries its full model.
    if isinstance(row.get("model"), dict):
        model = model_from_dict(row["model"], where="probe results[].model").with_(seq_len=row["seq_len"])
    else:
        model = band_spec(row["depth"], seq_len=row["seq_len"], **shape)
    b = row["device_batch"]
    lay = Layout(1, 1, 1, b, "none", 0, 1, False)

    def tok_per_s(eta: float) -> float:
        em = EngineeringModel(model, hardware, row["seq_len"], "bf16", base.with_(eta_gemm=eta))
        return b * row["seq_len"] / em.step_time(lay, b)["step_time_s"]

    if tok_per_s(1.0) < measured:
        return 1.0  # faster than the model at peak GEMM efficiency: the ceiling
    lo, hi = 1e-3, 1.0
    if tok_per_s(lo) > measured:
        return lo
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if tok_per_s(mid) < measured:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def calibrated_efficiency(path: str | Path, hardware: HardwareSpec, base: Efficiency | None = None) -> Efficiency:
    """The hardware's efficiency (efficiency_for) with eta_gemm measured by the probe at `path`."""
    # Imported here: the bands module and its records load only when a probe calibrates, not at every
    # Plan tab start-up (engine.plan imports this module).
    from engine.sizing.bands import read_probe

    doc = read_probe(path)  # the one probe reader (`lsdt bands --probe` reads it too)
    probe_hw = doc.get("hardware")
    if probe_hw != hardware.name:
        raise UserError(
            f"{path}: probe hardware = {probe_hw!r} does not match the plan's hardware {hardware.name!r}; "
            "calibrate with a probe run on the same GPU (lsdt probe --hardware NAME)"
        )
    base = base or efficiency_for(hardware)
    etas = []
    for row in doc["results"]:
        if row["status"] != "ok":
            continue
        etas.append(_eta_for_row(row, hardware, base))
    if not etas:
        raise UserError(f"{path}: no result with status 'ok' to calibrate from")
    eta = statistics.median(etas)
    return base.with_(eta_gemm=round(eta, 4), source=f"eta_gemm calibrated from {len(etas)} probe result(s) in {Path(path).name} on {doc['device']}")
