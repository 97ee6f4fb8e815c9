"""Step-2 engineering model: formulas against the papers' values, invariants, validation accuracy."""

from __future__ import annotations

import importlib.util
import statistics
import sys
import tomllib
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.sizing import collectives as coll
from engine.sizing import memory as mem
from engine.sizing.efficiency import Efficiency, efficiency_for, gemm_time_s
from engine.sizing.physics import STATE_BYTES_PER_PARAM, activation_bytes_per_sequence
from engine.sizing.refine import PREDICT_KEYS, EngineeringModel, Layout, predict
from engine.specs import ModelSpec, load_hardware, load_model
from tests.conftest import REPO

GIB = 2**30
A100 = load_hardware("a100-80g-sxm")


def _gpt(name, L, h, a, s=2048, V=51200):
    return ModelSpec(name=name, n_layer=L, d_model=h, n_head=a, vocab_size=V, seq_len=s)


# Korthikanti et al. 2022, Fig. 1 / Table 2 (GiB per GPU): (model, tp, pp, v, micro-batch, m,
# activations without SP or recompute, activations with SP + selective recompute).
KORTHIKANTI = [
    (_gpt("22b", 48, 6144, 64), 8, 1, 1, 4, 1, 59.25, 9.56),
    (_gpt("175b", 96, 12288, 96), 8, 8, 3, 1, 64, 66.84, 12.35),
    (_gpt("530b", 105, 20480, 128), 8, 35, 3, 1, 280, 114.02, 23.08),
    (_gpt("1t", 128, 25600, 160), 8, 64, 1, 1, 512, 131.25, 26.56),
]


