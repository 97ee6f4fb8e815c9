"""The engineering model of 2026 (issue 20): config.json architectures (DeepSeek-V3 MLA + shared
experts + dense-first layers + MTP, Mixtral, Qwen3-MoE) counted against their published totals,
FP8, and the new layout dimensions: context and expert parallelism, uneven first/last stages,
offload to host, the flexible global batch and --interleave auto."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from engine.errors import UserError
from engine.sizing.counts import attention_context, flops_per_token, param_counts
from engine.sizing.refine import EngineeringModel, Layout, layout_text, predict
from engine.specs import builtin_names, load_hardware, load_model, model_from_hf_config, read_json
from tests.conftest import run_lsdt

CONFIGS = Path(__file__).parent / "hf_configs"
H100 = load_hardware("h100-sxm")
A100 = load_hardware("a100-80g-sxm")


def _hf(name: str, **changes):
    cfg = read_json(CONFIGS / f"{name}.json")
    cfg.update(changes)
    return cfg


# ----------------------------------------------------------------------------- architectures


@pytest.mark.parametrize("name,total_b,active_b,rel", [
    # DeepSeek-AI 2024, DeepSeek-V3 technical report, abstract: 671B total, 37B activated per token.
    ("deepseek-v3", 671.0, 37.0, 0.015),
    # Mistral AI 2024, "Mixtral of experts" model card: 46.7B total, 12.9B active.
    ("mixtral-8x7b", 46.7, 12.9, 0.005),
    # Qwen team 2025, Qwen3-30B-A3B model card: 30.5B total, 3.3B activated (3.35B: the card rounds).
    ("qwen3-30b-a3b", 30.5, 3.3, 0.02),
])
def test_config_json_totals_match_the_published_ones(name, total_b, active_b, rel):
    c = param_counts(load_model(str(CONFIGS / f"{name}.json")))
    assert c.total / 1e9 == pytest.approx(total_b, rel=rel)
    assert c.active / 1e9 == pytest.approx(active_b, rel=rel)


def test_deepseek_v3_is_read_as_mla_with_shared_experts_and_dense_first_layers():
    m = load_model(str(CONFIGS / "deepseek-v3.json"))
    assert m.is_mla and (m.q_lora_rank, m.kv_lora_rank, m.qk_head_dim, m.v_dim) == (1536, 512, 192, 128)
    assert (m.n_experts, m.n_shared_experts, m.experts_per_token, m.d_ff) == (256, 1, 8, 2048)
    assert (m.dense_layers, m.dense_d_ff, m.mtp_layers) == (3, 18432, 0)
    c = param_counts(m)
    assert c.n_moe_layers == 58 and c.routed_experts == 58 * 256 * 3 * 7168 * 2048
    # Attention FLOPs: QK^T over 192 wide heads, AV over 128: 6 x 128 x (192 + 128) x context per layer.
    attn = flops_per_token(m, 4096) - 6 * c.matmul_active
    assert attn == pytest.approx(6 * 128 * (192 + 128) * attention_context(m, 4096))


def test_the_mtp_module_is_counted_only_when_asked():
    plain = param_counts(model_from_hf_config(_hf("deepseek-v3")))
    with_mtp = param_counts(model_from_hf_config(_hf("deepseek-v3"), mtp=True))
    # One MTP module: a 2h x h projection plus one MoE block (embedding and head shared): ~11.6B,
    # the report's 14B less the 1.85B of embedding + head it lists with it.
    assert (with_mtp.total - plain.total) == with_mtp.mtp
    assert with_mtp.mtp / 1e9 == pytest.approx(11.6, rel=0.01)


@pytest.mark.parametrize("name,key,value", [
    ("qwen3-30b-a3b", "decoder_sparse_step", 2),
    ("qwen3-30b-a3b", "mlp_only_layers", [0, 1]),
    ("deepseek-v3", "moe_layer_freq", 2),
    ("mixtral-8x7b", "attention_bias", True),
])
def test_a_size_changing_key_that_is_not_modeled_is_refused_by_name(name, key, value, tmp_path):
    with pytest.raises(UserError, match=f"key '{key}'.*does not model"):
        model_from_hf_config(_hf(name, **{key: value}))
    path = tmp_path / "config.json"
    path.write_text(json.dumps(_hf(name, **{key: value})))
    r = run_lsdt("predict", "--model", str(path), "--hardware", "h100-sxm", "--gpus", "8", "--global-batch", "8")
    assert r.returncode == 2 and key in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_mla_without_its_head_widths_is_refused():
    cfg = _hf("deepseek-v3")
    del cfg["v_head_dim"]
    with pytest.raises(UserError, match="needs v_head_dim"):
        model_from_hf_config(cfg)


# ----------------------------------------------------------------------------- FP8


def test_every_profile_has_a_host_link_and_hopper_blackwell_an_fp8_peak():
    for name in builtin_names("hardware"):
        assert load_hardware(name).host_link_bw
    # Datasheets: H100/H200 SXM 1,979 TFLOP/s dense FP8 (3,958 sparse); B200 4.5 PFLOP/s dense.
    assert H100.peak_flops_fp8 == pytest.approx(2 * H100.peak_flops, rel=1e-3)
    assert load_hardware("h200").peak_flops_fp8 == H100.peak_flops_fp8
    assert load_hardware("b200").peak_flops_fp8 == pytest.approx(2 * load_hardware("b200").peak_flops)
    assert A100.peak_flops_fp8 is None


def test_fp8_gemms_make_the_step_faster_and_need_an_fp8_peak():
    model = load_model("llama3-70b")
    kw = dict(gpus=64, tp=8, pp=1, global_batch=64, micro_batch=1, recompute="full", zero=1)
    bf16 = predict(model, H100, **kw)
    fp8 = predict(model, H100, precision="fp8", **kw)
    assert fp8["step_time_s"] < 0.8 * bf16["step_time_s"]
    mem8, mem16 = fp8["breakdown"]["memory_bytes"], bf16["breakdown"]["memory_bytes"]
    assert all(mem8[k] == mem16[k] for k in ("weights", "gradients", "optimizer"))  # same bf16 / fp32 state
    assert mem8["activations"] < mem16["activations"]  # FP8 GEMM inputs are cached in 1 byte
    assert 0 < fp8["mfu"] < bf16["mfu"]  # MFU of FP8 runs is against the FP8 peak
    with pytest.raises(UserError, match="no peak_flops_fp8"):
        predict(model, A100, precision="fp8", **kw)


# ----------------------------------------------------------------------------- new dimensions


def test_context_parallelism_splits_activations_and_counts_its_gpus():
    model = load_model("llama3-8b").with_(seq_len=32768)
    em = EngineeringModel(model, H100)
    one = Layout(1, 8, 1, 1, "none", 1, cp=1)
    two = replace(one, cp=2)
    assert two.gpus == 16
    a1, a2 = em.memory(one, 8)["activations"], em.memory(two, 8)["activations"]
    assert a2 == pytest.approx(a1 / 2)
    t = em.step_time(two, 8)
    assert t["cp_comm_exposed_s"] > 0 and t["step_time_s"] < em.step_time(one, 8)["step_time_s"]
    with pytest.raises(UserError, match="--cp 3"):
        predict(model.with_(seq_len=4096), H100, gpus=24, tp=8, pp=1, cp=3, global_batch=8)


def test_expert_parallelism_shards_the_routed_experts_and_adds_all_to_alls():
    model = load_model(str(CONFIGS / "mixtral-8x7b.json")).with_(seq_len=4096)
    em = EngineeringModel(model, H100)
    base = Layout(8, 1, 1, 1, "full", 1)
    sharded = replace(base, ep=8)
    m1, m8 = em.memory(base, 1), em.memory(sharded, 1)
    assert m8["weights"] < m1["weights"] / 4  # the experts are ~97 % of Mixtral's weights
    t = em.step_time(sharded, 8)
    assert t["ep_comm_s"] > 0 and em.step_time(base, 8)["ep_comm_s"] == 0
    with pytest.raises(UserError, match="--ep 8: model llama3-8b has no routed-expert MoE layers"):
        predict(load_model("llama3-8b"), H100, gpus=8, tp=1, pp=1, ep=8, global_batch=8)
    with pytest.raises(UserError, match="--ep 3 must divide n_experts"):
        predict(model, H100, gpus=6, tp=1, pp=1, ep=3, global_batch=6)


def test_uneven_first_and_last_stages_126_layers_on_16():
    """Llama 3 405B's published layout: 126 layers on 16 stages, the first and last one layer short."""
    model = load_model("llama3-405b")
    em = EngineeringModel(model, H100)
    even = Layout(8, 8, 16, 1, "full", 1)
    uneven = replace(even, first_stage_layers=7, last_stage_layers=7)
    assert em.stage_layers(uneven) == (7, 8, 7) and em.stage_layers(even) == (8, 8, 8)
    assert em.step_time(uneven, 256)["step_time_s"] < em.step_time(even, 256)["step_time_s"]
    r = predict(model, H100, gpus=1024, tp=8, pp=16, global_batch=256, first_stage_layers=7, last_stage_layers=7)
    assert r["chosen"]["first_stage_layers"] == 7 and "stages first 7 last 7" in layout_text(r["chosen"])
    with pytest.raises(UserError, match="the other 14 stages get 114 layers"):
        predict(model, H100, gpus=1024, tp=8, pp=16, global_batch=256, first_stage_layers=6, last_stage_layers=6)
    with pytest.raises(UserError, match="the other stages' 9 layers each do not split into 2 virtual stages"):
        predict(model, H100, gpus=896, tp=8, pp=14, global_batch=112, first_stage_layers=9, last_stage_layers=9, interleave=2)
    # With interleaving (Meta's layout): v divides the middle stages' 8 layers; more v, less bubble.
    times = [em.step_time(replace(uneven, interleave=v), 256)["step_time_s"] for v in (1, 2, 4, 8)]
    assert times == sorted(times, reverse=True)
    auto = predict(model, H100, gpus=1024, tp=8, pp=16, global_batch=256, micro_batch=1, recompute="full",
                   first_stage_layers=7, last_stage_layers=7, interleave="auto")
    assert auto["chosen"]["interleave"] == 8


