"""`lsdt plan` through a subprocess: JSON contract, exit codes, one-line errors, save/load round trip."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import REPO, run_lsdt

BASE = ["plan", "--model", "llama-13b", "--hardware", "a100-80g-sxm"]


def test_plan_json_contract():
    r = run_lsdt(*BASE, "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert {"feasible", "answer", "seed_model", "refined", "inputs"} <= set(data)
    a = data["answer"]
    assert data["feasible"] and a["model"] == "engineering" and a["dp"] * a["tp"] * a["pp"] == a["gpus"]
    assert a == {**a, "gpus": data["refined"]["layouts"][0]["gpus"], "step_time_s": data["refined"]["layouts"][0]["step_time_s"]}
    seed = data["seed_model"]
    assert {"feasible", "solution", "diagnostics", "no_solution_reason"} <= set(seed)
    assert data["inputs"]["model"]["n_layer"] == 40 and data["inputs"]["goal"]["deadline_s"] == 30 * 86400


def test_plan_human_table():
    r = run_lsdt(*BASE)
    assert r.returncode == 0 and "FEASIBLE" in r.stdout and "DP" in r.stdout


def test_fixed_G_and_efficiencies():
    r = run_lsdt(*BASE, "--G", "128", "--eta-compute", "0.30", "--eta-fabric", "0.70", "--json")
    data = json.loads(r.stdout)
    assert data["answer"]["gpus"] == 128 and data["seed_model"]["solution"]["G"] == 128
    assert data["seed_model"]["diagnostics"]["eta_compute"] == 0.30


def test_unreachable_goal_exits_2_with_one_line():
    r = run_lsdt(*BASE, "--G", "8")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "no solution" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "args, words",
    [
        (["plan", "--model", "nope", "--hardware", "h100-sxm"], "known:"),
        (["plan", "--model", "llama-7b", "--hardware", "tpu"], "known:"),
        (BASE + ["--G", "0"], "--G"),
        (BASE + ["--tokens", "nan"], "--tokens"),
        (BASE + ["--tokens", "-1"], "--tokens"),
        (BASE + ["--eta-compute", "1.5"], "--eta-compute"),
        (BASE + ["--hours", "inf"], "--hours"),
        (BASE + ["--G", "4099"], "layout: G = 4,099 has no valid DP x TP x PP x CP x EP split"),
        (["plan", "--model", "llama-7b"], "--hardware is required"),
        (BASE + ["--load", "/nonexistent/plan.toml"], "no such file"),
        (BASE + ["--frobnicate"], "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, words):
    r = run_lsdt(*args)
    assert r.returncode == 2, r.stdout
    assert words in r.stderr and r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr


def test_save_load_round_trip_identical(tmp_path):
    path = tmp_path / "p.toml"
    first = run_lsdt(*BASE, "--G", "128", "--tokens", "500B", "--days", "45", "--save", str(path), "--json")
    assert first.returncode == 0 and path.is_file()
    text = path.read_text()
    assert "[model]" in text and "n_layer = 40" in text and "lsdt_version" in text and "[result]" in text
    again = run_lsdt("plan", "--load", str(path), "--json")
    a, b = json.loads(first.stdout), json.loads(again.stdout)
    assert a["answer"] == b["answer"] and a["seed_model"]["solution"] == b["seed_model"]["solution"] and a["inputs"] == b["inputs"]
    assert "[answer]" in text and 'model = "engineering"' in text


def test_bad_plan_file_leaves_nothing(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "cluster-plan"\n[model]\nname = "x"\n')
    r = run_lsdt("plan", "--load", str(bad))
    assert r.returncode == 2 and str(bad) in r.stderr
    out = tmp_path / "out.toml"
    r = run_lsdt(*BASE, "--tokens", "zero", "--save", str(out))
    assert r.returncode == 2 and not out.exists() and not list(tmp_path.glob(".out.toml*"))


def test_examples_13b_reproduces_the_seed_examples():
    for extra in ([], ["--G", "128"], ["--eta-compute", "0.30", "--eta-fabric", "0.70"]):
        r = subprocess.run([sys.executable, str(REPO / "examples" / "13b.py"), *extra], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert "llama-13b" in r.stdout and "DP" in r.stdout


def test_import_sizing_pulls_no_torch_or_textual():
    code = (
        "import sys, engine.sizing.design, engine.sizing.physics, engine.sizing.counts, engine.sizing.shapes, engine.plan, engine.cli;"
        "print(' '.join(m for m in ('torch', 'textual', 'pynvml', 'numpy') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout


def _json(*args):
    r = run_lsdt(*args, "--json")
    assert r.returncode in (0, 2), r.stderr
    return json.loads(r.stdout)


L3 = ["plan", "--model", "llama3-8b", "--hardware", "h100-sxm"]


def test_one_answer_engineering_by_default_seed_with_the_flag():
    """The headline is the engineering model's (far fewer than the seed's G 32 for llama3-8b on
    H100s); the seed model's G 32 is shown as the seed model, and --seed-model makes it the answer."""
    r = run_lsdt(*L3)
    assert r.returncode == 0
    result = next(line for line in r.stdout.splitlines() if line.lstrip().startswith("result"))
    answer = _json(*L3)["answer"]
    assert answer["model"] == "engineering" and answer["gpus"] < 32
    assert f"G = {answer['gpus']:,} " in result and "mb" in result and "ZeRO" in result
    assert "seed      G = 32" in r.stdout and "--seed-model" in r.stdout
    seed = _json(*L3, "--seed-model")
    assert seed["answer"]["model"] == "seed" and seed["answer"]["gpus"] == 32 and "refined" not in seed


