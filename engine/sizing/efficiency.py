"""Achievable fractions of a device's peak, per hardware generation, and the roofline that turns
them into the time of one matmul or one memory-bound kernel.

Four numbers per generation, each a measured *ceiling* of one kind of hardware unit, never a
per-run fudge (the validation in benchmarks/validate.py uses exactly these):

    eta_gemm   large bf16 GEMM throughput / peak FLOP/s (cuBLAS on big square-ish shapes)
    eta_mem    achieved / nominal HBM bandwidth (streaming elementwise kernels)
    eta_intra  NCCL bus bandwidth / nominal intra-node link bandwidth (NVLink, xGMI, PCIe)
    eta_inter  NCCL bus bandwidth / nominal inter-node NIC bandwidth (InfiniBand, RoCE)

Efficiency that falls for small matmuls comes from the roofline (Williams, Waterman & Patterson
2009, "Roofline: an insightful visual performance model", CACM 52(4)): a GEMM of M x K by K x N
takes max(2MKN / (peak x eta_gemm), 2(MK + KN + MN) / (memory_bw x eta_mem)) seconds, so once
its arithmetic intensity MKN/(MK+KN+MN) falls below the ridge peak x eta_gemm / (bw x eta_mem)
(about 180 FLOP/B on A100, 240 on H100) its achieved FLOP/s falls in proportion. Small-width
models also lose time to memory-bound layer norms, activations, residuals and softmax, which
engine/sizing/refine.py counts byte by byte and times with eta_mem: that is the second reason
the achieved MFU of a 1.7B model is lower than that of a 530B one on the same GPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from engine.errors import UserError
from engine.specs import HardwareSpec


@dataclass(frozen=True)
class Efficiency:
    """Achieved fractions of peak (each in (0, 1]) and where they come from."""

    eta_gemm: float
    eta_mem: float
    eta_intra: float
    eta_inter: float
    overlap_slowdown: float = 0.25
    source: str = ""

    def __post_init__(self) -> None:
        for key in ("eta_gemm", "eta_mem", "eta_intra", "eta_inter"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
                raise UserError(f"efficiency {key} = {value!r}; accepted: a number in (0, 1]")
        f = self.overlap_slowdown
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 <= f < 1.0:
            raise UserError(f"efficiency overlap_slowdown = {f!r}; accepted: a number in [0, 1)")

    def to_dict(self) -> dict:
        return asdict(self)

    def with_(self, **changes) -> "Efficiency":
        data = asdict(self)
        data.update(changes)
        return Efficiency(**data)


# Per generation. Two of the five numbers per generation are read off published runs (marked
# FITTED); the others are hardware measurements from the literature. benchmarks/validate.py
# prints the errors these give; docs/engineering.md says how they were chosen.
#  ampere (A100):
#    eta_gemm 0.70 FITTED -- the sustained bf16/fp16 GEMM throughput of Megatron-LM training shapes
#      that best fits the 31 A100 rows of shared/validation/published_runs.toml (219 TFLOP/s). Ideal
#      cuBLAS shapes reach ~0.8 (NVIDIA "Matrix Multiplication Background User's Guide"); training
#      GEMMs with TP-split widths, odd sizes and fp16 loss-scaling kernels sustain less.
#    eta_mem 0.85 -- streaming (copy-like) kernels reach ~85% of nominal HBM bandwidth, ~1.7 of
#      2.0 TB/s on A100-80GB: a typical device-to-device copy figure, not re-measured here.
#    eta_intra 0.78 -- all-reduce bus bandwidth of ~230-235 GB/s on DGX A100 NVSwitch (300 GB/s),
#      the order NVIDIA's published nccl-tests results show; not re-measured here.
#    eta_inter 0.64 FITTED -- the bandwidth-bound ZeRO-3 rows of Narayanan et al. 2021 Table 2
#      (66.7 s at 175B, ~180 s at 530B) imply 15.7-17.7 GB/s of each GPU's 25 GB/s HDR NIC for
#      DeepSpeed's 2021 collectives; below the ~0.8-0.9 nccl-tests reach on HDR.
#    overlap_slowdown 0.25 FITTED -- compute runs ~25% slower while a collective overlaps it:
#      NCCL runs one thread block (one SM) per channel, tens of channels, and shares HBM
#      bandwidth with the GEMMs. The compute-bound ZeRO-3 rows (384 GPUs at 175B, 640 at 530B)
#      are what pin the value.
#  hopper (H100/H200):
#    eta_gemm 0.60 FITTED -- on the one Hopper row (llm.c GPT-2 1.5B, an approximate figure) 0.55
#      would fit exactly; 0.60 is kept because it is also Ampere's sustained/ideal ratio (0.70/0.80)
#      applied to an ideal-shape cuBLAS fraction of ~0.70 on H100 (an estimate, not measured here).
#      Calibrate with a probe (`lsdt plan --calibrate PROBE.json`) before betting a budget on it.
#    eta_mem 0.85 -- Ampere's streaming fraction (~2.8 of 3.35 TB/s); not re-measured here.
#    eta_intra 0.80 -- all-reduce bus bandwidth of ~360 GB/s on HGX H100 NVSwitch (450 GB/s), the
#      order of NVIDIA's published nccl-tests results; not re-measured here.
#    eta_inter 0.80 -- NDR 400 Gb/s all-reduce at ~40 of 50 GB/s per GPU; not validated here.
#    overlap_slowdown 0.25 -- Ampere's value; not separately validated.
#  Other generations (Ada, Blackwell, CDNA3, PCIe cards) reuse the closest one and say so in
#  `source`; --eta-compute or --calibrate PROBE.json replace eta_gemm with a measurement.
AMPERE = Efficiency(0.70, 0.85, 0.78, 0.64, 0.25, "ampere (A100) generation constants, engine/sizing/efficiency.py")
HOPPER = Efficiency(0.60, 0.85, 0.80, 0.80, 0.25, "hopper (H100/H200) generation constants, engine/sizing/efficiency.py")

_BY_HARDWARE = {
    "a100-40g-sxm": AMPERE,
    "a100-80g-sxm": AMPERE,
    "rtx3090": AMPERE.with_(source="ampere constants (GA102 not separately measured)"),
    "h100-sxm": HOPPER,
    "h100-pcie": HOPPER.with_(source="hopper constants (PCIe variant not separately measured)"),
    "h200": HOPPER,
    "b200": HOPPER.with_(source="hopper constants (Blackwell not yet measured; calibrate with a probe)"),
    "rtx4090": HOPPER.with_(source="hopper constants (Ada not separately measured; calibrate with a probe)"),
    "l40s": HOPPER.with_(source="hopper constants (Ada not separately measured; calibrate with a probe)"),
    "mi300x": HOPPER.with_(source="hopper constants (CDNA3 not measured here; calibrate with a probe)"),
}
DEFAULT = HOPPER.with_(source="unknown hardware: hopper constants; calibrate with --calibrate PROBE.json")


def efficiency_for(hardware: HardwareSpec) -> Efficiency:
    """The generation constants for a built-in profile name, else the documented default."""
    return _BY_HARDWARE.get(hardware.name, DEFAULT)


def gemm_time_s(M: float, K: float, N: float, hw: HardwareSpec, eff: Efficiency, count: float = 1.0, fp8: bool = False) -> float:
    """Roofline time of `count` GEMMs of (M x K) @ (K x N): bf16 (2 bytes per element), or with
    fp8 inputs (1 byte) at the FP8 tensor peak and a bf16 output. eta_gemm is the same fraction
    for FP8 (not validated: no published FP8 run is in the validation file)."""
    flops = 2.0 * M * K * N
    in_bytes = 1.0 if fp8 else 2.0
    bytes_moved = in_bytes * (M * K + K * N) + 2.0 * M * N
    peak = hw.peak_flops_fp8 if fp8 else hw.peak_flops
    return count * max(flops / (peak * eff.eta_gemm), bytes_moved / (memory_bw(hw) * eff.eta_mem))


def memory_bw(hw: HardwareSpec) -> float:
    """HBM bandwidth; a profile without one gets the compute-bound limit (no memory term) --
    never a guessed number: the roofline then reduces to peak x eta_gemm."""
    return hw.memory_bw if hw.memory_bw else float("inf")


def mem_time_s(bytes_moved: float, hw: HardwareSpec, eff: Efficiency) -> float:
    """Time of memory-bound kernels moving `bytes_moved` bytes through HBM."""
    return bytes_moved / (memory_bw(hw) * eff.eta_mem)
