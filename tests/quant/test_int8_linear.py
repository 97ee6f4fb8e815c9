"""The INT8 inference path: _int_mm detection, W8A8 exactness, weight-only fallback."""

from __future__ import annotations

import pytest
import torch

from engine.runtime.seal import quant
from engine.runtime.seal.quant import Int8Embedding, Int8Linear, quantize_activation, quantize_rows


def _probe_directly() -> bool:
    try:
        a = torch.randint(-127, 128, (3, 64), dtype=torch.int8)
        b = torch.randint(-127, 128, (48, 64), dtype=torch.int8)
        return torch.equal(torch._int_mm(a, b.t()), a.int() @ b.int().t())
    except (RuntimeError, NotImplementedError, AttributeError):
        return False


def test_int_mm_detection_agrees_with_a_direct_call():
    assert quant.int_mm_works("cpu") == _probe_directly()


def test_path_follows_detection_and_the_switch():
    q, s = quantize_rows(torch.randn(16, 24))
    lin = Int8Linear(q, s, None, "dynamic")
    assert lin.path == ("w8a8" if quant.int_mm_works("cpu") else "weight-only")
    assert Int8Linear(q, s, None, "dynamic", allow_int_mm=False).path == "weight-only"


@pytest.mark.skipif(not quant.int_mm_works("cpu"), reason="torch._int_mm does not run on this CPU build")
@pytest.mark.parametrize("act_mode", ["static", "dynamic"])
def test_w8a8_is_the_exact_integer_product_rescaled(act_mode):
    g = torch.Generator().manual_seed(0)
    w, x = torch.randn(12, 40, generator=g), torch.randn(2, 5, 40, generator=g)
    q, s = quantize_rows(w)
    act = torch.tensor(float(x.abs().max()) / 127.0) if act_mode == "static" else None
    lin = Int8Linear(q, s, act, act_mode)
    xq, sx = quantize_activation(x.reshape(-1, 40), act)
    expected = (xq.long() @ q.long().t()).float() * sx * s[None, :]
    assert torch.equal(lin(x).reshape(-1, 12), expected)
    ref = torch.nn.functional.linear(x, w)
    assert torch.allclose(lin(x), ref, atol=0.05 * float(ref.abs().max()))


def test_weight_only_dequantizes_per_row():
    w, x = torch.randn(12, 40), torch.randn(3, 40)
    q, s = quantize_rows(w)
    lin = Int8Linear(q, s, None, "dynamic", allow_int_mm=False)
    assert torch.equal(lin(x), torch.nn.functional.linear(x, q.float() * s[:, None]))


def test_static_needs_a_scale_and_modes_are_checked():
    q, s = quantize_rows(torch.randn(4, 4))
    with pytest.raises(ValueError, match="calibrated"):
        Int8Linear(q, s, None, "static")
    with pytest.raises(ValueError, match="act_mode"):
        Int8Linear(q, s, None, "fp8")


def test_static_activations_clamp_outside_the_calibrated_range():
    xq, _ = quantize_activation(torch.tensor([[0.5, 10.0, -10.0]]), torch.tensor(1.0 / 127))
    assert xq.tolist() == [[64, 127, -127]]


def test_embedding_rows_use_their_token_scale():
    e = torch.randn(10, 6)
    q, s = quantize_rows(e)
    emb = Int8Embedding(q, s)
    idx = torch.tensor([[3, 0, 9]])
    assert torch.equal(emb(idx), (q.float() * s[:, None])[idx])


def test_calibrate_records_input_absmax():
    lin = torch.nn.Sequential(torch.nn.Linear(4, 4, bias=False))
    batches = [torch.tensor([[1.0, -3.0, 0.0, 2.0]]), torch.tensor([[0.5, 0.5, 0.5, -5.0]])]
    assert quant.calibrate(lin, batches, ["0"]) == {"0": 5.0}
    with pytest.raises(ValueError, match="at least one"):
        quant.calibrate(lin, [], ["0"])


@pytest.mark.gpu
def test_cuda_path_is_detected_and_close_to_fp32():
    """On a GPU: _int_mm is probed on CUDA (M padded to 17), and a decode-shaped call (M = 1) works."""
    w, x = torch.randn(64, 128, device="cuda"), torch.randn(1, 128, device="cuda")
    q, s = quantize_rows(w)
    lin = Int8Linear(q, s, None, "dynamic")
    assert lin.path == ("w8a8" if quant.int_mm_works("cuda") else "weight-only")
    ref = torch.nn.functional.linear(x, w)
    assert torch.allclose(lin(x), ref, atol=0.05 * float(ref.abs().max()))