@pytest.mark.parametrize("model, tp, pp, v, b, m, plain_gib, selective_gib", KORTHIKANTI, ids=lambda x: getattr(x, "name", None))
def test_korthikanti_activation_memory_within_2_percent(model, tp, pp, v, b, m, plain_gib, selective_gib):
    terms = mem.activation_terms(model, model.seq_len, "unfused", dropout=True)
    held = mem.inflight_layers(model.n_layer // pp, pp, v, m)
    tokens = b * model.seq_len
    plain = mem.layer_activation_bytes(terms, tokens, tp, False, "none") * held / GIB
    selective = mem.layer_activation_bytes(terms, tokens, tp, True, "selective") * held / GIB
    assert plain == pytest.approx(plain_gib, rel=0.02)
    assert selective == pytest.approx(selective_gib, rel=0.02)


def test_activation_terms_reduce_to_step0_formula_without_parallelism():
    """34 s h + 5 a s^2 per layer (Korthikanti eq. 1) is what physics.py uses for Step 0."""
    model = _gpt("1.7b", 24, 2304, 24)
    terms = mem.activation_terms(model, model.seq_len, "unfused", dropout=True)
    per_layer = mem.layer_activation_bytes(terms, model.seq_len, 1, False, "none")
    assert per_layer * model.n_layer == pytest.approx(activation_bytes_per_sequence(model), rel=1e-12)


def test_state_bytes_sum_to_step0_bytes_per_param():
    for precision, total in STATE_BYTES_PER_PARAM.items():
        assert sum(mem.state_bytes(1.0, 1, 0, precision).values()) == total


def test_korthikanti_state_memory_is_18_bytes_of_layer_params():
    """Fig. 1's 'parameters + optimizer' of the 175B model on TP 8 x PP 8: 45.56 GiB."""
    model = _gpt("175b", 96, 12288, 96)
    em = EngineeringModel(model, A100, precision="bf16-fp32grad")
    layers = 12 * em.layer_params / 8
    assert sum(mem.state_bytes(layers, 1, 0, "bf16-fp32grad").values()) / GIB == pytest.approx(45.56, rel=0.005)


def test_ring_collective_volumes():
    assert coll.all_reduce_s(8e9, 8, 1e9) == pytest.approx(2 * 7 / 8 * 8)
    assert coll.reduce_scatter_s(8e9, 8, 1e9) == pytest.approx(7 / 8 * 8)
    assert coll.all_gather_s(8e9, 1, 1e9) == 0.0


def test_roofline_small_matmul_is_memory_bound_and_large_is_compute_bound():
    AMPERE = efficiency_for(A100)
    big = gemm_time_s(8192, 8192, 8192, A100, AMPERE)
    assert big == pytest.approx(2 * 8192**3 / (A100.peak_flops * AMPERE.eta_gemm))
    M, K, N = 8192, 64, 64  # intensity MKN/(MK+KN+MN) ~ 32 FLOP/B, below A100's ridge of ~126
    skinny = gemm_time_s(M, K, N, A100, AMPERE)
    achieved = 2 * M * K * N / skinny
    intensity = M * K * N / (M * K + K * N + M * N)
    assert achieved == pytest.approx(intensity * A100.memory_bw * AMPERE.eta_mem)
    assert achieved < 0.3 * A100.peak_flops * AMPERE.eta_gemm


def test_full_recompute_flops_follow_megatron_f96_over_f72():
    """hardware/model FLOPs = F96/F72 = 96(1 + s/6h + V/16lh) / 72(1 + s/6h + V/12lh) (Narayanan 2021)."""
    model = _gpt("175b", 96, 12288, 96)
    r = predict(model, A100, gpus=1024, tp=8, pp=16, global_batch=1536, micro_batch=1, recompute="full",
                zero=0, attention="unfused", dropout=True)
    l, h, s, V = 96, 12288, 2048, 51200
    f96 = 96 * (1 + s / (6 * h) + V / (16 * l * h))
    f72 = 72 * (1 + s / (6 * h) + V / (12 * l * h))
    assert r["hardware_tflops_per_gpu"] / r["model_tflops_per_gpu"] == pytest.approx(f96 / f72, rel=1e-9)


def test_bubble_fraction_is_p_minus_1_over_v_m():
    model = _gpt("175b", 96, 12288, 96)
    for v, m in ((1, 12), (2, 24), (3, 16)):
        r = predict(model, A100, gpus=64, tp=8, pp=8, global_batch=m, micro_batch=1, recompute="full", interleave=v)
        assert r["breakdown"]["bubble_fraction"] == pytest.approx(7 / (v * m))
        b = r["breakdown"]
        assert b["bubble_s"] == pytest.approx(7 / v * (b["compute_s"] + b["tp_comm_s"]) / m, rel=1e-9)


def test_step_time_is_the_sum_of_its_parts():
    model = load_model("llama3-70b")
    r = predict(model, load_hardware("h100-sxm"), gpus=256, tp=8, pp=4, global_batch=512, micro_batch=1, recompute="selective", zero=1, interleave=2)
    b = r["breakdown"]
    assert set(PREDICT_KEYS) == set(r)
    total = b["compute_s"] + b["bubble_s"] + b["exposed_comm_s"] + b["optimizer_s"]
    assert r["step_time_s"] == pytest.approx(total, rel=1e-9)
    assert r["memory_per_gpu_bytes"] == pytest.approx(sum(b["memory_bytes"].values()))


def test_gqa_swiglu_moe_enter_flops_memory_and_time():
    dense = ModelSpec(name="d", n_layer=8, d_model=1024, n_head=16, vocab_size=32000, seq_len=1024)
    gqa = dense.with_(n_kv_head=4)
    swiglu = dense.with_(ffn="swiglu", d_ff=2752)
    moe = dense.with_(n_experts=8, experts_per_token=2)
    hw = load_hardware("h100-sxm")
    lay = Layout(1, 1, 1, 4, "none", 0, 1, False)
    t = {m.name + str(i): EngineeringModel(m, hw).evaluate(lay, 4) for i, m in enumerate((dense, gqa, swiglu, moe))}
    d, g, s, e = t.values()
    assert g["memory_per_gpu_bytes"] < d["memory_per_gpu_bytes"] and g["step_time_s"] < d["step_time_s"]
    assert s["breakdown"]["memory_bytes"]["activations"] != d["breakdown"]["memory_bytes"]["activations"]
    # top-2 of 8 experts: ~2x the MLP compute per token, 8x the MLP weights in memory
    assert e["step_time_s"] > 1.4 * d["step_time_s"]
    from engine.sizing.counts import param_counts

    for model, r in ((dense, d), (moe, e)):  # every parameter (all experts) carries 12 B of Adam state
        assert r["breakdown"]["memory_bytes"]["optimizer"] == pytest.approx(12 * param_counts(model).total)


# --------------------------------------------------------------------------- properties

models = st.builds(
    lambda L, heads, hd, s, ffn: ModelSpec(
        name="h", n_layer=L, d_model=heads * hd, n_head=heads, head_dim=hd, vocab_size=32768, seq_len=s, ffn=ffn,
        d_ff=4 * heads * hd,
    ),
    st.sampled_from([4, 8, 12, 24, 32]),
    st.sampled_from([8, 16, 32]),
    st.sampled_from([64, 128]),
    st.sampled_from([512, 2048]),
    st.sampled_from(["gelu", "swiglu", "relu2"]),
)
hardware = st.sampled_from([load_hardware(n) for n in ("a100-80g-sxm", "h100-sxm", "rtx4090")])
layouts = st.builds(
    lambda dp, tp, pp, rc, z, sp: (dp, tp, pp, rc, z, sp),
    st.sampled_from([1, 2, 8]), st.sampled_from([1, 2, 4, 8]), st.sampled_from([1, 2, 4]),
    st.sampled_from(["none", "selective", "full"]), st.sampled_from([0, 1, 2, 3]), st.booleans(),
)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _lay(model, hw, params, mb=1):
    dp, tp, pp, rc, z, sp = params
    tp = min(tp, hw.gpus_per_node)
    pp = min(pp, model.n_layer)
    return Layout(dp, tp, pp, mb, rc, z, 1, sp and tp > 1)


@FAST
@given(models, hardware, layouts, st.integers(1, 6))
def test_more_microbatches_never_raise_the_bubble_fraction(model, hw, params, k):
    em = EngineeringModel(model, hw)
    lay = _lay(model, hw, params)
    small = em.step_time(lay, lay.dp * k)["bubble_fraction"]
    large = em.step_time(lay, lay.dp * (k + 1))["bubble_fraction"]
    assert large <= small


@FAST
@given(models, hardware, layouts, st.sampled_from([1, 2, 4]))
def test_memory_never_falls_as_microbatch_grows(model, hw, params, mb):
    em = EngineeringModel(model, hw)
    lay = _lay(model, hw, params, mb)
    B = lay.dp * 16
    assert em.memory_total(lay, B) <= em.memory_total(replace(lay, micro_batch=2 * mb), B)


@FAST
@given(models, hardware, layouts)
def test_zero3_state_le_zero1_le_zero0(model, hw, params):
    em = EngineeringModel(model, hw)
    lay = _lay(model, hw, params)
    state = {}
    for z in (0, 1, 3):
        parts = em.memory(replace(lay, zero=z), 4)
        state[z] = parts["weights"] + parts["gradients"] + parts["optimizer"]
    assert state[3] <= state[1] <= state[0]


@FAST
@given(models, hardware, layouts, st.floats(1.0, 8.0))
def test_step_time_never_rises_when_link_bandwidth_rises(model, hw, params, k):
    lay = _lay(model, hw, params)
    faster = hw.with_(intra_node_bw=hw.intra_node_bw * k, inter_node_bw=hw.inter_node_bw * k if hw.inter_node_bw else None)
    B = lay.dp * 8
    slow = EngineeringModel(model, hw).step_time(lay, B)["step_time_s"]
    fast = EngineeringModel(model, faster).step_time(lay, B)["step_time_s"]
    assert fast <= slow * (1 + 1e-12)


def test_efficiency_rejects_out_of_range():
    from engine.errors import UserError

    with pytest.raises(UserError, match="eta_gemm"):
        Efficiency(1.5, 0.8, 0.8, 0.8)
    with pytest.raises(UserError, match="overlap_slowdown"):
        Efficiency(0.5, 0.8, 0.8, 0.8, 1.0)


# --------------------------------------------------------------------------- validation accuracy


def _validate_module():
    spec = importlib.util.spec_from_file_location("lsdt_validate", REPO / "benchmarks" / "validate.py")
    validate = importlib.util.module_from_spec(spec)
    sys.modules["lsdt_validate"] = validate
    spec.loader.exec_module(validate)
    return validate


def test_published_runs_within_targets(shared_dir):
    """In sample: step-time |error| median <= 5%, max <= 20% over the published runs (the max was
    15% while eta_inter and overlap_slowdown were fitted to the ZeRO-3 rows; they are literature
    measurements since issue 20, and the out-of-sample max fell from 34% to 18%)."""
    validate = _validate_module()
    rows = tomllib.loads((shared_dir / "validation" / "published_runs.toml").read_text())["run"]
    errors = [abs(validate.run_row(r)["error"]) for r in rows]
    assert statistics.median(errors) <= 0.05
    assert max(errors) <= 0.20


def test_published_runs_out_of_sample_within_issue_targets(shared_dir):
    """Issue 20's target on unseen runs: median <= 10%, max <= 25%, leaving one whole paper out
    of the fit (the strictest split: Narayanan et al. 2021's three tables go out together)."""
    validate = _validate_module()
    rows = tomllib.loads((shared_dir / "validation" / "published_runs.toml").read_text())["run"]
    held_out, fits = validate.leave_one_source_out(rows, validate.paper_of)
    assert len(held_out) == len(rows) and len(fits) == 4
    summary = validate.error_summary(held_out)
    assert summary["median"] <= 0.10
    assert summary["max"] <= 0.25


def test_one_set_of_constants_scaled_by_each_profiles_measured_matmul_ceiling():
    """No per-generation table: A100 and H100 differ only through their profiles' numbers."""
    from engine.sizing import efficiency as E

    h100 = load_hardware("h100-sxm")
    a, h = E.efficiency_for(A100), E.efficiency_for(h100)
    assert (a.eta_mem, a.eta_intra, a.eta_inter, a.overlap_slowdown) == (h.eta_mem, h.eta_intra, h.eta_inter, h.overlap_slowdown)
    assert a.eta_gemm == pytest.approx(E.TRAINING_GEMM_FRACTION * A100.matmul_flops / A100.peak_flops, abs=1e-4)
    assert h.eta_gemm == pytest.approx(E.TRAINING_GEMM_FRACTION * h100.matmul_flops / h100.peak_flops, abs=1e-4)
    unmeasured = load_hardware("b200")
    assert unmeasured.matmul_flops is None
    b = E.efficiency_for(unmeasured)
    assert b.eta_gemm == pytest.approx(E.TRAINING_GEMM_FRACTION * E.UNMEASURED_MATMUL_FRACTION, abs=1e-4)
    assert "no measured matmul_flops" in b.source


def test_zero3_recompute_gather_adds_one_all_gather_per_micro_batch():
    """DeepSpeed ZeRO-3 with full recompute gathers the weights three times per micro-batch."""
    model = load_model("gpt3-175b")
    kw = dict(gpus=1536, tp=1, pp=1, global_batch=1536, micro_batch=1, recompute="full", zero=3)
    fsdp = predict(model, A100, **kw)
    ds = predict(model, A100, zero3_recompute_gather=True, **kw)
    ag = fsdp["breakdown"]["dp_comm_s"] / 3  # all-gather, all-gather, reduce-scatter of equal size (bf16)
    assert ds["breakdown"]["dp_comm_s"] == pytest.approx(4 * ag)
    assert ds["step_time_s"] > fsdp["step_time_s"]
    sel = dict(kw, recompute="selective")
    assert predict(model, A100, zero3_recompute_gather=True, **sel)["step_time_s"] == predict(model, A100, **sel)["step_time_s"]


def test_calculon_530b_layout_with_calculons_constants_gives_calculons_step_time():
    """Turing-530B on 5,128 A100s: with the constants of Calculon's a100_80g.json, LSDT's time
    model puts Calculon's own best layout within 2 % of Calculon's 17.30 s, and its memory model
    fits it (offloaded gradients): the remaining gap is the constants (benchmarks/calculon_530b.py)."""
    spec = importlib.util.spec_from_file_location("lsdt_calculon", REPO / "benchmarks" / "calculon_530b.py")
    calc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(calc)
    eff = efficiency_for(A100).with_(**calc.CALCULON_A100)
    r = predict(calc.TURING_530B, A100, gpus=5128, global_batch=2520, flexible=True, efficiency=eff, **calc.CALCULON_LAYOUT)
    assert r["chosen"]["global_batch_used"] == 1923
    assert r["step_time_s"] == pytest.approx(calc.CALCULON_STEP_S, rel=0.02)
    assert r["fits"] and r["breakdown"]["memory_bytes"]["gradients"] < 5e9


def test_step2_modules_import_no_torch_numpy_or_textual():
    import subprocess

    code = ("import sys, engine.sizing.refine, engine.sizing.search, engine.sizing.export, engine.sizing.calibrate, "
            "engine.commands.predict, engine.commands.export; "
            "print([m for m in ('torch', 'numpy', 'textual') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
