"""The one training step: forward/backward over grad-accum micro-batches, clip, AdamW update.

`lsdt train` (engine/runtime/train/loop.py) and `lsdt probe` (engine/runtime/probe/runner.py) both run this
code, so a probe's tokens/s is the tokens/s a real run gets. Precision: bf16 autocast on CUDA
(fp32 master weights and optimizer state; the matmuls run in bf16 on the tensor cores), plain
fp32 on CPU. AdamW is the fused CUDA kernel on GPU (one launch for all parameters).

Typical use:

    model = GPT(config).to(device)
    optimizer = build_optimizer(model, OptimConfig(lr=3e-4), device)
    step = TrainStep(model, optimizer, device, grad_clip=1.0, compile=False)
    out = step([(x0, y0), (x1, y1)], lr=3e-4)       # two micro-batches = grad_accum 2
    out.loss                                        # mean loss over the micro-batches (a tensor)
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from typing import Iterable, NamedTuple

import torch
from torch import nn


@dataclass
class OptimConfig:
    """AdamW hyper-parameters (Loshchilov & Hutter 2019).

    Defaults are GPT-3's (Brown et al. 2020, App. B: beta2 0.95, eps 1e-8, weight decay 0.1),
    the same as nanoGPT's.
    """

    lr: float = 3e-4
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8

    def to_dict(self) -> dict:
        return asdict(self)


def build_optimizer(model: nn.Module, cfg: OptimConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices (dim >= 2) only; vectors/scalars are not decayed.

    The fused implementation (torch.optim.AdamW docs, "fused"): one CUDA kernel over all parameters
    instead of a loop of small ones; on CPU (torch >= 2.4) a fused C++ loop, about 3x faster here
    than the default per-tensor loop (docs/runtime.md). Older builds fall back to foreach.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    try:
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=True)
    except (RuntimeError, ValueError):  # a device/dtype/build without the fused kernel
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, foreach=True)


def autocast(device: torch.device):
    """bf16 autocast on CUDA; nothing (fp32) on CPU, where bf16 matmuls are slower, not faster."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def configure_backends(device: torch.device) -> None:
    """TF32 for any fp32 matmul left on CUDA (Ampere+); harmless elsewhere."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def synchronize(device: torch.device) -> None:
    """Wait for queued device work: timings are only meaningful between two of these."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepOutput(NamedTuple):
    loss: torch.Tensor  # mean training loss over the micro-batches, detached, on the device
    grad_norm: torch.Tensor | None  # total gradient norm before clipping (None when not clipping)


class TrainStep:
    """One optimizer step over any number of micro-batches (their count is the grad accumulation).

    `model` may be wrapped in DistributedDataParallel (gradients are all-reduced only on the last
    micro-batch: `no_sync` on the others, as DDP's docs prescribe for accumulation) or sharded with
    FSDP2 `fully_shard` (gradient reduce-scatter only on the last micro-batch, through
    `set_requires_gradient_sync`).
    `compile=True` runs the forward through torch.compile (the first steps pay the compile time).
    `stop_requested` (a callable, set by the run loop) is asked between micro-batches: when it says
    yes the step is abandoned before the optimizer update (gradients dropped, weights untouched) and
    the call returns None, so a SIGTERM is honoured within one micro-batch, not one huge step.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device,
                 grad_clip: float = 1.0, compile: bool = False):
        self.model = model
        self.optimizer = optimizer
        self.device = device
        self.grad_clip = grad_clip
        self.forward = torch.compile(model) if compile else model
        self._ddp = isinstance(model, nn.parallel.DistributedDataParallel)
        self._fsdp = hasattr(model, "set_requires_gradient_sync")  # an FSDP2-sharded module
        self.stop_requested = None

    def __call__(self, micro_batches: Iterable[tuple[torch.Tensor, torch.Tensor]], lr: float) -> StepOutput | None:
        batches = list(micro_batches)
        if not batches:
            raise ValueError("a training step needs at least one micro-batch")
        n = len(batches)
        loss_sum = None
        for i, (x, y) in enumerate(batches):
            if i and self.stop_requested is not None and self.stop_requested():
                self.optimizer.zero_grad(set_to_none=True)
                return None
            sync = i == n - 1
            if self._fsdp:
                self.model.set_requires_gradient_sync(sync)
            ctx = self.model.no_sync() if self._ddp and not sync else contextlib.nullcontext()
            with ctx:
                with autocast(self.device):
                    _, loss = self.forward(x, y)
                (loss / n if n > 1 else loss).backward()
            loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
        grad_norm = None
        if self.grad_clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
            if hasattr(grad_norm, "full_tensor"):  # FSDP2: a DTensor; the norm itself is replicated
                grad_norm = grad_norm.full_tensor()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return StepOutput(loss_sum / n, grad_norm)
