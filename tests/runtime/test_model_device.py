"""Device resolution and GPU-name -> hardware-profile matching (unknown is None, never a guess)."""

from __future__ import annotations

import pytest
import torch

from engine.errors import UserError
from engine.runtime.train.device import device_name, match_hardware, peak_flops_for, resolve_device
from engine.specs import builtin_names, load_hardware

KNOWN = {
    "NVIDIA GeForce RTX 4090": "rtx4090",
    "NVIDIA GeForce RTX 3090": "rtx3090",
    "NVIDIA H100 80GB HBM3": "h100-sxm",
    "NVIDIA H100 SXM5 80GB": "h100-sxm",
    "NVIDIA H100 PCIe": "h100-pcie",
    "NVIDIA A100-SXM4-80GB": "a100-80g-sxm",
    "NVIDIA A100-SXM4-40GB": "a100-40g-sxm",
    "NVIDIA H200": "h200",
    "NVIDIA L40S": "l40s",
    "NVIDIA B200": "b200",
    "AMD Instinct MI300X": "mi300x",
    "nvidia h100 80gb hbm3": "h100-sxm",
}
UNKNOWN = ["NVIDIA H100 NVL", "NVIDIA GH200 480GB", "NVIDIA H200 NVL", "NVIDIA GeForce RTX 4090 D",
           "NVIDIA GeForce RTX 4090 Laptop GPU", "NVIDIA GeForce RTX 3090 Ti", "NVIDIA L40", "NVIDIA A100 80GB PCIe",
           "NVIDIA H100", "Tesla V100-SXM2-16GB", "AMD EPYC 7B13", "", None]


@pytest.mark.parametrize("name, profile", KNOWN.items())
def test_known_names_match_a_shipped_profile(name, profile):
    assert match_hardware(name) == profile
    assert profile in builtin_names("hardware") and load_hardware(profile).peak_flops > 0


@pytest.mark.parametrize("name", UNKNOWN)
def test_unknown_names_are_none(name):
    assert match_hardware(name) is None


def test_cpu_has_no_peak_and_a_name():
    cpu = resolve_device("cpu")
    assert cpu.type == "cpu" and peak_flops_for(cpu) is None and device_name(cpu)


def test_auto_and_bad_device():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UserError, match="accepted: auto | cuda | cpu"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_gpu_is_a_user_error():
    with pytest.raises(UserError, match="no CUDA GPU"):
        resolve_device("cuda")


@pytest.mark.gpu
def test_cuda_device_name_and_peak():
    dev = resolve_device("cuda")
    name = device_name(dev)
    profile = match_hardware(name)
    peak = peak_flops_for(dev)
    assert (peak is None) == (profile is None)
    if profile:
        assert peak == load_hardware(profile).peak_flops
