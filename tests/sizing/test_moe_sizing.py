"""MoE sizing: component counts, phase arithmetic, INT8 alignment, seed comparison, CLI contract."""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import sys
import types

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import UserError
from engine.sizing import moe as M
from engine.sizing.counts import param_counts
from engine.specs import load_hardware, load_model, model_from_dict
from tests.conftest import run_lsdt

S7 = load_model("s7-moe-140m")
A100 = load_hardware("a100-40g-sxm")
BLOCK = 4 * 512 * 512 + 2 * 512 * 2048  # 3,145,728


def test_components_hand_values():
    r = M.size_moe(S7, A100)
    by = {c["name"]: c for c in r["components"]}
    assert by["embedding (tied)"]["params"] == 36864 * 512 == 18_874_368
    assert by["trunk (6 layers)"]["params"] == 6 * BLOCK
    assert by["expert 0 (code, 8 layers)"]["params"] == 8 * BLOCK
    assert by["router"]["params"] == 512 * 4
    assert r["total_params"] == param_counts(S7).total == 18_874_368 + 6 * BLOCK + 4 * 8 * BLOCK + 2048
    assert by["embedding (tied)"]["fp32_bytes"] == 4 * 18_874_368
    # INT8: one byte per weight + one fp32 scale per output row (per token row for the embedding)
    assert by["embedding (tied)"]["int8_bytes"] == 18_874_368 + 4 * 36864


def test_phase_arithmetic():
    r = M.size_moe(S7, A100, mfu=0.4)
    p1, p2, p3 = r["phases"]
    fpt1 = 6 * (6 * BLOCK + 36864 * 512) + 12 * 6 * 512 * 2048  # trunk + head matmuls, attention
    assert p1["flops_per_token"] == fpt1
    assert p1["gpu_hours"] == pytest.approx(50e9 * fpt1 / (312e12 * 0.4) / 3600)
    assert p1["wall_hours"] == pytest.approx(p1["gpu_hours"] / 8)
    # phase 2: trunk forward (2 x trunk + 4 x attention ctx) + expert training + head without weight grad (4 x V d)
    fpt2 = 2 * 6 * BLOCK + 4 * 6 * 512 * 2048 + 6 * 8 * BLOCK + 12 * 8 * 512 * 2048 + 4 * 36864 * 512
    assert p2["flops_per_token"] == fpt2
    assert p2["gpu_hours"] == pytest.approx(sum(x["gpu_hours"] for x in p2["experts"]))
    assert p2["wall_hours"] == max(x["wall_hours"] for x in p2["experts"]) == pytest.approx(p2["experts"][0]["wall_hours"])
    assert p2["gpus"] == 16 and [x["tokens"] for x in p2["experts"]] == list(M.EXPERT_TOKENS)
    assert p3["tokens"] == 4096 * 4 * 2048 * 2
    assert p1["domain_tokens"] == {"code": 17.5e9, "math": 12.5e9, "reasoning": 10e9, "general": 10e9}
    assert r["total_gpu_hours"] == pytest.approx(p1["gpu_hours"] + p2["gpu_hours"] + p3["gpu_hours"])
    assert r["wall_hours"] == pytest.approx(p1["wall_hours"] + p2["wall_hours"] + p3["wall_hours"])
    assert r["cost_usd"] == pytest.approx(r["total_gpu_hours"] * 2.5) and r["price_source"].startswith("seed")
    for p in r["phases"]:
        assert p["memory_per_gpu_bytes"] <= A100.memory_bytes and p["fits"]
    # phase 2 holds the frozen trunk (4 B/param), trains only the expert (16 B/param), and keeps bf16
    # autocast copies (2 B) of every matmul weight on the path: trunk, expert, head
    assert p2["state_bytes"] == 4 * (18_874_368 + 6 * BLOCK) + 16 * 8 * BLOCK + 2 * (6 * BLOCK + 8 * BLOCK + 18_874_368)
    assert p1["state_bytes"] == 16 * (18_874_368 + 6 * BLOCK) + 2 * (6 * BLOCK + 18_874_368)


def test_price_precedence():
    assert M.size_moe(S7, A100, price_per_gpu_hour=1.0)["price_source"] == "flag"
    priced = A100.with_(price_per_hour=3.0)
    r = M.size_moe(S7, priced)
    assert r["price_per_gpu_hour"] == 3.0 and r["cost_usd"] == pytest.approx(3.0 * r["total_gpu_hours"])


def test_layout_alignment_and_totals():
    lay = M.size_moe(S7, A100)["layout"]
    assert lay["alignment_bytes"] == 32 and lay["expert_layers"] == 8
    assert [t["tensor"] for t in lay["expert_layer"]] == [
        "attn.q.weight", "attn.k.weight", "attn.v.weight", "attn.o.weight", "mlp.up.weight", "mlp.down.weight"]
    assert sum(t["numel"] for t in lay["expert_layer"]) == BLOCK
    assert lay["expert_layer_bytes"] == BLOCK + 4 * (4 * 512 + 2048 + 512)
    assert lay["total_stored_bytes"] == sum(a["stored_bytes"] for a in lay["artifacts"])
    for t in lay["expert_layer"]:
        assert t["int8_bytes"] % 32 == 0 and t["scale_bytes"] % 32 == 0


