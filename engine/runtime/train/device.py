"""Which device a run uses, what it is called, and which hardware profile (peak FLOP/s) it is.

`match_hardware` maps the name torch or NVML reports to a built-in profile in profiles/hardware/.
It matches exact product variants only: a name it does not know (a CPU, a laptop GPU, an H100 NVL,
a GH200, an RTX 4090 D) gives None, so MFU is reported as null rather than computed against the
wrong peak. This module imports torch only inside the functions that need a device.
"""

from __future__ import annotations

import platform
import re

from engine.errors import UserError

DEVICE_CHOICES = ("auto", "cuda", "cpu")

# (pattern over the lower-cased name with "nvidia"/"geforce"/"amd" removed, profile name).
# Names as reported by torch.cuda.get_device_name / nvmlDeviceGetName, e.g. "NVIDIA H100 80GB HBM3"
# (SXM5), "NVIDIA H100 PCIe", "NVIDIA A100-SXM4-80GB", "NVIDIA GeForce RTX 4090", "AMD Instinct MI300X".
_PROFILE_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"h100 (80gb )?pcie", "h100-pcie"),
    (r"h100 (sxm5?( 80gb)?( hbm3)?|80gb hbm3)", "h100-sxm"),  # the SXM5 part reports "H100 80GB HBM3"
    (r"h200( sxm)?( 141gb)?( hbm3e)?", "h200"),
    (r"a100[- ]sxm4?[- ]80gb", "a100-80g-sxm"),
    (r"a100[- ]sxm4?[- ]40gb", "a100-40g-sxm"),
    (r"l40s", "l40s"),
    (r"b200", "b200"),
    (r"rtx 4090", "rtx4090"),
    (r"rtx 3090", "rtx3090"),
    (r"instinct mi300x( vf)?", "mi300x"),  # VF: the same GPU behind SR-IOV (cloud VMs)
)


def _normalise(name: str) -> str:
    n = name.lower().strip()
    for vendor in ("nvidia", "geforce", "amd", "tesla"):
        n = re.sub(rf"\b{vendor}\b", " ", n)
    return " ".join(n.split())


def match_hardware(device_name: str | None) -> str | None:
    """The built-in hardware profile name of a device name, or None when unknown (never a guess)."""
    if not device_name:
        return None
    n = _normalise(device_name)
    for pattern, profile in _PROFILE_PATTERNS:
        if re.fullmatch(pattern, n):
            return profile
    return None


def resolve_device(requested: str = "auto"):
    """'auto' -> cuda when available, else cpu; 'cuda' without a GPU is a UserError."""
    import torch

    if requested not in DEVICE_CHOICES and not requested.startswith("cuda:"):
        raise UserError(f"--device {requested!r}; accepted: {' | '.join(DEVICE_CHOICES)} (or cuda:N)")
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {requested}: no CUDA GPU is visible to torch {torch.__version__} "
                            "(no NVIDIA driver, CUDA_VISIBLE_DEVICES empty, or a CPU-only torch build); use --device cpu")
        dev = torch.device(requested)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"--device {requested}: only {torch.cuda.device_count()} CUDA device(s) visible")
        return dev
    return torch.device("cpu")


def device_name(device) -> str:
    """The device's product name: torch's CUDA name, or the CPU's model string."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return _cpu_name()


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def peak_flops_for(device) -> float | None:
    """Dense bf16 peak FLOP/s of `device` from its matched profile; None for CPU or unknown GPUs."""
    if device.type != "cuda":
        return None
    profile = match_hardware(device_name(device))
    if profile is None:
        return None
    from engine.specs import load_hardware

    return load_hardware(profile).peak_flops


def mfu(flops_per_token_: float, tok_per_s: float, peak_flops: float | None, n_devices: int = 1) -> float | None:
    """Model FLOPs utilisation = FLOPs/token x tokens/s / (devices x peak FLOP/s) (PaLM, Chowdhery et
    al. 2022, App. B). None when the peak is unknown: never computed against a guessed peak.

    `tok_per_s` is the whole job's throughput over its `n_devices` (what lsdt train, lsdt moe and
    lsdt probe all log), so the peak is scaled by the device count."""
    if not peak_flops or not tok_per_s:
        return None
    return flops_per_token_ * tok_per_s / (n_devices * peak_flops)


def vram_bytes(device) -> dict:
    """The metrics' VRAM fields: torch's allocated and peak-allocated bytes on CUDA, None elsewhere."""
    import torch

    cuda = device.type == "cuda"
    return {"vram_alloc_bytes": torch.cuda.memory_allocated(device) if cuda else None,
            "vram_peak_bytes": torch.cuda.max_memory_allocated(device) if cuda else None}
