"""Bands planner: hand-checked shapes/params/FLOPs (nanochat formulas), memory rule, properties, recommendation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import UserError
from engine.sizing import bands as B
from engine.sizing.curriculum import default_curriculum, parse_curriculum
from engine.sizing.shapes import band_spec
from engine.specs import load_hardware

RTX4090 = load_hardware("rtx4090")


def nanochat_params(depth: int, vocab: int = 65536) -> int:
    """nanochat gpt.py without value embeddings: wte + lm_head (untied) + per layer 4 d^2 attention + 8 d^2 ReLU^2 MLP."""
    d = 64 * depth
    d = -(-d // 128) * 128
    return 2 * vocab * d + depth * 12 * d * d


def nanochat_flops(depth: int, seq: int = 2048, vocab: int = 65536) -> int:
    """nanochat estimate_flops: 6 x (params - wte) + 12 x l x h x q x t (non-causal, window L)."""
    d = -(-64 * depth // 128) * 128
    return 6 * (nanochat_params(depth, vocab) - vocab * d) + 12 * depth * (d // 128) * 128 * seq


@pytest.mark.parametrize("depth, d_model, n_head, params, flops", [
    (12, 768, 6, 185_597_952, 1_038_090_240),
    (20, 1280, 10, 560_988_160, 3_491_758_080),
])
def test_hand_checked_d12_d20(depth, d_model, n_head, params, flops):
    row = next(r for r in B.plan_bands(RTX4090, depths=[depth]).rows)
    assert (row.d_model, row.n_head, row.params) == (d_model, n_head, params)
    assert row.flops_per_token == flops
    assert params == nanochat_params(depth) and flops == nanochat_flops(depth)


def test_activation_rule_hand_value_d12():
    # per layer 42 h + 8 + 4 a bytes (MHA, ReLU^2 4h), + 6 h + 4 + 16 for final norm / head input / ids, + 12 V loss
    expected = 12 * (42 * 768 + 8 + 4 * 6) + 6 * 768 + 4 + 16 + 12 * 65536
    assert B.activation_bytes_per_token(band_spec(12)) == expected == 1_178_516


def test_activation_rule_below_korthikanti():
    # SDPA + no dropout keeps less than Korthikanti's materialised-attention count (per layer, loss excluded)
    from engine.sizing.physics import activation_bytes_per_sequence

    spec = band_spec(12, vocab_size=1)
    ours = (B.activation_bytes_per_token(spec) - 12 - 6 * spec.d_model - 20) * 2048
    assert ours < activation_bytes_per_sequence(spec, 2048) / 2.5


def test_envelope_split_and_rates():
    r = B.plan_bands(RTX4090, hours=24, mfu=0.5, sft_fraction=0.2)
    assert r.envelope_flop == pytest.approx(24 * 3600 * 165.2e12 * 0.5)
    s = r.split
    assert s.pretrain_fraction == pytest.approx(0.8) and s.pretrain_flop + s.sft_flop == pytest.approx(r.envelope_flop)
    for row in r.rows:
        assert row.tokens_per_s == pytest.approx(165.2e12 * 0.5 / row.flops_per_token)
        assert row.tokens_per_param == pytest.approx(row.tokens_in_window * 0.8 / row.params)
        assert row.band == B.band_of(row.depth)


def test_memory_breakdown_adds_up():
    for row in B.plan_bands(RTX4090).rows:
        assert row.memory_breakdown.total_bytes == pytest.approx(row.memory_bytes)
        assert row.memory_bytes <= RTX4090.memory_bytes - B.DEFAULT_RESERVE_BYTES
        assert row.state_bytes == 16 * row.params


def test_bands_letters():
    assert [B.band_of(d) for d in (8, 12, 14, 15, 16, 18, 19, 20, 26)] == list("AAABBBBCC")


def test_recommendation_default_4090():
    r = B.plan_bands(RTX4090)
    rec, fb = r.recommended, r.fallback
    fed = [row.depth for row in r.rows if row.fits and row.tokens_per_param >= 8]
    assert rec.depth == max(fed) and fb.depth < rec.depth
    assert r.curriculum.depth == rec.depth == r.split.depth


def test_recommendation_long_and_short_windows():
    long = B.plan_bands(RTX4090, hours=10_000)
    assert long.recommended.depth == 20
    short = B.plan_bands(RTX4090, hours=0.5)
    assert short.recommended.depth == 12 and "no depth reaches" in short.recommended.reason
    assert short.fallback is None


def test_nothing_fits():
    tiny = RTX4090.with_(memory_bytes=3e9)
    r = B.plan_bands(tiny, depths=[20])
    assert not r.rows[0].fits and r.recommended is None and r.curriculum is None
    assert "does not fit" in r.rows[0].verdict


def test_gqa_and_windows_change_counts():
    base = B.plan_bands(RTX4090, depths=[16]).rows[0]
    gqa = B.plan_bands(RTX4090, depths=[16], n_kv_head=2).rows[0]
    sssl = B.plan_bands(RTX4090, depths=[16], window_pattern="SSSL").rows[0]
    assert gqa.params < base.params and gqa.n_kv_head == 2
    assert sssl.flops_per_token < base.flops_per_token and sssl.params == base.params


def test_bad_inputs_raise_user_error():
    with pytest.raises(UserError, match="n_kv_head = .* does not divide"):
        B.plan_bands(RTX4090, depths=[12], n_kv_head=4)  # 6 heads at d12
    with pytest.raises(UserError, match="window_pattern"):
        B.plan_bands(RTX4090, window_pattern="LX")
    with pytest.raises(UserError, match="hours"):
        B.plan_bands(RTX4090, hours=0)
    with pytest.raises(UserError, match="shorter than one sequence"):
        B.plan_bands(RTX4090, global_batch_tokens=1024)


def test_device_batch_power_of_two_and_accum():
    assert B.device_batch_and_accum(7, 2048, 524288) == (4, 64)
    assert B.device_batch_and_accum(0, 2048, 524288) == (0, 0)
    assert B.device_batch_and_accum(1000, 2048, 524288) == (256, 1)


@settings(max_examples=30, deadline=None)
@given(h1=st.floats(0.1, 500), h2=st.floats(0.1, 500), depth=st.integers(4, 32))
def test_tokens_in_window_grow_with_hours(h1, h2, depth):
    lo, hi = sorted((h1, h2))
    a = B.plan_bands(RTX4090, hours=lo, depths=[depth]).rows[0]
    b = B.plan_bands(RTX4090, hours=hi, depths=[depth]).rows[0]
    assert b.tokens_in_window >= a.tokens_in_window
    if hi > lo * 1.0001:
        assert b.tokens_in_window > a.tokens_in_window


@settings(max_examples=40, deadline=None)
@given(d1=st.integers(1, 40), d2=st.integers(1, 40), seq=st.sampled_from([256, 512, 1024, 2048, 4096]),
       vocab=st.sampled_from([8192, 32768, 65536]), head_dim=st.sampled_from([64, 128]),
       memory=st.floats(4e9, 200e9))
def test_deeper_never_fits_larger_batch(d1, d2, seq, vocab, head_dim, memory):
    lo, hi = sorted((d1, d2))
    usable = memory - B.DEFAULT_RESERVE_BYTES
    shallow = band_spec(lo, seq_len=seq, vocab_size=vocab, head_dim=head_dim)
    deep = band_spec(hi, seq_len=seq, vocab_size=vocab, head_dim=head_dim)
    assert B.max_device_batch(deep, seq, usable) <= B.max_device_batch(shallow, seq, usable)


@settings(max_examples=30, deadline=None)
@given(hours=st.floats(0.5, 200), fracs=st.lists(st.floats(0.05, 1), min_size=1, max_size=4), sft=st.floats(0, 0.5))
def test_curriculum_budgets_add_up(hours, fracs, sft):
    total = sum(fracs)
    seqs = [256 * 2**i for i in range(len(fracs))]
    stages = [(s, f / total) for s, f in zip(seqs, fracs)]
    r = B.plan_bands(RTX4090, hours=hours, curriculum=stages, sft_fraction=sft, seq_len=seqs[-1], depths=[12])
    c, s = r.curriculum, r.split
    assert sum(x.tokens for x in c.stages) == c.tokens == s.pretrain_tokens
    assert sum(x.time_s for x in c.stages) == pytest.approx(s.pretrain_s, rel=1e-12)
    assert c.flop == pytest.approx(s.pretrain_flop, rel=1e-6)  # estimates run at exactly peak x MFU


def test_curriculum_parsing():
    assert default_curriculum(2048) == [(512, 1 / 3), (1024, 1 / 3), (2048, 1 / 3)]
    assert default_curriculum(512) == [(512, 1.0)] and default_curriculum(256) == [(256, 1.0)]
    assert parse_curriculum("512:0.25,2048:0.75") == [(512, 0.25), (2048, 0.75)]
    assert parse_curriculum("512,1024") == [(512, 0.5), (1024, 0.5)]
    for bad in ("", "1024,512", "512:0.5,1024:0.6", "512:0.5,1024", "x:1", "512:-1,1024:2"):
        with pytest.raises(UserError, match="curriculum"):
            parse_curriculum(bad)


PROBE = {
    "device": "NVIDIA GeForce RTX 4090", "hardware": "rtx4090",
    "results": [
        {"depth": 12, "seq_len": 2048, "device_batch": 8, "tok_per_s": 70000.0, "step_time_s": 7.5,
         "peak_vram_bytes": 19.1e9, "mfu": 0.44, "status": "ok", "grad_accum": 32},
        {"depth": 12, "seq_len": 2048, "device_batch": 16, "tok_per_s": None, "step_time_s": None,
         "peak_vram_bytes": None, "mfu": None, "status": "oom"},
        {"depth": 12, "seq_len": 512, "device_batch": 16, "tok_per_s": 90000.0, "step_time_s": 5.8,
         "peak_vram_bytes": 10e9, "mfu": 0.41, "status": "ok", "extra": "kept"},
        # the shape `lsdt probe` writes for a config whose worker died: no batch ran
        {"depth": 20, "seq_len": 2048, "device_batch": None, "tok_per_s": None, "step_time_s": None,
         "peak_vram_bytes": None, "mfu": None, "status": "error", "error": "worker killed", "wall_s": 3.0},
    ],
}


def test_probe_replaces_estimates_and_maps():
    r = B.plan_bands(RTX4090, probe=PROBE, depths=[12, 14])
    d12, d14 = r.rows
    assert d12.tokens_per_s == 70000.0 and d12.tokens_per_s_source == "probe"
    assert d14.tokens_per_s_source == "estimate"
    m = r.measured
    assert [x.status for x in m] == ["ok", "ok", "oom", "error"]  # sorted by depth, seq, batch
    assert m[3].device_batch is None and m[3].grad_accum is None
    assert m[0].seq_len == 512 and m[0].grad_accum == 524288 // (16 * 512)
    assert m[1].grad_accum == 32 and m[1].tokens_in_window == pytest.approx(70000.0 * 86400)
    assert m[2].tokens_in_window is None


def test_probe_rates_feed_the_curriculum():
    r = B.plan_bands(RTX4090, probe=PROBE, depths=[12])
    stages = {s.seq_len: s for s in r.curriculum.stages}
    assert r.curriculum.depth == 12
    assert stages[512].tokens_per_s == 90000.0 and stages[2048].tokens_per_s == 70000.0
    assert stages[1024].tokens_per_s == pytest.approx(165.2e12 * 0.4 / r.rows[0].by_seq[1].flops_per_token)


def test_probe_hardware_mismatch_and_bad_probe():
    with pytest.raises(UserError, match="measured on hardware 'rtx4090'"):
        B.plan_bands(load_hardware("h100-sxm"), probe=PROBE)
    bad = {**PROBE, "results": [{**PROBE["results"][0], "status": "fine"}]}
    with pytest.raises(UserError, match="status"):
        B.check_probe(bad, "p.json")
    bad = {**PROBE, "results": [{**PROBE["results"][0], "tok_per_s": 0}]}
    with pytest.raises(UserError, match="tok_per_s"):
        B.check_probe(bad, "p.json")
    bad = {**PROBE, "results": [{**PROBE["results"][0], "device_batch": None}]}
    with pytest.raises(UserError, match="device_batch"):
        B.check_probe(bad, "p.json")  # an "ok" result must say which batch ran
    with pytest.raises(UserError, match="depth"):
        B.check_probe({**PROBE, "results": [{"seq_len": 1, "device_batch": 1, "status": "oom"}]}, "p.json")
    with pytest.raises(UserError, match="results"):
        B.check_probe({"device": "x"}, "p.json")


def test_a_probe_is_checked_once(tmp_path, monkeypatch):
    """read_probe's output is a ProbeFile: plan_bands takes it without checking the file again; a
    plain dict (an API caller's) is still checked."""
    import json

    path = tmp_path / "probe.json"
    path.write_text(json.dumps(PROBE))
    probe = B.read_probe(path)
    assert isinstance(probe, B.ProbeFile)
    calls = []
    monkeypatch.setattr(B, "check_probe", lambda data, where="probe": calls.append(where) or B.ProbeFile(data))
    B.plan_bands(RTX4090, probe=probe, depths=[12])
    assert calls == []
    B.plan_bands(RTX4090, probe=dict(PROBE), depths=[12])
    assert calls == ["probe"]


def test_json_is_finite():
    import json

    json.dumps(B.plan_bands(RTX4090, probe=PROBE).to_dict(), allow_nan=False)
    assert all(math.isfinite(r.step_time_s) for r in B.plan_bands(RTX4090).rows)


def test_sizing_modules_are_stdlib_only():
    import subprocess
    import sys

    code = ("import sys, engine.sizing.bands, engine.sizing.pilot, engine.sizing.moe, engine.sizing.curriculum;"
            "bad = [m for m in ('torch', 'numpy', 'scipy', 'textual') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
