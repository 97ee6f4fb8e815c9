"""Achievable fractions of a device's peak, one set for every GPU, and the roofline that turns
them into the time of one matmul or one memory-bound kernel.

Four fractions, each of one kind of hardware unit, never a per-run or per-generation fudge (the
validation in benchmarks/validate.py uses exactly these):

    eta_gemm   training GEMM throughput / peak FLOP/s = TRAINING_GEMM_FRACTION x the profile's
               measured best-GEMM ceiling (matmul_flops / peak_flops)
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


# One set of constants for every GPU. What differs between GPUs comes from the hardware profile:
# peak FLOP/s (and FP8 peak), the measured maximum achievable matmul FLOP/s (`matmul_flops`), HBM
# bandwidth, and the NVLink / NIC / host-link bandwidths. One constant is fitted (marked FITTED),
# on every row of shared/validation/published_runs.toml at once; benchmarks/validate.py refits it
# leaving one paper out and prints both error sets. The rest are measurements from the literature.
#
#   TRAINING_GEMM_FRACTION 0.80 FITTED -- the training GEMMs' sustained throughput over the best
#     large GEMM (MAMF) of the same GPU: TP-split widths, odd shapes and the fp16 loss-scaling and
#     bias/activation epilogues sustain less than the best shape. Fitted on the 32 published rows
#     (31 A100, 1 H100): 0.80 (mean |log error| minimum on a 0.01 grid). On A100 it gives
#     0.80 x 267.9/312 = 0.69 of peak (214 TFLOP/s), on H100 0.80 x 792.1/989 = 0.64.
#   UNMEASURED_MATMUL_FRACTION 0.826 -- a profile without `matmul_flops`: the median MAMF/peak of
#     the four NVIDIA rows of Bekman's table (A100 SXM 85.9%, GH200 83.0%, A100 PCIe 82.2%, H100 SXM
#     80.1%). Calibrate with a probe (`lsdt plan --calibrate PROBE.json`) before betting on it.
#   ETA_MEM 0.85 -- streaming (copy-like) kernels reach ~85% of nominal HBM bandwidth (~1.7 of 2.0
#     TB/s on A100-80GB, ~2.8 of 3.35 on H100): typical device-to-device copy figures.
#   ETA_INTRA 0.80 -- NCCL all-reduce bus bandwidth over NVSwitch: ~235 of 300 GB/s on DGX A100
#     (0.78), ~360 of 450 on HGX H100 (0.80): NVIDIA's published nccl-tests orders of magnitude.
#   ETA_INTER 0.80 -- NCCL bus bandwidth over one InfiniBand NIC per GPU: nccl-tests reach ~0.8-0.9
#     of HDR's 25 GB/s and NDR's 50 GB/s; the lower end is kept (NCCL's protocol overheads and the
#     PCIe switch the NIC shares with its GPUs). Until issue 20 this was fitted (0.64) on the ZeRO-3
#     rows, which the model under-counted: DeepSpeed re-gathers weights for the recomputed forward
#     (refine.EngineeringModel's zero3_recompute_gather); counted, 0.80 fits them (within 18%).
#   OVERLAP_SLOWDOWN 0.19 -- compute runs ~19% slower while a collective overlaps it (NCCL's kernels
#     take SMs and HBM bandwidth): the average slowdown measured on A100, H100, MI250 and MI210 by
#     Lee et al. 2025, "Characterizing Compute-Communication Overlap in GPU-Accelerated Distributed
#     Deep Learning" (arXiv:2507.03114; max 40%).
TRAINING_GEMM_FRACTION = 0.80
UNMEASURED_MATMUL_FRACTION = 0.826
ETA_MEM = 0.85
ETA_INTRA = 0.80
ETA_INTER = 0.80
OVERLAP_SLOWDOWN = 0.19
SOURCE = "engine/sizing/efficiency.py: one set of constants for every GPU"


@dataclass(frozen=True)
class Efficiency:
    """Achieved fractions of peak (each in (0, 1]) and where they come from."""

    eta_gemm: float
    eta_mem: float
    eta_intra: float
    eta_inter: float
    overlap_slowdown: float = OVERLAP_SLOWDOWN
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


def matmul_fraction(hardware: HardwareSpec) -> float:
    """The best large GEMM's share of peak: the profile's measured matmul_flops / peak_flops, or
    UNMEASURED_MATMUL_FRACTION where the profile has no measurement."""
    if hardware.matmul_flops:
        return hardware.matmul_flops / hardware.peak_flops
    return UNMEASURED_MATMUL_FRACTION


def efficiency_for(hardware: HardwareSpec, training_gemm_fraction: float = TRAINING_GEMM_FRACTION) -> Efficiency:
    """The efficiencies of one GPU: the shared constants, eta_gemm scaled by its measured matmul
    ceiling. `training_gemm_fraction` is the FITTED constant (benchmarks/validate.py refits it)."""
    measured = hardware.matmul_flops is not None
    what = f"eta_gemm from {hardware.name}'s measured matmul_flops {hardware.matmul_flops / 1e12:.1f} TFLOP/s" if measured else \
        f"{hardware.name} has no measured matmul_flops: {UNMEASURED_MATMUL_FRACTION} of peak assumed; calibrate with a probe"
    return Efficiency(
        eta_gemm=round(training_gemm_fraction * matmul_fraction(hardware), 4),
        eta_mem=ETA_MEM,
        eta_intra=ETA_INTRA,
        eta_inter=ETA_INTER,
        overlap_slowdown=OVERLAP_SLOWDOWN,
        source=f"{SOURCE}; {what}",
    )


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
