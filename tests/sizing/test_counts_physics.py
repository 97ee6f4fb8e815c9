"""Counts and Step-0 physics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from engine.errors import UserError
from engine.sizing.counts import attention_context, flops_per_token, param_counts
from engine.sizing.physics import activation_bytes_per_sequence, default_goal, physics
from engine.specs import Goal, load_hardware, load_model, model_from_dict


def test_gpt3_175b_matches_megatron_f72():
    """6N + attention per token equals Megatron's 72 B s l h^2 (1 + s/6h + V/12lh) / (B s)."""
    m = load_model("gpt3-175b")
    s, l, h, V = m.seq_len, m.n_layer, m.d_model, m.vocab_size
    f72_per_token = 72 * l * h**2 * (1 + s / (6 * h) + V / (12 * l * h))
    assert flops_per_token(m) == pytest.approx(f72_per_token, rel=1e-12)


def test_gpt2_124m_params_by_hand():
    m = load_model("gpt2-124m")
    per_layer = 4 * 768 * 768 + 2 * 768 * 3072  # q,k,v,o + up,down (bias-free)
    assert param_counts(m).total == 12 * per_layer + 50257 * 768  # tied: one embedding table


def test_llama_7b_params_by_hand():
    c = param_counts(load_model("llama-7b"))
    per_layer = 4 * 4096 * 4096 + 3 * 4096 * 11008
    assert c.total == 32 * per_layer + 2 * 32000 * 4096 == 6_738_149_376  # 6.74B, as Meta reports (+norm gains)


def test_gqa_shrinks_kv_projections():
    c = param_counts(load_model("llama3-8b"))
    assert c.attention_per_layer == 2 * 4096 * 4096 + 2 * 4096 * 1024


def test_s7_moe_budget():
    c = param_counts(load_model("s7-moe-140m"))
    assert c.embedding == 36864 * 512 and c.lm_head == 0  # tied ~18.9M
    block = 4 * 512 * 512 + 2 * 512 * 2048
    assert c.total == c.embedding + 6 * block + 4 * 8 * block + 512 * 4
    assert c.active == c.embedding + 6 * block + 8 * block + 512 * 4


def test_mixtral_style_moe_active_params():
    m = model_from_dict({"name": "m", "n_layer": 2, "d_model": 64, "n_head": 4, "vocab_size": 10, "seq_len": 8,
                         "ffn": "swiglu", "d_ff": 128, "n_experts": 8, "experts_per_token": 2})
    c = param_counts(m)
    attn, mlp = 4 * 64 * 64, 3 * 64 * 128
    assert c.total == 2 * (attn + 8 * mlp + 64 * 8) + 2 * 10 * 64
    assert c.active == 2 * (attn + 2 * mlp + 64 * 8) + 2 * 10 * 64


def test_sliding_windows_and_causal_context():
    m = model_from_dict({"name": "w", "n_layer": 4, "d_model": 64, "n_head": 4, "vocab_size": 10, "seq_len": 8,
                         "window_pattern": "SSSL", "short_window": 2})
    assert attention_context(m) == 2 + 2 + 2 + 8
    # causal, window 2 over T = 8: query i sees min(i+1, 2) keys: 1 + 2*7 = 15, mean 15/8
    assert attention_context(m, causal=True) == pytest.approx(3 * 15 / 8 + 36 / 8)


def test_korthikanti_activation_bytes():
    m = load_model("gpt3-175b")
    s, h, a = 2048, 12288, 96
    assert activation_bytes_per_sequence(m) == pytest.approx(96 * s * h * (34 + 5 * a * s / h))


def test_physics_bundle_by_hand():
    m, hw = load_model("llama-13b"), load_hardware("a100-80g-sxm")
    g = Goal(tokens=1e9, deadline_s=86400.0, global_batch_tokens=2048 * 512)
    b = physics(m, hw, g)
    params = param_counts(m).total
    assert b.global_batch_seqs == 512
    assert b.n_steps == math.ceil(1e9 / (2048 * 512))
    assert b.F_step_flop == pytest.approx(flops_per_token(m) * 2048 * 512)
    assert b.B_state_min_bytes == 16 * params
    assert b.B_exchange_per_step_bytes == 2 * params
    assert b.t_step_max_s == pytest.approx(86400 / b.n_steps)
    assert b.t_comm_min_s == pytest.approx(2 * 2 * params / 25e9)
    assert b.G_min == max(math.ceil(b.F_total_flop / (312e12 * 86400)), math.ceil(16 * params / 80e9))


def test_fp32_grad_buffer_is_18_bytes_per_param():
    m, hw = load_model("gpt2-124m"), load_hardware("h100-sxm")
    g = Goal(tokens=1e9, deadline_s=3600.0, global_batch_tokens=1024 * 8, precision="bf16-fp32grad")
    assert physics(m, hw, g).B_state_min_bytes == 18 * param_counts(m).total


def test_default_goal_is_chinchilla():
    m = load_model("llama-7b")
    g = default_goal(m)
    assert g.tokens == 20 * param_counts(m).total and g.deadline_s == 30 * 86400


def test_batch_smaller_than_a_sequence_is_refused():
    m, hw = load_model("llama-7b"), load_hardware("h100-sxm")
    with pytest.raises(UserError, match="global_batch_tokens"):
        physics(m, hw, Goal(tokens=1e9, deadline_s=3600.0, global_batch_tokens=100))