def test_offload_frees_gpu_memory_and_costs_host_link_time():
    model = load_model("gpt3-175b")
    em = EngineeringModel(model, A100)
    lay = Layout(64, 8, 1, 1, "full", 1)
    off = replace(lay, offload_optimizer=True, offload_weights=True, offload_activations=True)
    mem_on, mem_off = em.memory(lay, 1), em.memory(off, 1)
    assert mem_off["optimizer"] == 0 and mem_off["weights"] == 0 and mem_off["activations"] < mem_on["activations"]
    t_on, t_off = em.step_time(lay, 64), em.step_time(off, 64)
    assert t_off["host_offload_exposed_s"] > 0 and t_off["step_time_s"] > t_on["step_time_s"]
    with pytest.raises(UserError, match="has no host_link_bw"):
        predict(model, A100.with_(host_link_bw=None), gpus=64, tp=8, pp=1, global_batch=64, offload_optimizer=True)


def test_flexible_batch_runs_the_largest_multiple_of_dp_and_says_so():
    """2,520 sequences on 5,128 GPUs (8 x 641, 641 prime): no dp divides the batch."""
    model = load_model("gpt3-175b")
    with pytest.raises(UserError, match="--flexible-batch to run 1923"):
        predict(model, A100, gpus=5128, tp=8, pp=1, global_batch=2520, zero=3)
    r = predict(model, A100, gpus=5128, tp=8, pp=1, global_batch=2520, zero=3, flexible=True)
    assert (r["chosen"]["global_batch"], r["chosen"]["global_batch_used"], r["chosen"]["dp"]) == (2520, 1923, 641)
    r = run_lsdt("predict", "--model", "gpt3-175b", "--hardware", "a100-80g-sxm", "--gpus", "5128", "--tp", "8",
                 "--global-batch", "2520", "--zero", "3", "--flexible-batch", "--offload", "optimizer")
    assert r.returncode == 0, r.stderr
    assert "1,923 seq (of 2,520 asked" in r.stdout and "641 x 8 x 1 x 1 x 1, v1" in r.stdout and "offload opt" in r.stdout


