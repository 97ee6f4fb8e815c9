"""The MoE model: parameter count = the sizing formula, routing, causality, the Switch aux loss."""

from __future__ import annotations

import pytest
import torch

from engine.runtime.model.moe import MoE, MoEConfig, load_balancing_loss, tiny_spec
from engine.sizing.counts import param_counts
from engine.specs import load_model


@pytest.mark.parametrize("tiny", [False, True])
def test_param_count_equals_sizing(tiny):
    spec = load_model("s7-moe-140m")
    spec = tiny_spec(spec) if tiny else spec
    with torch.device("meta"):
        m = MoE(MoEConfig.from_spec(spec))
    assert m.num_params() == param_counts(spec).total
    c = m.config
    assert len(m.trunk) == spec.trunk_layers == c.trunk_layers
    assert len(m.experts) == spec.n_experts and all(len(x) == spec.n_layer - spec.trunk_layers for x in m.experts)
    assert tuple(m.router.gate.weight.shape) == (spec.n_experts, spec.d_model)
    assert m.lm_head.weight is m.embed.weight  # tied


def test_full_profile_shapes():
    spec = load_model("s7-moe-140m")
    c = MoEConfig.from_spec(spec)
    assert (c.trunk_layers, c.n_layer - c.trunk_layers, c.d_model, c.d_ff, c.n_experts, c.experts_per_token) == (6, 8, 512, 2048, 4, 1)


def test_dense_spec_is_refused():
    from engine.errors import UserError

    with pytest.raises(UserError, match="not a trunk"):
        MoEConfig.from_spec(load_model("gpt2-124m"))


@pytest.fixture
def tiny_moe():
    torch.manual_seed(0)
    return MoE(MoEConfig.from_spec(tiny_spec(load_model("s7-moe-140m")))).eval()


def test_forward_paths_shapes(tiny_moe):
    x = torch.randint(0, 256, (2, 16))
    for logits, loss in (tiny_moe(x, x), tiny_moe.forward_trunk(x, x), tiny_moe.forward_expert(2, x, x)):
        assert logits.shape == (2, 16, 256) and torch.isfinite(loss)
    assert tiny_moe.last_aux_loss is not None and tiny_moe.last_expert_ids.shape == (2, 16, 1)


def test_routed_forward_is_causal(tiny_moe):
    """Changing token t+1 never changes logits (or routing) at positions <= t."""
    x = torch.randint(0, 256, (1, 24))
    y = x.clone()
    y[0, 12:] = (y[0, 12:] + 7) % 256
    with torch.no_grad():
        a, b = tiny_moe(x)[0], tiny_moe(y)[0]
    assert torch.equal(a[:, :12], b[:, :12])
    assert not torch.equal(a[:, 12:], b[:, 12:])


def test_top1_equals_forced_expert(tiny_moe):
    """With top-1 routing, a token's logits are exactly its chosen expert's (gate 1.0)."""
    x = torch.randint(0, 256, (1, 20))
    with torch.no_grad():
        routed = tiny_moe(x)[0]
        ids = tiny_moe.last_expert_ids[0, :, 0]
        for e in ids.unique().tolist():
            forced = tiny_moe.forward_expert(e, x)[0]
            pos = ids == e
            assert torch.allclose(routed[0, pos], forced[0, pos], atol=1e-5)


def test_top2_gates_sum_to_one():
    spec = tiny_spec(load_model("s7-moe-140m")).with_(experts_per_token=2)
    m = MoE(MoEConfig.from_spec(spec))
    _, _, _, gates, top_i = m.route(torch.randint(0, 256, (2, 10)))
    assert gates.shape == (2, 10, 2) and torch.allclose(gates.sum(-1), torch.ones(2, 10))
    assert (top_i[..., 0] != top_i[..., 1]).all()


def test_load_balancing_loss_values():
    """Switch aux loss: 1 at uniform routing, n_experts when all tokens and all mass go to one expert."""
    E, N = 4, 64
    uniform = torch.full((N, E), 1 / E)
    assert load_balancing_loss(uniform, torch.arange(N).remainder(E).unsqueeze(1), E).item() == pytest.approx(1.0)
    collapsed = torch.zeros(N, E)
    collapsed[:, 0] = 1
    assert load_balancing_loss(collapsed, torch.zeros(N, 1, dtype=torch.long), E).item() == pytest.approx(E)


def test_aux_loss_gradient_reaches_router(tiny_moe):
    tiny_moe.train()
    tiny_moe(torch.randint(0, 256, (2, 12)))
    tiny_moe.last_aux_loss.backward()
    assert tiny_moe.router.gate.weight.grad is not None and tiny_moe.router.gate.weight.grad.abs().sum() > 0


import functools  # noqa: E402

from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 8), st.integers(1, 40), st.integers(0, 2**31 - 1), st.booleans())
def test_load_balancing_loss_bounds(E, N, seed, uniform_probs):
    """0 <= aux <= n_experts for any routing; exactly 1 whenever the mean probabilities are uniform."""
    g = torch.Generator().manual_seed(seed)
    probs = torch.full((N, E), 1 / E) if uniform_probs else torch.rand(N, E, generator=g).softmax(-1)
    top = torch.randint(0, E, (N, 1), generator=g)  # any dispatch, not only the argmax
    aux = load_balancing_loss(probs, top, E).item()
    assert -1e-6 <= aux <= E + 1e-5
    if uniform_probs:
        assert aux == pytest.approx(1.0, abs=1e-5)


@functools.lru_cache(maxsize=1)
def _seeded_tiny() -> MoE:
    torch.manual_seed(0)
    return MoE(MoEConfig.from_spec(tiny_spec(load_model("s7-moe-140m")))).eval()


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 30), st.integers(0, 255))
def test_causality_any_cut(cut, delta):
    """Whatever position changes, logits before it stay bitwise the same (routing included)."""
    m = _seeded_tiny()
    x = torch.arange(31).remainder(256).unsqueeze(0) * 7 % 256
    y = x.clone()
    y[0, cut] = (y[0, cut] + delta + 1) % 256
    with torch.no_grad():
        assert torch.equal(m(x)[0][:, :cut], m(y)[0][:, :cut])
