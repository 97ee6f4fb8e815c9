"""INT8 post-training quantization: per-row absmax weights, calibrated activations, INT8 matmul.

Weights (seed 002, sec. 5, "per-row scale calibration"):

    scale[i] = max_j |W[i, j]| / 127
    Q[i, j]  = clamp(round(W[i, j] / scale[i]), -128, 127)          (int8)
    W~[i, j] = Q[i, j] * scale[i]                                    (the dequantized weight)

A row is one OUTPUT channel: torch's nn.Linear stores W as [out_features, in_features] and
computes y = x W^T, so row i of W produces output feature i, and one scale per row factors out
of the dot product: y[:, i] = scale[i] * (x . Q[i, :]). The seed writes W[in_dim, out_dim] with a
scale per column j; that is the same axis seen transposed. For an embedding table
[vocab, d_model] a row is one token's vector (and, tied, the LM head's output channel for that
token), so the same scales serve both uses. round() is round-half-to-even (torch.round). With
absmax scaling |W/scale| <= 127, so the clamp only guards float round-off; -128 is never produced.
An all-zero row gets scale 0 and Q = 0.

Activations (W8A8): symmetric int8 in [-127, 127] with either
  - "static" per-tensor scales: absmax over held-out calibration batches / 127, recorded once by
    `calibrate` (SmoothQuant's "per-tensor static" setting, Xiao et al. 2023, Table 2), or
  - "dynamic" per-token scales: each row of x uses its own absmax / 127 at run time
    (LLM.int8()'s vector-wise activation quantization, Dettmers et al. 2022, sec. 3.1).

INT8 matmul: torch._int_mm(int8 [M, K], int8 [K, N]) -> int32 [M, N] (exact integer
accumulation), then y = acc * s_x * scale[None, :]. Whether _int_mm runs is probed on the actual
device, never assumed (`int_mm_works`); where it does not, the path is int8 weight-only: Q is
stored int8 and dequantized to W~ (fp32, formula above) inside each forward, then a float matmul.
`Int8Linear.path` says which path a module runs.

Torch is imported at module level: import this only from runtime code (never from the TUI).
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

QMAX_W = 127.0  # absmax maps to +-127 (seed 002: "/ 127.0")
QMAX_A = 127.0  # activations: symmetric [-127, 127], so -x quantizes to -q
ACT_MODES = ("static", "dynamic")


# Rows are processed in blocks of ~1 MB of fp32 so the block's temporary stays in L2 and is reused:
# one DRAM read of W and one write of Q instead of a fresh 4-byte-per-weight temporary per step
# (measured 1.0 -> 1.7 GB/s on a 154 MB embedding, benchmarks/seal_verify_speed.py machine).
BLOCK_ELEMS = 1 << 19


def _row_blocks(rows: int, cols: int):
    step = max(1, BLOCK_ELEMS // max(cols, 1))
    return ((r, min(r + step, rows)) for r in range(0, rows, step)), step


@contextlib.contextmanager
def intra_op_threads(n: int):
    """Run torch ops with n intra-op threads, then restore the previous count.

    Quantization is memory-bound, so a second thread adds little; on a shared machine an OpenMP
    team waiting for a descheduled thread stalls every op (measured on the 2-core benchmark box
    under load ~3: 1 thread 420-510 MB/s, 2 threads 240-440 MB/s).
    """
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def quantize_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w [rows, cols] -> (Q int8 [rows, cols], scale fp32 [rows]); row i of w is w[i, :]."""
    if w.dim() != 2:
        raise ValueError(f"per-row quantization needs a 2-D weight, got shape {list(w.shape)}")
    w = w.detach().float()
    rows, cols = w.shape
    q = torch.empty(rows, cols, dtype=torch.int8, device=w.device)
    scale = torch.empty(rows, dtype=torch.float32, device=w.device)
    blocks, step = _row_blocks(rows, cols)
    buf = torch.empty(min(step, rows), cols, dtype=torch.float32, device=w.device)
    for r0, r1 in blocks:
        wb, xb = w[r0:r1], buf[:r1 - r0]
        # max |W[i, :]| as the inf-norm of each row: one read, no |W| temporary
        s = torch.linalg.vector_norm(wb, float("inf"), dim=1).div_(QMAX_W)
        scale[r0:r1] = s
        safe = torch.where(s > 0, s, torch.ones_like(s))  # all-zero row: Q = 0 whatever the divisor
        torch.div(wb, safe.unsqueeze(1), out=xb)
        q[r0:r1].copy_(xb.round_().clamp_(-128, 127))
    return q, scale