def test_interleave_auto_is_at_least_as_fast_as_any_fixed_choice():
    model = load_model("gpt3-175b")
    kw = dict(gpus=512, tp=8, pp=8, global_batch=512, micro_batch=1, recompute="full")
    auto = predict(model, A100, interleave="auto", **kw)
    fixed = [predict(model, A100, interleave=v, **kw)["step_time_s"] for v in (1, 2, 3, 6)]
    assert auto["step_time_s"] == pytest.approx(min(fixed))
    assert auto["chosen"]["interleave"] > 1


def test_layout_text_shows_every_dimension():
    lay = Layout(4, 8, 16, 2, "selective", 1, 3, True, cp=2, ep=4)
    assert lay.text() == "4 x 8 x 16 x 2 x 4, v3, mb2, selective, ZeRO 1"
    assert replace(lay, offload_optimizer=True, offload_activations=True).text().endswith("offload opt+act")
    assert lay.gpus == 4 * 8 * 16 * 2


def test_predict_cli_takes_the_new_flags_and_refuses_bad_ones(tmp_path):
    ok = run_lsdt("predict", "--model", str(CONFIGS / "deepseek-v3.json"), "--hardware", "h100-sxm", "--gpus", "2048",
                  "--pp", "16", "--ep", "64", "--global-batch", "15360", "--seq", "4096", "--precision", "fp8",
                  "--first-stage-layers", "4", "--last-stage-layers", "1", "--micro-batch", "1", "--recompute", "full", "--json")
    assert ok.returncode == 0, ok.stderr
    c = json.loads(ok.stdout)["chosen"]
    assert (c["ep"], c["first_stage_layers"], c["last_stage_layers"], c["gpus"]) == (64, 4, 1, 2048)
    for argv, words in [
        (["--offload", "cpu"], "argument --offload: 'cpu': accepted: a comma-separated list of optimizer"),
        (["--cp", "0"], "argument --cp: '0': accepted: an integer in [1,"),
        (["--interleave", "two"], "argument --interleave"),
    ]:
        r = run_lsdt("predict", "--model", "llama3-8b", "--hardware", "h100-sxm", "--gpus", "8", "--global-batch", "8", *argv)
        assert r.returncode == 2 and words in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_predict_cli_zero3_recompute_gather_adds_the_deepspeed_all_gather():
    argv = ("predict", "--model", "gpt3-175b", "--hardware", "a100-80g-sxm", "--gpus", "1536", "--tp", "1", "--pp", "1",
            "--global-batch", "1536", "--zero", "3", "--recompute", "full", "--micro-batch", "1", "--json")
    fsdp, ds = run_lsdt(*argv), run_lsdt(*argv, "--zero3-recompute-gather")
    assert fsdp.returncode == 0 and ds.returncode == 0, ds.stderr
    dp_fsdp, dp_ds = (json.loads(r.stdout)["breakdown"]["dp_comm_s"] for r in (fsdp, ds))
    assert dp_ds == pytest.approx(dp_fsdp * 4 / 3)  # all-gather x 3 + reduce-scatter, not x 2 + 1


