"""The modular GPT: parameter count and FLOPs equal the sizing formulas; the seed's verification battery."""

from __future__ import annotations

import pytest
import torch

from engine.errors import UserError
from engine.runtime.model import GPT, GPTConfig
from engine.sizing.counts import flops_per_token, param_counts
from engine.sizing.shapes import band_spec
from engine.specs import builtin_names, load_model

DENSE_PROFILES = [n for n in builtin_names("models") if not load_model(n).is_moe]


def _meta_model(spec) -> GPT:
    with torch.device("meta"):
        return GPT(GPTConfig.from_spec(spec))


def test_small_profiles_are_shipped():
    for name in ["gpt2-124m", *(f"nanochat-d{d}" for d in range(12, 27, 2))]:
        assert name in DENSE_PROFILES


@pytest.mark.parametrize("name", DENSE_PROFILES)
def test_param_count_equals_sizing_for_every_profile(name):
    spec = load_model(name)
    assert _meta_model(spec).num_params() == param_counts(spec).total


@pytest.mark.parametrize("depth", [1, 2, 4, 8, 12, 16, 20, 26, 32])
@pytest.mark.parametrize("variant", [
    {}, {"n_kv_head": 1}, {"window_pattern": "SSSL"}, {"ffn": "swiglu"}, {"ffn": "gelu", "tie_embeddings": True},
])
def test_param_count_equals_sizing_for_bands(depth, variant):
    spec = band_spec(depth, **variant)
    assert _meta_model(spec).num_params() == param_counts(spec).total


def test_moe_spec_is_refused_with_a_clear_error():
    with pytest.raises(UserError, match="MoE"):
        GPTConfig.from_spec(load_model("s7-moe-140m"))


def test_window_pattern_reaches_the_layers():
    spec = band_spec(4, seq_len=64, head_dim=32, vocab_size=256, window_pattern="SL")
    cfg = GPTConfig.from_spec(spec)
    assert cfg.windows == (32, 64, 32, 64)
    assert GPTConfig.from_spec(spec, seq_len=16).windows == (16, 16, 16, 16)


def _tiny(**kw) -> GPT:
    torch.manual_seed(0)
    base = dict(vocab_size=32, seq_len=16, n_layer=2, d_model=32, n_head=4, n_kv_head=2)
    base.update(kw)
    return GPT(GPTConfig(**base))


def test_logits_shape():
    model = _tiny()
    logits, loss = model(torch.randint(0, 32, (3, 7)))
    assert logits.shape == (3, 7, 32) and loss is None


