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
    assert {"feasible", "solution", "diagnostics", "no_solution_reason", "inputs"} <= set(data)
    assert data["feasible"] and data["solution"]["dp"] * data["solution"]["tp"] * data["solution"]["pp"] == data["solution"]["G"]
    assert data["inputs"]["model"]["n_layer"] == 40 and data["inputs"]["goal"]["deadline_s"] == 30 * 86400


def test_plan_human_table():
    r = run_lsdt(*BASE)
    assert r.returncode == 0 and "FEASIBLE" in r.stdout and "DP" in r.stdout


def test_fixed_G_and_efficiencies():
    r = run_lsdt(*BASE, "--G", "128", "--eta-compute", "0.30", "--eta-fabric", "0.70", "--json")
    data = json.loads(r.stdout)
    assert data["solution"]["G"] == 128 and data["diagnostics"]["eta_compute"] == 0.30


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
        (BASE + ["--G", "7"], "no valid DP x TP x PP split"),
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
    assert a["solution"] == b["solution"] and a["inputs"] == b["inputs"]


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
