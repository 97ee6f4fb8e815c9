"""Time of the collectives a parallel layout issues, on the link tier its group spans.

Bandwidth terms of the ring algorithms (Patarasuk & Yuan 2009; NCCL's "bus bandwidth" convention,
nccl-tests doc/PERFORMANCE.md): for a buffer of S bytes over n ranks,

    all-reduce                       2 (n-1)/n x S / bw
    reduce-scatter, all-gather         (n-1)/n x S / bw
    point-to-point send                          S / bw

with bw the per-GPU, per-direction bandwidth of the slowest link the group crosses, times its
achieved fraction (eta_intra or eta_inter). Latency terms are left out: the model is for the
large-message regime in which training collectives run (buckets of tens of MB).

Rank order is Megatron-LM's: TP innermost, then CP, then DP (expert-parallel groups are the
innermost ep ranks of DP), then PP. A TP group of tp ranks stays in one node; the CP group (stride
tp) spans nodes when tp x cp > gpus_per_node; the DP group (stride tp x cp) when tp x cp x dp does;
pipeline neighbours are on different nodes when the whole job spans more than one node.
"""

from __future__ import annotations

from engine.sizing.efficiency import Efficiency
from engine.specs import HardwareSpec


def link_bw(hw: HardwareSpec, eff: Efficiency, inter_node: bool) -> float:
    """Achieved per-GPU bandwidth of one tier (bytes/s)."""
    if inter_node and hw.inter_node_bw:
        return hw.inter_node_bw * eff.eta_inter
    return hw.intra_node_bw * eff.eta_intra


def all_reduce_s(size_bytes: float, n: int, bw: float) -> float:
    return 0.0 if n <= 1 else 2.0 * (n - 1) / n * size_bytes / bw


def reduce_scatter_s(size_bytes: float, n: int, bw: float) -> float:
    """Also the time of an all-gather of the same (full) buffer size."""
    return 0.0 if n <= 1 else (n - 1) / n * size_bytes / bw


all_gather_s = reduce_scatter_s


def all_to_all_s(size_bytes: float, n: int, bw: float) -> float:
    """Each rank sends (n-1)/n of its `size_bytes` buffer to the others (MoE dispatch / combine)."""
    return 0.0 if n <= 1 else (n - 1) / n * size_bytes / bw


def p2p_s(size_bytes: float, bw: float) -> float:
    return size_bytes / bw


def dp_spans_nodes(hw: HardwareSpec, tp: int, dp: int) -> bool:
    """`tp` is the stride of the group: tp x cp when context parallelism sits inside it."""
    return dp > 1 and tp * dp > hw.gpus_per_node


def host_link_bw(hw: HardwareSpec) -> float:
    """Achieved GPU <-> host bandwidth per direction (bytes/s) for offload: HOST_LINK_EFFICIENCY of
    the profile's host_link_bw."""
    return (hw.host_link_bw or 0.0) * HOST_LINK_EFFICIENCY


# Pinned-memory cudaMemcpy reaches ~25-26 GB/s of PCIe 4.0 x16's 32 GB/s and ~50-55 of PCIe 5.0's
# 64 (NVIDIA CUDA samples' bandwidthTest figures as commonly reported): 0.8. Not re-measured here.
HOST_LINK_EFFICIENCY = 0.8


def pp_spans_nodes(hw: HardwareSpec, tp: int, dp: int, pp: int) -> bool:
    return pp > 1 and tp * dp * pp > hw.gpus_per_node