def test_the_step_is_still_the_sum_of_its_parts_with_every_new_dimension():
    model = load_model(str(CONFIGS / "mixtral-8x7b.json")).with_(seq_len=8192)
    em = EngineeringModel(model, H100, precision="fp8")
    lay = Layout(4, 2, 4, 1, "full", 2, 1, True, cp=2, ep=2, first_stage_layers=7, last_stage_layers=7,
                 offload_optimizer=True, offload_activations=True)
    r = em.evaluate(lay, 64)
    b = r["breakdown"]
    assert r["step_time_s"] == pytest.approx(b["compute_s"] + b["bubble_s"] + b["exposed_comm_s"] + b["optimizer_s"])
    assert min(b["ep_comm_s"], b["cp_comm_exposed_s"], b["host_offload_exposed_s"], b["bubble_s"]) > 0
    assert r["chosen"]["gpus"] == 4 * 2 * 4 * 2 and layout_text(r["chosen"]) == (
        "4 x 2 x 4 x 2 x 2, v1, mb1, full, ZeRO 2, stages first 7 last 7, offload opt+act")


def test_ep_overlap_hides_all_to_alls_behind_compute_and_fp8_dispatch_halves_them():
    model = load_model("deepseek-v3")
    kw = dict(gpus=256, tp=1, pp=4, ep=64, global_batch=256, micro_batch=1, recompute="full", first_stage_layers=16, last_stage_layers=15)
    exposed = predict(model, H100, **kw)["breakdown"]["ep_comm_s"]
    hidden = predict(model, H100, ep_overlap=True, **kw)["breakdown"]["ep_comm_s"]
    assert 0 < hidden < exposed
    bf16 = predict(model, H100, **kw)["breakdown"]["ep_comm_s"]
    fp8 = predict(model, H100, precision="fp8", **kw)["breakdown"]["ep_comm_s"]
    assert fp8 == pytest.approx(0.75 * bf16)  # dispatch 1 byte, combine 2, instead of 2 + 2
    r = run_lsdt("predict", "--model", "deepseek-v3", "--hardware", "h100-sxm", "--gpus", "256", "--pp", "4", "--ep", "64",
                 "--global-batch", "256", "--first-stage-layers", "16", "--last-stage-layers", "15", "--ep-overlap", "--json")
    assert r.returncode in (0, 2) and json.loads(r.stdout)["chosen"]["ep"] == 64


