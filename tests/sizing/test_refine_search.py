"""Step-2 search (exact vs. brute force), calibration from probes, and the plan's [refined] results."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from engine.errors import UserError
from engine.plan import Plan, load_plan
from engine.sizing.calibrate import calibrated_efficiency
from engine.sizing.efficiency import efficiency_for
from engine.sizing.physics import default_goal, physics
from engine.sizing.refine import RECOMPUTE, EngineeringModel, Layout
from engine.sizing.design import divisors
from engine.sizing.search import _interleaves, search_with_stats, tp_options
from engine.sizing.shapes import band_spec
from engine.specs import ModelSpec, load_hardware, load_model
from tests.conftest import run_lsdt
from tests.sizing.brute_force import every_layout

H100 = load_hardware("h100-sxm")


def _small_case():
    model = ModelSpec(name="m", n_layer=8, d_model=2048, n_head=16, n_kv_head=8, vocab_size=32000, seq_len=2048, ffn="swiglu", d_ff=5632)
    goal = default_goal(model, tokens=2e10, deadline_s=3 * 86400, global_batch_tokens=64 * 2048)
    return model, goal


def _brute_force(model, hw, goal, G):
    """Every layout of G GPUs, timed, no pruning."""
    B = physics(model, hw, goal).global_batch_seqs
    em = EngineeringModel(model, hw, precision=goal.precision)
    best = None
    for tp in tp_options(model, hw):
        for pp in range(1, model.n_layer + 1):
            if G % (tp * pp) or B % (G // (tp * pp)):
                continue
            dp = G // (tp * pp)
            for v in _interleaves(model, pp, B // dp):
                for b in divisors(B // dp):
                    if v > 1 and (B // (dp * b)) % pp:
                        continue
                    for rc in RECOMPUTE:
                        for z in ((0, 1, 2, 3) if dp > 1 else (0,)):
                            lay = Layout(dp, tp, pp, b, rc, z, v, tp > 1)
                            if em.memory_total(lay, B) > hw.memory_bytes:
                                continue
                            t = em.step_time(lay, B)["step_time_s"]
                            if best is None or t < best[0]:
                                best = (t, lay)
    return best


def _brute_force_2026(model, hw, goal, G):
    """The best fitting layout of the whole space (tests/sizing/brute_force.py), timed per requested
    batch (t x B / B used)."""
    B = physics(model, hw, goal).global_batch_seqs
    em = EngineeringModel(model, hw, precision=goal.precision)
    best = None
    for lay, used in every_layout(model, hw, B, G):
        if em.memory_total(lay, used) > hw.memory_bytes:
            continue
        t = em.step_time(lay, used)["step_time_s"] * B / used
        if best is None or t < best[0]:
            best = (t, lay)
    return best


@pytest.mark.parametrize("G,memory", [(4, 1.0e9), (8, 1.0e9), (4, 2.5e9), (8, 2.5e9)])
def test_search_with_cp_ep_stages_offload_and_flexible_batch_equals_brute_force(G, memory):
    """A Mixtral-style model, a batch of 36 that dp = 8 does not divide (32 run), memory so tight
    that offload and ZeRO matter: the pruned search returns the brute-force optimum."""
    model = ModelSpec(name="moe", n_layer=6, d_model=1024, n_head=16, n_kv_head=8, vocab_size=32000, seq_len=8192,
                      ffn="swiglu", d_ff=2048, n_experts=8, experts_per_token=2)
    goal = default_goal(model, tokens=2e9, deadline_s=86400, global_batch_tokens=36 * 8192)
    hw = H100.with_(memory_bytes=memory)
    results, stats = search_with_stats(model, hw, goal, G)
    brute = _brute_force_2026(model, hw, goal, G)
    assert results and brute
    top = results[0]
    assert top["step_time_s"] * 36 / top["chosen"]["global_batch_used"] == pytest.approx(brute[0], rel=2e-3)
    assert stats["timed"] <= stats["space"]
    chosen = [r["chosen"] for r in results]
    assert any(c["ep"] > 1 for c in chosen) and any(c["cp"] > 1 for c in chosen)
    if memory < 2e9:  # the optimum keeps the optimizer state on the host
        assert brute[1].offload_optimizer and top["chosen"]["offload_optimizer"]
    assert all(c["global_batch_used"] == 36 - 36 % c["dp"] and c["global_batch"] == 36 for c in chosen)


@pytest.mark.parametrize("G", [8, 16, 32])
def test_pruned_search_equals_brute_force(G):
    model, goal = _small_case()
    hw = H100.with_(memory_bytes=24e9)  # tight memory, so recompute and ZeRO choices matter
    results, stats = search_with_stats(model, hw, goal, G)
    brute = _brute_force(model, hw, goal, G)
    assert results and brute
    assert results[0]["step_time_s"] == pytest.approx(brute[0], rel=2e-3)  # 0.1% tie rule to larger micro-batches
    assert stats["timed"] <= stats["space"]


def test_auto_size_returns_the_smallest_feasible_G():
    model, goal = _small_case()
    results, stats = search_with_stats(model, H100, goal)
    assert stats["feasible"] and results[0]["meets_deadline"]
    G = results[0]["chosen"]["gpus"]
    assert all(r["chosen"]["gpus"] == G for r in results)
    smaller = [g for g in range(1, G) if search_with_stats(model, H100, goal, g)[1]["feasible"]]
    assert smaller == []


@pytest.mark.parametrize("host_link", [None, 64e9])
def test_auto_size_with_experts_cp_and_offload_returns_the_smallest_feasible_G(host_link):
    """The auto-size bounds (compute at peak; ZeRO-3 state or, with offload, gradients alone) must
    never skip a G where some layout -- EP, CP, uneven stages, offload -- meets the deadline."""
    model = ModelSpec(name="moe", n_layer=6, d_model=1024, n_head=16, n_kv_head=8, vocab_size=32000, seq_len=8192,
                      ffn="swiglu", d_ff=2048, n_experts=8, experts_per_token=2)
    goal = default_goal(model, tokens=4e10, deadline_s=86400, global_batch_tokens=32 * 8192)
    hw = H100.with_(memory_bytes=3e9, host_link_bw=host_link)
    results, stats = search_with_stats(model, hw, goal)
    assert stats["feasible"]
    G = results[0]["chosen"]["gpus"]
    smaller = [g for g in range(1, G) if search_with_stats(model, hw, goal, g, flexible=False)[1]["feasible"]]
    assert smaller == []


def test_fixed_G_ranked_by_time_and_one_entry_per_split():
    model, goal = _small_case()
    results = search_with_stats(model, H100, goal, 32)[0]
    times = [r["step_time_s"] for r in results]
    assert times == sorted(times)
    splits = [(r["chosen"]["dp"], r["chosen"]["tp"], r["chosen"]["pp"], r["chosen"]["interleave"]) for r in results]
    assert len(splits) == len(set(splits))
    assert all(r["fits"] for r in results)


def test_no_inter_node_network_means_one_node():
    model, goal = _small_case()
    hw = load_hardware("rtx4090")
    assert search_with_stats(model, hw, goal, 16)[0] == []


# --------------------------------------------------------------------------- calibration


def _probe(path, hardware, rows):
    path.write_text(json.dumps({"device": "test GPU", "hardware": hardware, "results": rows}))
    return path


def test_calibration_recovers_the_efficiency_that_made_the_measurement(tmp_path):
    hw = H100
    true = efficiency_for(hw).with_(eta_gemm=0.42)
    rows = []
    for depth, seq, b in ((8, 512, 8), (12, 1024, 4)):
        em = EngineeringModel(band_spec(depth, seq_len=seq), hw, seq, efficiency=true)
        t = em.step_time(Layout(1, 1, 1, b, "none", 0, 1, False), b)["step_time_s"]
        rows.append({"depth": depth, "seq_len": seq, "device_batch": b, "tok_per_s": b * seq / t, "step_time_s": t,
                     "peak_vram_bytes": 1, "mfu": 0.3, "status": "ok"})
    rows.append({"depth": 30, "seq_len": 2048, "device_batch": 64, "tok_per_s": 0, "step_time_s": 0, "peak_vram_bytes": 0, "mfu": 0, "status": "oom"})
    eff = calibrated_efficiency(_probe(tmp_path / "p.json", hw.name, rows), hw)
    assert eff.eta_gemm == pytest.approx(0.42, abs=2e-3)
    assert eff.eta_mem == efficiency_for(hw).eta_mem and "calibrated" in eff.source


@pytest.mark.parametrize(
    "doc, words",
    [
        ({"device": "x", "hardware": "rtx4090", "results": []}, "does not match"),
        ({"device": "x", "hardware": None, "results": []}, "does not match"),
        ({"device": "x", "hardware": "h100-sxm", "results": [{"depth": 4, "status": "ok"}]}, "missing key 'seq_len'"),
        ({"device": "x", "hardware": "h100-sxm", "results": [{"depth": 4, "seq_len": 256, "device_batch": 1, "tok_per_s": 0, "status": "ok"}]}, "accepted: a number > 0"),
        ({"device": "x", "hardware": "h100-sxm", "results": [{"depth": 4, "seq_len": 256, "device_batch": 1, "tok_per_s": 1, "status": "oom"}]}, "no result with status 'ok'"),
        ([1, 2], "expected a JSON object with 'device', 'hardware' and 'results'"),
    ],
)
def test_calibration_refusals_are_one_line(tmp_path, doc, words):
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(UserError, match=words) as err:
        calibrated_efficiency(path, H100)
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- plan integration


def test_plan_save_load_reruns_refined_to_identical_numbers(tmp_path):
    model = load_model("llama-7b")
    eff = efficiency_for(H100).with_(eta_gemm=0.5, source="test")
    plan = Plan(model, H100, default_goal(model), G=64, efficiency_refined=eff).compute()
    assert plan.refined["layouts"] and plan.refined["efficiency"]["eta_gemm"] == 0.5
    path = plan.save(tmp_path / "p.toml")
    loaded = load_plan(path)
    assert loaded.efficiency_refined == eff
    again = loaded.compute()
    assert again.refined == plan.refined
    assert again.refined["layouts"] == loaded.saved_refined["layouts"]
    assert again.result["solution"] == plan.result["solution"]  # Step 1 untouched


def test_seed_model_plan_has_no_refined_table(tmp_path):
    model = load_model("gpt2-124m")
    plan = replace(Plan(model, H100, default_goal(model)), refine=False).compute()
    assert plan.refined == {}
    assert "[refined" not in plan.to_toml()


def test_plan_cli_json_has_refined_beside_step1(tmp_path):
    probe = _probe(tmp_path / "probe.json", "a100-80g-sxm", [
        {"depth": 8, "seq_len": 512, "device_batch": 8, "tok_per_s": 2.0e5, "step_time_s": 0.02, "peak_vram_bytes": 1, "mfu": 0.3, "status": "ok"}])
    r = run_lsdt("plan", "--model", "llama-13b", "--hardware", "a100-80g-sxm", "--calibrate", str(probe), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert {"feasible", "answer", "seed_model", "inputs", "refined"} <= set(data)
    ref = data["refined"]
    assert ref["layouts"] and "calibrated" in ref["efficiency"]["source"]
    c = ref["layouts"][0]
    assert c["dp"] * c["tp"] * c["pp"] * c["cp"] == c["gpus"] and c["meets_deadline"] == ref["feasible"]
    seed = run_lsdt("plan", "--model", "llama-13b", "--hardware", "a100-80g-sxm", "--seed-model", "--json")
    assert "refined" not in json.loads(seed.stdout)
    human = run_lsdt("plan", "--model", "llama-13b", "--hardware", "a100-80g-sxm")
    assert human.returncode == 0 and "FEASIBLE" in human.stdout and "engineering model" in human.stdout and "#1" in human.stdout
    wrong = run_lsdt("plan", "--model", "llama-13b", "--hardware", "h100-sxm", "--calibrate", str(probe))
    assert wrong.returncode == 2 and "does not match" in wrong.stderr and wrong.stderr.count("\n") == 1
