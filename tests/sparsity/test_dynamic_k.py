"""Dynamic-k: k = 1.0 is bitwise the unmodified model; the gate keeps exactly ceil(k d); the FLOP
reduction is the down projection's share from the sizing engine's counts; gather mode on CUDA."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.errors import UserError
from engine.runtime.model import GPT, GPTConfig
from engine.runtime.sparsity.capture import mlp_hooks
from engine.runtime.sparsity.dynamic_k import flops_reduction, kept, parse_k, perplexity_and_speed, topk_gate
from engine.runtime.sparsity.sources import Layer, Source
from engine.specs import ModelSpec


def _tiny(ffn="gelu"):
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, d_model=32, n_head=2, d_ff=64, seq_len=16, ffn=ffn)).eval()
    layers = [Layer(str(i), b.mlp.down, 64) for i, b in enumerate(model.blocks)]
    src = Source("lsdt", "t", "", model, layers, 16, 256, list, "bytes", "0" * 64, None, forward=lambda idx: model(idx)[0])
    return model, layers, src


@pytest.mark.parametrize("ffn", ["gelu", "relu2", "swiglu"])
def test_k_one_is_bitwise_the_model(ffn):
    model, layers, _ = _tiny(ffn)
    idx = torch.randint(0, 256, (3, 16))
    with torch.no_grad():
        ref = model(idx)[0]
        with mlp_hooks(layers, lambda l, act: topk_gate(act, 1.0)):
            gated = model(idx)[0]
        with mlp_hooks(layers, lambda l, act: topk_gate(act, 0.5)):
            half = model(idx)[0]
    assert torch.equal(ref, gated)
    assert not torch.equal(ref, half)


def test_gate_keeps_ceil_k_d_largest_magnitudes():
    act = torch.tensor([[0.1, -3.0, 2.0, 0.5, -0.2]])
    out = topk_gate(act, 0.4)  # ceil(0.4 * 5) = 2
    assert torch.equal(out, torch.tensor([[0.0, -3.0, 2.0, 0.0, 0.0]]))
    assert kept(5, 0.01) == 1 and kept(10, 0.3) == 3 and kept(64, 1.0) == 64


def test_perplexity_at_k_one_equals_dense():
    _, layers, src = _tiny()
    windows = np.random.default_rng(0).integers(0, 256, (4, 17))
    dense = perplexity_and_speed(src, [], windows, 1.0, "cpu")[0]
    assert perplexity_and_speed(src, layers, windows, 1.0, "cpu")[0] == dense
    assert perplexity_and_speed(src, layers, windows, 0.2, "cpu")[0] != dense


def test_flops_reduction_is_the_down_projections_share():
    spec = ModelSpec(name="t", n_layer=4, d_model=64, n_head=4, vocab_size=256, seq_len=128, ffn="gelu")
    from engine.sizing.counts import flops_per_token

    forward = flops_per_token(spec, seq_len=128, causal=True) / 3
    expected = 0.8 * 4 * 2 * 64 * 256 / forward
    assert abs(flops_reduction(spec, 4, 0.2, 128) - expected) < 1e-12
    assert flops_reduction(spec, 4, 0.2, 128) < 0.8 * 0.5  # far below the naive 1 - k
    assert flops_reduction(spec, 4, 1.0, 128) == 0.0
    assert flops_reduction(None, 4, 0.2, 128) is None


@pytest.mark.parametrize("text", ["0", "1.01", "-1", "x", ""])
def test_parse_k_rejects(text):
    with pytest.raises(UserError, match="accepted: fractions in \\(0, 1\\]"):
        parse_k(text)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gather_mode_matches_mask_and_runs():
    from engine.runtime.sparsity.dynamic_k import GatherDown, gather_speed

    model, layers, src = _tiny("relu2")
    model.cuda()
    x = torch.randn(1, 16, 64, device="cuda")
    down = layers[0].down
    gathered = GatherDown(down, 0.25).cuda()(x)
    masked = down(topk_gate(x, 0.25))
    torch.testing.assert_close(gathered, masked, rtol=1e-4, atol=1e-5)
    windows = np.random.default_rng(0).integers(0, 256, (4, 17))
    assert gather_speed(src, layers, windows, 0.25, "cuda") > 0
    assert isinstance(model.blocks[0].mlp.down, torch.nn.Linear)  # restored


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gather_mode_end_to_end_on_cuda(gpt_run, task_spec, tmp_path, capsys):
    """`lsdt sparsity dynamic-k --mode gather --device cuda` on a real `lsdt train` run, as a user runs it:
    the CSV's perplexities are the masked model's (gather only times), equal to a --mode mask run on
    the same GPU; tokens/s come from the gathered down projections; the model is restored after."""
    import csv

    from engine.cli import main

    common = ["--model", str(gpt_run), "--tasks", task_spec, "--device", "cuda", "--seq", "32", "--max-tokens", "1024",
              "--eval-windows", "6", "--seeds", "2", "--k", "0.2,0.5,1.0", "--json"]
    rows = {}
    for mode in ("mask", "gather"):
        out = tmp_path / mode
        assert main(["sparsity", "dynamic-k", *common, "--mode", mode, "--out", str(out)]) == 0
        with open(out / "dynamic_k.csv", newline="") as f:
            rows[mode] = list(csv.DictReader(f))
    capsys.readouterr()
    gather, mask = rows["gather"], rows["mask"]
    assert [r["mode"] for r in gather] == ["gather"] * 3 and [r["k"] for r in gather] == ["0.2", "0.5", "1.0"]
    assert all(float(r["tokens_per_sec"]) > 0 for r in gather)
    for g, m in zip(gather, mask):
        assert float(g["perplexity"]) == pytest.approx(float(m["perplexity"]), rel=1e-5)
    assert float(gather[-1]["quality_delta"]) == 0.0  # k = 1.0 is the model itself


@pytest.mark.parametrize("bias", [False, True])  # LSDT's and Llama's down projections have none, GPT-NeoX's has one
def test_gather_down_equals_masked_down_projection(monkeypatch, bias):
    """The gather arithmetic (CPU here; its timing is CUDA-only) equals mask-then-matmul, chunked or not."""
    import engine.runtime.sparsity.dynamic_k as dk

    torch.manual_seed(0)
    down = torch.nn.Linear(64, 32, bias=bias)
    x = torch.randn(2, 16, 64)
    for chunk in (dk.GATHER_ELEMENTS, 1000):
        monkeypatch.setattr(dk, "GATHER_ELEMENTS", chunk)
        torch.testing.assert_close(dk.GatherDown(down, 0.25)(x), down(topk_gate(x, 0.25)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ffn", ["relu2", "swiglu"])
def test_gathered_model_computes_the_masked_model(ffn):
    """What gather mode times is the computation mask mode measures: with GatherDown swapped into
    the model (the CUDA timing aside, the same code path), its logits equal the masked model's; the
    original down projections are back afterwards, also after an error inside."""
    from engine.runtime.sparsity.dynamic_k import GatherDown, gathered

    model, layers, src = _tiny(ffn)
    idx = torch.randint(0, 256, (1, 16))  # batch 1, as gather mode runs
    originals = [b.mlp.down for b in model.blocks]
    with torch.no_grad():
        with mlp_hooks(layers, lambda l, act: topk_gate(act, 0.25)):
            masked = model(idx)[0]
        with gathered(src, layers, 0.25, "cpu"):
            assert all(isinstance(b.mlp.down, GatherDown) for b in model.blocks)
            gathered_logits = model(idx)[0]
        with gathered(src, layers, 1.0, "cpu"):  # k = 1: the dense model, nothing swapped
            assert [b.mlp.down for b in model.blocks] == originals
        with pytest.raises(RuntimeError):
            with gathered(src, layers, 0.25, "cpu"):
                raise RuntimeError("interrupted")
    torch.testing.assert_close(gathered_logits, masked, rtol=1e-4, atol=1e-5)
    assert [b.mlp.down for b in model.blocks] == originals


def test_gather_mode_needs_cuda():
    from engine.runtime.sparsity.dynamic_k import gather_speed

    _, layers, src = _tiny()
    with pytest.raises(UserError, match="needs a CUDA GPU"):
        gather_speed(src, layers, np.zeros((1, 17), dtype=np.int64), 0.5, "cpu")