def dequantize_rows(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """W~ = Q * scale[:, None] in fp32."""
    return q.float() * scale.unsqueeze(1)


@dataclass
class TensorError:
    """Quantization error of one weight tensor: max |W - W~| and ||W - W~||_F / ||W||_F."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    rel_fro: float

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "max_abs": self.max_abs, "rel_fro": self.rel_fro}


def tensor_error(name: str, w: torch.Tensor, q: torch.Tensor, scale: torch.Tensor) -> TensorError:
    """Exact W - W~ per block of rows; sums of squares accumulate in float64 (Python floats)."""
    w = w.detach().float()
    rows, cols = w.shape
    blocks, step = _row_blocks(rows, cols)
    buf = torch.empty(min(step, rows), cols, dtype=torch.float32, device=w.device)
    max_abs = sq_diff = sq_w = 0.0
    for r0, r1 in blocks:
        wb, db = w[r0:r1], buf[:r1 - r0]
        db.copy_(q[r0:r1]).mul_(scale[r0:r1].unsqueeze(1)).sub_(wb)  # W~ - W (the sign does not matter)
        max_abs = max(max_abs, torch.linalg.vector_norm(db, float("inf")).item())
        sq_diff += torch.linalg.vector_norm(db).item() ** 2
        sq_w += torch.linalg.vector_norm(wb).item() ** 2
    rel = (sq_diff ** 0.5) / (sq_w ** 0.5) if sq_w > 0 else 0.0
    return TensorError(name, tuple(w.shape), max_abs, rel)


@functools.lru_cache(maxsize=None)
def int_mm_works(device_type: str) -> bool:
    """Does torch._int_mm run and give the exact integer product on this device type?

    Probed with the shapes it must handle (one token, a few tokens, K and N not multiples of 8):
    CUDA's kernel, for one, needs M > 16 and K, N multiples of 8; `Int8Linear` pads M and checks
    K, N per module.
    """
    if not hasattr(torch, "_int_mm"):
        return False
    try:
        gen = torch.Generator().manual_seed(0)
        for m in (1, 17, 32):
            a = torch.randint(-127, 128, (m, 64), dtype=torch.int8, generator=gen)
            b = torch.randint(-127, 128, (48, 64), dtype=torch.int8, generator=gen)
            got = torch._int_mm(_pad_rows(a, device_type).to(device_type), b.to(device_type).t())[:m].cpu()
            if not torch.equal(got, a.int() @ b.int().t()):
                return False
    except (RuntimeError, NotImplementedError, TypeError):
        return False
    return True


def _pad_rows(x: torch.Tensor, device_type: str) -> torch.Tensor:
    """CUDA's _int_mm needs M > 16: pad with zero rows (dropped from the result)."""
    if device_type == "cuda" and x.size(0) <= 16:
        return torch.cat([x, x.new_zeros(17 - x.size(0), x.size(1))])
    return x


def quantize_activation(x: torch.Tensor, act_scale: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """x [M, K] float -> (int8 [M, K], scale broadcastable to [M, 1]); static when act_scale is given."""
    if act_scale is None:
        s = x.abs().amax(dim=1, keepdim=True) / QMAX_A
        s = torch.where(s > 0, s, torch.ones_like(s))
    else:
        s = act_scale.reshape(1, 1).to(x.dtype)
    return torch.round(x / s).clamp_(-QMAX_A, QMAX_A).to(torch.int8), s


class Int8Linear(nn.Module):
    """y = x W~^T with W stored int8 per row (output channel) and fp32 row scales.

    path "w8a8": activations quantized too (static or dynamic scales), torch._int_mm, int32
    accumulation. path "weight-only": W~ = Q * scale dequantized per forward, fp32 matmul.
    """

    def __init__(self, q: torch.Tensor, scale: torch.Tensor, act_scale: torch.Tensor | None = None,
                 act_mode: str = "static", allow_int_mm: bool = True):
        super().__init__()
        if act_mode not in ACT_MODES:
            raise ValueError(f"act_mode {act_mode!r}; accepted: {', '.join(ACT_MODES)}")
        if act_mode == "static" and act_scale is None:
            raise ValueError("static activation quantization needs a calibrated act_scale")
        self.out_features, self.in_features = q.shape
        self.register_buffer("weight", q)  # int8 [out, in]
        self.register_buffer("weight_scale", scale.float())  # [out]
        self.register_buffer("act_scale", None if act_mode == "dynamic" else act_scale.float().reshape(()))
        self.act_mode = act_mode
        dev = q.device.type
        shapes_ok = dev != "cuda" or (self.in_features % 8 == 0 and self.out_features % 8 == 0)
        self.path = "w8a8" if allow_int_mm and shapes_ok and int_mm_works(dev) else "weight-only"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        if self.path == "weight-only":
            return F.linear(x, dequantize_rows(self.weight, self.weight_scale).to(x.dtype))
        x2 = x.reshape(-1, self.in_features).float()
        xq, s_x = quantize_activation(x2, self.act_scale)
        m = xq.size(0)
        acc = torch._int_mm(_pad_rows(xq, xq.device.type), self.weight.t())[:m]
        y = acc.float() * s_x * self.weight_scale.unsqueeze(0)
        return y.to(x.dtype).reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, path={self.path}, act={self.act_mode}"


class Int8Embedding(nn.Module):
    """Lookup of int8 rows, each dequantized with its row (token) scale: E~[t] = Q[t] * scale[t]."""

    def __init__(self, q: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", q)
        self.register_buffer("weight_scale", scale.float())

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return F.embedding(idx, self.weight).float() * self.weight_scale[idx].unsqueeze(-1)


@torch.no_grad()
def calibrate(model: nn.Module, batches, names: list[str]) -> dict[str, float]:
    """Per-tensor input absmax of each named nn.Linear over the calibration batches.

    `batches` yields idx tensors [B, T]; the model runs in eval mode, outputs are discarded.
    """
    modules = dict(model.named_modules())
    absmax = {n: 0.0 for n in names}
    hooks = []
    for n in names:
        def hook(_mod, inputs, n=n):
            absmax[n] = max(absmax[n], inputs[0].detach().abs().max().item())
        hooks.append(modules[n].register_forward_pre_hook(hook))
    was_training = model.training
    model.eval()
    try:
        seen = 0
        for idx in batches:
            model(idx)
            seen += 1
        if not seen:
            raise ValueError("calibration needs at least one batch")
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return absmax