def test_odd_shapes_get_padding():
    odd = model_from_dict({"name": "odd", "n_layer": 3, "trunk_layers": 1, "d_model": 100, "n_head": 4, "d_ff": 300,
                           "vocab_size": 1001, "seq_len": 256, "n_experts": 3, "experts_per_token": 1, "tie_embeddings": True})
    r = M.size_moe(odd, A100, expert_tokens=[1e9, 1e9, 1e9])
    q = r["layout"]["expert_layer"][0]
    assert q["numel"] == 10_000 and q["int8_bytes"] == 10_016 and q["scale_bytes"] == 416 and q["padding_bytes"] == 16 + 16
    assert r["total_params"] == param_counts(odd).total
    assert r["seed_comparison"] == []  # only the seed's own model is compared with the seed
    assert [x["domain"] for x in r["phases"][1]["experts"]] == ["expert 0", "expert 1", "expert 2"]


@given(st.integers(0, 10**9))
def test_aligned_rule(n):
    s = M.aligned(n)
    assert s % 32 == 0 and n <= s < n + 32


def test_seed_comparison_flags_contradictions():
    items = {i["item"]: i for i in M.size_moe(S7, A100)["seed_comparison"]}
    trunk = items["trunk params (6 layers)"]
    assert trunk["seed"] == 2e6 and trunk["computed"] == 6 * BLOCK and trunk["ratio"] == pytest.approx(9.437, rel=1e-3)
    own = items["phase-1 GPU-hours by 6ND on the seed's own 83 MB model"]
    assert own["computed"] == pytest.approx(6 * 83e6 / 4 * 50e9 / (312e12 * 0.4) / 3600) and own["ratio"] < 0.01
    assert items["wall-clock from the seed's own phase figures"]["computed"] == pytest.approx(12000 / 8 + 150 + 200 / 4)
    for i in items.values():
        assert i["ratio"] == pytest.approx(i["computed"] / i["seed"])


def test_bad_models_and_values():
    with pytest.raises(UserError, match="trunk_layers > 0"):
        M.size_moe(load_model("llama-7b"), A100)
    with pytest.raises(UserError, match="4 experts"):
        M.size_moe(S7, A100, expert_tokens=[1e9])
    with pytest.raises(UserError, match="mfu"):
        M.size_moe(S7, A100, mfu=1.5)


# --------------------------------------------------------------------------- CLI

MOE_KEYS = {"components", "total_params", "phases", "total_gpu_hours", "cost_usd", "layout", "seed_comparison"}


def test_cli_json_contract():
    r = run_lsdt("moe", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert MOE_KEYS <= set(d)
    for c in d["components"]:
        assert {"name", "params", "fp32_bytes", "int8_bytes"} <= set(c)
    for p in d["phases"]:
        assert {"name", "gpus", "gpu_hours", "wall_hours", "memory_per_gpu_bytes"} <= set(p)


def test_cli_table_and_flags():
    r = run_lsdt("moe", "--hardware", "h100-sxm", "--price-per-gpu-hour", "4", "--expert-tokens", "1e9,1e9,1e9,1e9")
    assert r.returncode == 0, r.stderr
    assert "phase 2" in r.stdout and "$" in r.stdout and "seed 002 vs computed" in r.stdout


@pytest.mark.parametrize("args, needle", [
    (["--model", "llama-7b"], "trunk_layers"),
    (["--hardware", "nope"], "unknown hardware profile"),
    (["--expert-tokens", "1e9"], "4 experts"),
    (["--expert-tokens", "x"], "token counts"),
    (["--price-per-gpu-hour", "-1"], "accepted"),
    (["--model", "/no/such.toml"], "no such file"),
])
def test_cli_errors_one_line(args, needle):
    r = run_lsdt("moe", *args)
    assert r.returncode == 2 and needle in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_train_pipeline_actions_delegate_when_module_exists(monkeypatch, capsys):
    calls = []
    fake = types.ModuleType("engine.commands.moe_run")
    fake.__spec__ = importlib.machinery.ModuleSpec("engine.commands.moe_run", None)
    fake.add_train_arguments = lambda p: p.add_argument("--steps", type=int, default=1)
    fake.add_pipeline_arguments = lambda p: p.add_argument("--out", default="x")
    fake.run_train = lambda args: calls.append(("train", args.steps)) or 0
    fake.run_pipeline = lambda args: calls.append(("pipeline", args.out)) or 0
    monkeypatch.setitem(sys.modules, "engine.commands.moe_run", fake)
    from engine import cli

    assert cli.main(["moe", "train", "--steps", "5"]) == 0
    assert cli.main(["moe", "pipeline", "--out", "d"]) == 0
    assert calls == [("train", 5), ("pipeline", "d")]
    assert cli.main(["moe", "--json"]) == 0  # the bare command stays the sizing
    assert "seed_comparison" in json.loads(capsys.readouterr().out)


def test_no_actions_without_run_module(monkeypatch):
    from engine.commands import moe as cmd

    monkeypatch.setattr(cmd, "RUN_MODULE", "engine.commands.no_such_module_here")
    p = argparse.ArgumentParser()
    cmd.add_arguments(p)
    args = p.parse_args(["--json"])
    assert getattr(args, "moe_action", None) is None