def test_deepseek_v3_published_recipe_fits_80gb_and_fp8_caches_gemm_inputs_in_one_byte():
    """DeepSeek-V3 trained on 80 GB H800s without TP (report sec. 3.2-3.3: PP 16, EP 64 over 8 nodes,
    ZeRO-1 DP, FP8; recomputing RMSNorm and the MLA up-projections, caching FP8 activations). With
    that recipe (selective for an MLA model) the memory model must say it fits; without any
    recompute it need not."""
    from engine.sizing import memory as mem

    ds = load_model("deepseek-v3")
    h800 = H100.with_(name="h800", intra_node_bw=200e9)
    kw = dict(gpus=2048, tp=1, pp=16, ep=64, global_batch=15360, micro_batch=1, precision="fp8", first_stage_layers=4, last_stage_layers=1)
    sel = predict(ds, h800, recompute="selective", **kw)
    assert sel["fits"] and sel["memory_per_gpu_bytes"] < 70e9
    assert predict(ds, h800, recompute="none", **kw)["memory_per_gpu_bytes"] > sel["memory_per_gpu_bytes"] * 1.3
    t16 = mem.activation_terms(ds, 4096, "flash", False, "bf16")
    t8 = mem.activation_terms(ds, 4096, "flash", False, "fp8")
    # The routed copies (8 x d_model per MoE layer) are among the cached inputs FP8 halves.
    assert t16.split - t8.split > 8 * ds.d_model * 58 / 61 * 0.5
    # A standard-attention model keeps Megatron's selective recompute (the attention core only).
    gpt = mem.activation_terms(load_model("gpt3-175b"), 2048, "unfused", True)
    assert gpt.selective_replicated == gpt.selective_split == 0.0


def test_mtp_module_runs_on_the_last_stage_with_its_own_logits():
    """DeepSeek-V3's MTP module (one MoE block + projection, sharing the output head) sits on the
    last pipeline stage (V3 sec. 3.2.1): that stage holds one more block and a second set of logits;
    the other stages are unchanged."""
    ds = load_model("deepseek-v3")
    h800 = H100.with_(name="h800", intra_node_bw=200e9)
    lay = Layout(128, 1, 16, 1, "selective", 1, 1, True, 1, 64, 4, 1)
    plain, mtp = EngineeringModel(ds, h800, precision="fp8"), EngineeringModel(ds.with_(mtp_layers=1), h800, precision="fp8")
    assert mtp._stage_slots(lay) == (4, 4, 2) and plain._stage_slots(lay) == (4, 4, 1)
    st_plain, st_mtp = plain._stage_times(lay), mtp._stage_times(lay)
    assert st_mtp[1]["t_f"] > 1.8 * st_plain[1]["t_f"]  # the last stage: 1 block + head -> 2 blocks + 2 heads
    assert st_mtp[0]["t_f"] == pytest.approx(st_plain[0]["t_f"], rel=0.02)  # the first stage: the same 4 layers
    m = 15360 // (128 * 1)
    assert mtp.memory(Layout(128, 1, 16, 1, "selective", 1, 1, True, 1, 64, 15, 1), m)["logits"] == pytest.approx(
        2 * plain.memory(Layout(128, 1, 16, 1, "selective", 1, 1, True, 1, 64, 15, 1), m)["logits"])
