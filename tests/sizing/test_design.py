"""Step 1 run_design: the seed contract, hand-checked cases and hypothesis properties."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import UserError
from engine.sizing.design import candidate_splits, evaluate, run_design
from engine.sizing.physics import physics
from engine.specs import Goal, HardwareSpec, load_hardware, load_model, model_from_dict

A100 = load_hardware("a100-80g-sxm")


def bundle(model="llama-13b", hw=A100, tokens=260e9, days=30.0, batch=4 * 2**20):
    return physics(load_model(model), hw, Goal(tokens=tokens, deadline_s=days * 86400, global_batch_tokens=batch))


def test_contract_keys():
    r = run_design(bundle())
    assert set(r) == {"feasible", "solution", "diagnostics", "no_solution_reason"}
    assert r["feasible"] and r["no_solution_reason"] is None
    s = r["solution"]
    for key in ("G", "dp", "tp", "pp", "bytes_per_device", "t_step_s", "t_compute_s", "t_comm_s", "memory_headroom", "time_headroom"):
        assert key in s
    assert {"physics", "search_trace"} <= set(r["diagnostics"])
    assert r["diagnostics"]["physics"]["F_step_flop"] == bundle().F_step_flop


def test_seed_formulas_by_hand():
    b = bundle()
    c = evaluate(b, dp=16, tp=2, pp=5, eta_compute=0.4, eta_fabric=0.7)
    assert c["bytes_per_device"] == pytest.approx(b.B_state_min_bytes / 16 + b.B_step_bytes / 10)
    assert c["t_compute_s"] == pytest.approx(b.F_step_flop / (160 * 312e12 * 0.4))
    assert c["t_comm_s"] == pytest.approx(b.t_comm_min_s / 10 / 0.7)  # each device all-reduces its 1/(TP PP) shard
    assert evaluate(b, 1, 8, 5, 0.4, 0.7)["t_comm_s"] == 0.0  # no data parallelism: nothing to all-reduce


def test_auto_size_prefers_smallest_G_then_high_dp():
    r = run_design(bundle())
    s = r["solution"]
    same_G = [c for c in r["diagnostics"]["search_trace"]["top"] if c["G"] == s["G"]]
    assert all(c["dp"] <= s["dp"] for c in same_G)


def test_fixed_G_reports_headroom_and_layout_failure():
    r = run_design(bundle(), G=128)
    assert r["feasible"] and r["solution"]["G"] == 128
    r = run_design(bundle(), G=7)
    assert not r["feasible"] and r["no_solution_reason"]["constraint"] == "layout"


def test_infeasible_names_constraint_and_closest():
    r = run_design(bundle(), G=8)
    reason = r["no_solution_reason"]
    assert reason["constraint"] in ("memory", "time") and reason["closest"]["G"] == 8 and reason["shortfall"] > 0


def test_tp_respects_heads_and_node():
    b = bundle()
    for dp, tp, pp in candidate_splits(b):
        assert b.model.n_head % tp == 0 and 8 % tp == 0 and b.model.n_layer % pp == 0
        assert b.global_batch_seqs % dp == 0


def test_no_network_means_one_node():
    b = bundle(model="gpt2-1558m", hw=load_hardware("rtx4090"), tokens=1e12)
    r = run_design(b)
    assert not r["feasible"]
    assert all(dp * tp * pp <= 8 for dp, tp, pp in candidate_splits(b))


def test_bad_efficiency_and_G():
    with pytest.raises(UserError):
        run_design(bundle(), eta_compute=0)
    with pytest.raises(UserError):
        run_design(bundle(), eta_fabric=1.5)
    with pytest.raises(UserError):
        run_design(bundle(), G=0)


# --------------------------------------------------------------------------- properties

small_models = st.builds(
    lambda layers, heads, hd, vocab, seq: model_from_dict({
        "name": "p", "n_layer": layers, "d_model": heads * hd, "n_head": heads, "vocab_size": vocab, "seq_len": seq,
    }),
    st.sampled_from([2, 4, 6, 8, 12, 24]), st.sampled_from([4, 8, 16, 32]), st.sampled_from([64, 128]),
    st.sampled_from([1000, 32000]), st.sampled_from([512, 2048]),
)
hardware = st.builds(
    lambda flops, mem, gpn: HardwareSpec(name="h", peak_flops=flops, memory_bytes=mem, gpus_per_node=gpn,
                                         intra_node_bw=300e9, inter_node_bw=25e9),
    st.floats(1e13, 2e15), st.floats(4e9, 200e9), st.sampled_from([1, 4, 8]),
)
goals = st.builds(
    lambda tokens, days, seqs: (tokens, days, seqs),
    st.floats(1e8, 1e12), st.floats(0.01, 60), st.sampled_from([8, 64, 256, 1024, 1536]),
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _bundle(model, hw, goal):
    tokens, days, seqs = goal
    return physics(model, hw, Goal(tokens=tokens, deadline_s=days * 86400, global_batch_tokens=seqs * model.seq_len))


@SETTINGS
@given(small_models, hardware, goals, st.floats(0.1, 1.0), st.floats(0.1, 1.0))
def test_every_solution_satisfies_the_three_constraints(model, hw, goal, eta_c, eta_f):
    b = _bundle(model, hw, goal)
    r = run_design(b, eta_compute=eta_c, eta_fabric=eta_f)
    if r["feasible"]:
        s = r["solution"]
        assert s["dp"] * s["tp"] * s["pp"] == s["G"]
        assert s["bytes_per_device"] <= hw.memory_bytes
        assert s["t_compute_s"] + s["t_comm_s"] <= b.t_step_max_s
        assert s["G"] >= b.G_min


@SETTINGS
@given(small_models, hardware, goals)
def test_auto_size_is_minimal(model, hw, goal):
    b = _bundle(model, hw, goal)
    r = run_design(b)
    if r["feasible"]:
        G = r["solution"]["G"]
        smaller = {dp * tp * pp for dp, tp, pp in candidate_splits(b) if dp * tp * pp < G}
        for g in sorted(smaller)[:40]:
            assert not run_design(b, G=g)["feasible"], g


@SETTINGS
@given(small_models, hardware, goals, st.floats(1.0, 4.0), st.floats(1.0, 4.0))
def test_more_flops_or_memory_never_breaks_feasibility(model, hw, goal, flops_x, mem_x):
    if run_design(_bundle(model, hw, goal))["feasible"]:
        better = replace(hw, peak_flops=hw.peak_flops * flops_x, memory_bytes=hw.memory_bytes * mem_x)
        assert run_design(_bundle(model, better, goal))["feasible"]
