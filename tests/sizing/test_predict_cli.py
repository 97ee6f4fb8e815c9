"""`lsdt predict` through a subprocess: the JSON contract, auto choices, one-line errors."""

from __future__ import annotations

import json

import pytest

from engine.sizing.refine import PREDICT_KEYS
from tests.conftest import run_lsdt

BASE = ["predict", "--model", "gpt3-175b", "--hardware", "a100-80g-sxm", "--gpus", "1024", "--tp", "8", "--pp", "16", "--global-batch", "1536"]


def test_predict_json_contract_exact_keys():
    r = run_lsdt(*BASE, "--micro-batch", "1", "--recompute", "full", "--zero", "0", "--interleave", "2", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert list(data) == list(PREDICT_KEYS)
    chosen = data["chosen"]
    assert {"micro_batch", "recompute", "zero", "interleave"} <= set(chosen)
    assert (chosen["micro_batch"], chosen["recompute"], chosen["zero"], chosen["interleave"]) == (1, "full", 0, 2)
    assert chosen["dp"] == 8 and data["fits"] is True
    b = data["breakdown"]
    for key in ("compute_s", "bubble_s", "tp_comm_s", "dp_comm_s", "pp_comm_s", "exposed_comm_s", "memory_bytes"):
        assert key in b
    assert data["hardware_tflops_per_gpu"] > data["model_tflops_per_gpu"] > 0
    assert 0 < data["mfu"] < 1
    assert data["tokens_per_s_per_gpu"] == pytest.approx(1536 * 2048 / data["step_time_s"] / 1024)


def test_auto_resolves_to_a_fitting_choice_and_human_output():
    r = run_lsdt(*BASE, "--json")
    data = json.loads(r.stdout)
    assert r.returncode == 0 and data["fits"]
    assert data["chosen"]["recompute"] in ("none", "selective", "full") and data["chosen"]["micro_batch"] >= 1
    human = run_lsdt(*BASE)
    assert human.returncode == 0 and "MFU" in human.stdout and "bubble" in human.stdout


def test_eta_compute_override_slows_the_step():
    fast = json.loads(run_lsdt(*BASE, "--micro-batch", "1", "--recompute", "full", "--json").stdout)
    slow = json.loads(run_lsdt(*BASE, "--micro-batch", "1", "--recompute", "full", "--eta-compute", "0.35", "--json").stdout)
    assert slow["step_time_s"] > fast["step_time_s"] and slow["breakdown"]["efficiency"]["eta_gemm"] == 0.35


def test_layout_that_does_not_fit_exits_2_after_printing():
    r = run_lsdt("predict", "--model", "llama3-70b", "--hardware", "h100-sxm", "--gpus", "8", "--tp", "8",
                 "--global-batch", "8", "--micro-batch", "8", "--recompute", "none", "--zero", "0")
    assert r.returncode == 2 and "DOES NOT FIT" in r.stdout
    assert r.stderr.count("\n") == 1 and "does not fit" in r.stderr


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--tp", "3"], "--gpus 1024 is not a multiple"),
        (["--dp", "7"], "--dp 7 does not match"),
        (["--global-batch", "1537"], "--global-batch 1537"),
        (["--interleave", "5"], "--interleave 5"),
        (["--recompute", "some"], "invalid choice"),
        (["--micro-batch", "0"], "--micro-batch"),
        (["--zero", "4"], "invalid choice"),
        (["--eta-compute", "2"], "--eta-compute"),
        (["--calibrate", "/nonexistent/probe.json"], "no such file"),
    ],
)
def test_bad_input_is_one_line_exit_2(extra, words):
    args = list(BASE)
    for flag, value in zip(extra[::2], extra[1::2]):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    r = run_lsdt(*args)
    assert r.returncode == 2, r.stdout
    assert words in r.stderr and r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr


def test_tp_beyond_a_node_is_refused():
    r = run_lsdt("predict", "--model", "gpt3-175b", "--hardware", "a100-80g-sxm", "--gpus", "32", "--tp", "16", "--global-batch", "32")
    assert r.returncode == 2 and "--tp 16" in r.stderr and "a divisor of 8" in r.stderr


def test_tp_straddling_nodes_is_refused():
    r = run_lsdt("predict", "--model", "llama-13b", "--hardware", "a100-80g-sxm", "--gpus", "40", "--tp", "5", "--global-batch", "40")
    assert r.returncode == 2 and "inside one a100-80g-sxm node" in r.stderr


def test_more_gpus_than_a_node_without_a_network_is_refused():
    r = run_lsdt("predict", "--model", "gpt2-124m", "--hardware", "rtx4090", "--gpus", "16", "--global-batch", "64")
    assert r.returncode == 2 and "no inter_node_bw" in r.stderr and r.stderr.count("\n") == 1


def test_seq_flag_changes_the_context():
    base = ["predict", "--model", "gpt2-124m", "--hardware", "h100-sxm", "--gpus", "1", "--global-batch", "8", "--json"]
    short = json.loads(run_lsdt(*base).stdout)
    long = json.loads(run_lsdt(*base, "--seq", "4096").stdout)
    assert long["chosen"]["seq_len"] == 4096 and short["chosen"]["seq_len"] == 1024
    assert long["step_time_s"] > 4 * short["step_time_s"]  # 4x the tokens, and longer attention