@pytest.mark.parametrize("ffn", ["gelu", "relu2", "swiglu"])
def test_flops_per_token_equal_sizing(ffn):
    """FlopCounterMode's count of a forward+backward = engine.sizing.counts.flops_per_token (non-causal)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    spec = band_spec(2, seq_len=16, head_dim=16, vocab_size=64, ffn=ffn, n_kv_head=1)
    model = GPT(GPTConfig.from_spec(spec))
    idx = torch.randint(0, 64, (2, 16))
    # The math backend decomposes attention into counted matmuls (the CPU fused kernel is not counted).
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        _, loss = model(idx, idx)
        loss.backward()
    assert counter.get_total_flops() == pytest.approx(flops_per_token(spec) * idx.numel(), rel=1e-9)


@pytest.mark.parametrize("name", DENSE_PROFILES)
def test_flops_per_token_equal_sizing_for_every_profile(name):
    """The same count at full size, shape-only on the meta device (nothing is computed).

    Full-context layers only: a sliding-window layer runs SDPA with a dense band mask, which
    computes all T x T scores, while the sizing formula counts the window (an ideal kernel's work).
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    spec = load_model(name)
    T = min(spec.seq_len, 2048)
    spec = spec.with_(seq_len=T, window_pattern="L")
    with torch.device("meta"):
        model = GPT(GPTConfig.from_spec(spec))
        idx = torch.randint(0, spec.vocab_size, (1, T))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        _, loss = model(idx, idx)
        loss.backward()
    assert counter.get_total_flops() == pytest.approx(flops_per_token(spec) * T, rel=1e-9)


def test_gradcheck_float64_three_tokens():
    """Analytical gradients of every parameter (and the embedded input) equal finite differences."""
    from torch.func import functional_call

    model = _tiny(vocab_size=11, d_model=8, n_head=2, n_kv_head=1, n_layer=1, seq_len=3, ffn="swiglu", d_ff=8,
                  windows=(2,)).double()
    idx = torch.tensor([[1, 5, 7]])
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in model.parameters())

    def logits(*ps):
        return functional_call(model, dict(zip(names, ps)), (idx,))[0]

    assert torch.autograd.gradcheck(logits, params, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("windows", [(16, 16), (3, 16), (2, 4)])
def test_causal_mask_blocks_the_future(windows):
    model = _tiny(windows=windows).eval()
    idx = torch.randint(0, 32, (2, 12))
    base, _ = model(idx)
    for t in range(11):
        changed = idx.clone()
        changed[:, t + 1] = (changed[:, t + 1] + 1) % 32
        out, _ = model(changed)
        assert torch.equal(out[:, : t + 1], base[:, : t + 1]), f"position <= {t} saw token {t + 1}"
        assert not torch.allclose(out[:, t + 1], base[:, t + 1])


def test_sliding_window_forgets_tokens_beyond_it():
    """With a window of 2 on both layers, position t sees at most t-2 (2 layers x 1 step back)."""
    model = _tiny(windows=(2, 2)).eval()
    idx = torch.randint(0, 32, (1, 10))
    base, _ = model(idx)
    changed = idx.clone()
    changed[0, 0] = (changed[0, 0] + 1) % 32
    out, _ = model(changed)
    assert torch.equal(out[0, 3:], base[0, 3:])
    assert not torch.allclose(out[0, 2], base[0, 2])


def test_eval_makes_dropout_a_no_op():
    model = _tiny(dropout=0.5)
    idx = torch.randint(0, 32, (2, 8))
    model.train()
    a, _ = model(idx)
    b, _ = model(idx)
    assert not torch.equal(a, b)  # dropout active in training
    model.eval()
    c, _ = model(idx)
    d, _ = model(idx)
    assert torch.equal(c, d)
    model_nodrop = _tiny(dropout=0.0).eval()
    model_nodrop.load_state_dict(model.state_dict())
    assert torch.allclose(model_nodrop(idx)[0], c, atol=0, rtol=0)


def test_tied_head_shares_the_embedding():
    model = _tiny(tie_embeddings=True)
    assert model.lm_head.weight is model.embed.weight


def test_overfit_one_batch():
    from engine.runtime.train.step import OptimConfig, TrainStep, build_optimizer

    model = _tiny(n_layer=2, d_model=64, n_head=4, n_kv_head=4, seq_len=32, vocab_size=64)
    device = torch.device("cpu")
    opt = build_optimizer(model, OptimConfig(lr=3e-3, weight_decay=0.0), device)
    step = TrainStep(model, opt, device, grad_clip=1.0)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 64, (4, 32), generator=g)
    y = torch.randint(0, 64, (4, 32), generator=g)
    first = step([(x, y)], lr=3e-3).loss.item()
    for _ in range(40):
        last = step([(x, y)], lr=3e-3).loss.item()
    assert first - last > 1.0, (first, last)


def test_gqa_matches_repeated_kv_heads():
    """n_kv_head=1 equals full MHA whose k/v heads are copies of the single one."""
    gqa = _tiny(n_kv_head=1, n_head=4).eval()
    mha = _tiny(n_kv_head=4, n_head=4).eval()
    sd = gqa.state_dict()
    for k in list(sd):
        if k.endswith(("attn.k.weight", "attn.v.weight")):
            sd[k] = sd[k].repeat(4, 1)
    mha.load_state_dict(sd)
    idx = torch.randint(0, 32, (2, 9))
    assert torch.allclose(gqa(idx)[0], mha(idx)[0], atol=1e-5)
