"""Per-row absmax INT8: the formula, the axis, the error report."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.runtime.seal import quant
from engine.runtime.seal.quant import dequantize_rows, quantize_rows, tensor_error


def reference(w):
    scale = w.abs().amax(dim=1) / 127.0
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    return torch.round(w / safe[:, None]).clamp(-128, 127).to(torch.int8), scale


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 70), st.floats(1e-6, 1e3), st.integers(0, 2**31 - 1))
def test_matches_the_formula_and_bounds(rows, cols, magnitude, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=g) * magnitude
    w[rows // 2] = 0.0  # an all-zero row
    q, s = quantize_rows(w)
    rq, rs = reference(w)
    assert torch.equal(q, rq) and torch.equal(s, rs)
    assert q.dtype == torch.int8 and int(q.min()) >= -127 and int(q.max()) <= 127
    assert torch.all(q[rows // 2] == 0) and s[rows // 2] == 0
    # each row's absmax element maps to +-127; every element is within half a step of its value
    nz = s > 0
    assert torch.all(q[nz].abs().amax(dim=1) == 127)
    err = (w - dequantize_rows(q, s)).abs()
    assert torch.all(err <= s[:, None] * 0.5 * (1 + 1e-5) + 1e-30)


def test_blocks_do_not_change_the_result(monkeypatch):
    w = torch.randn(333, 17)
    whole = quantize_rows(w)
    monkeypatch.setattr(quant, "BLOCK_ELEMS", 40)  # 2 rows per block, odd remainder
    blocked = quantize_rows(w)
    assert torch.equal(whole[0], blocked[0]) and torch.equal(whole[1], blocked[1])
    e1 = tensor_error("w", w, *whole)
    monkeypatch.setattr(quant, "BLOCK_ELEMS", 1 << 19)
    e2 = tensor_error("w", w, *whole)
    assert e1.max_abs == e2.max_abs and e1.rel_fro == pytest.approx(e2.rel_fro, rel=1e-6)  # fp32 block norms: last digits


def test_a_row_is_an_output_channel_of_nn_linear():
    lin = torch.nn.Linear(8, 3, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(3, 8))
        lin.weight[1] *= 100.0  # one loud output channel must not coarsen the others
    q, s = quantize_rows(lin.weight)
    assert s.shape == (3,)  # one scale per out_feature
    assert s[1] > 50 * s[0]
    x = torch.randn(5, 8)
    y = x @ dequantize_rows(q, s).t()
    assert torch.allclose(y, lin(x), rtol=0, atol=float(s.max()) * 8)
    # the seed's W[in, out] with per-column scales is the same thing transposed
    seed_scale = lin.weight.t().abs().amax(dim=0) / 127.0
    assert torch.equal(seed_scale, s)


def test_error_report_values():
    w = torch.tensor([[1.0, -0.5, 0.25], [0.0, 0.0, 0.0]])
    q, s = quantize_rows(w)
    e = tensor_error("w", w, q, s)
    d = w - dequantize_rows(q, s)
    assert e.max_abs == pytest.approx(d.abs().max().item())
    assert e.rel_fro == pytest.approx((d.norm() / w.norm()).item())
    assert e.to_json()["shape"] == [2, 3]


def test_rejects_non_matrices():
    with pytest.raises(ValueError, match="2-D"):
        quantize_rows(torch.ones(4))


def test_intra_op_threads_restores():
    before = torch.get_num_threads()
    with quant.intra_op_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