def test_documented_defaults_change_nothing():
    """--eta-compute 0.4 (the seed's default) once set eta_gemm too and moved G 8 -> 16."""
    plain = _json(*L3)["answer"]
    gemm = _json("plan", "--model", "llama3-8b", "--hardware", "h100-sxm", "--json")["refined"]["efficiency"]["eta_gemm"]
    for extra in (["--eta-compute", "0.4"], ["--eta-fabric", "0.7"], ["--eta-gemm", str(gemm)], ["--days", "30"],
                  ["--objective", "gpus"], ["--seq", "8192"]):
        assert _json(*L3, *extra)["answer"] == plain, extra


def test_fixed_G_headline_agrees_with_the_layouts_and_exit_code():
    """Fixed G 16: the seed model has no solution (memory) but the engineering model lists
    feasible layouts; the answer, the table and the exit code now agree."""
    r = run_lsdt(*L3, "--G", "16")
    assert r.returncode == 0 and "FEASIBLE  G = 16" in r.stdout and "seed      no solution (memory)" in r.stdout


def test_goal_sanity_names_the_real_reason():
    r = run_lsdt(*L3, "--tokens", "21")
    assert r.returncode == 2 and "tokens = 21 is less than one global batch" in r.stderr and r.stderr.count("\n") == 1
    # 4099 is prime, above the 512-sequence batch and the 32 layers: no split at all (161 = 7 x 23
    # has one since pipelines may split unevenly and the batch may round down to a multiple of DP)
    r = run_lsdt(*L3, "--G", "4099")
    assert r.returncode == 2 and "layout: G = 4,099 has no valid DP x TP x PP x CP x EP split" in r.stderr
    assert "memory" not in r.stderr


def test_seq_price_and_cost():
    short = _json(*L3, "--seq", "2048", "--price-per-gpu-hour", "2.5")
    a = short["answer"]
    assert short["inputs"]["model"]["seq_len"] == 2048 and short["seed_model"]["diagnostics"]["physics"]["global_batch_seqs"] == 2048
    assert a["price_per_gpu_hour"] == 2.5 and a["cost_usd"] == pytest.approx(a["gpu_hours"] * 2.5)
    listed = _json(*L3)["answer"]  # h100-sxm ships a dated list price
    assert listed["price_per_gpu_hour"] == pytest.approx(4.176) and listed["cost_usd"] > 0
    none = run_lsdt("plan", "--model", "llama3-8b", "--hardware", "mi300x")
    assert "cost n/a" in none.stdout


def test_objective_cost_and_time_never_lose_to_fewest_gpus():
    gpus = _json(*L3)["answer"]
    cost = _json(*L3, "--objective", "cost")["answer"]
    fast = _json(*L3, "--objective", "time")["answer"]
    assert cost["objective"] == "cost" and cost["gpu_hours"] <= gpus["gpu_hours"]
    assert fast["wall_time_s"] < gpus["wall_time_s"] and fast["gpus"] > gpus["gpus"]


def test_saved_plan_keeps_objective_and_price_and_old_plans_load(tmp_path):
    path = tmp_path / "p.toml"
    r = run_lsdt(*L3, "--objective", "cost", "--price-per-gpu-hour", "2", "--save", str(path))
    assert r.returncode == 0
    again = _json("plan", "--load", str(path))
    assert again["inputs"]["objective"] == "cost" and again["answer"]["price_per_gpu_hour"] == 2
    old = REPO / "tests" / "sizing" / "data" / "plan-before-answer.toml"  # saved before [answer] existed
    assert run_lsdt("plan", "--load", str(old)).returncode == 0
    bad = tmp_path / "bad.toml"
    bad.write_text(path.read_text().replace('objective = "cost"', 'objective = "cheap"'))
    r = run_lsdt("plan", "--load", str(bad))
    assert r.returncode == 2 and "objective = 'cheap'" in r.stderr and r.stderr.count("\n") == 1
