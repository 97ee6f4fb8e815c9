"""`lsdt sparsity` end to end on a real tiny training run: every stage, the artifact contract,
determinism, and the bad-input one-liners."""

from __future__ import annotations

import json
import os
import stat

import pytest

from engine.cli import main
from engine.runtime.sparsity.artifacts import TIMING_COLUMNS, read_csv
from tests.sparsity.conftest import TINY_LAB


def lab(args, capsys):
    try:
        code = main(["sparsity", *args])
    except SystemExit as exc:  # argparse's own usage errors (still one line: engine.cli.OneLineParser)
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def full_run(gpt_run, task_spec, tmp_path_factory):
    out = tmp_path_factory.mktemp("art") / "a"
    code = main(["sparsity", "run", "--model", str(gpt_run), "--tasks", task_spec, "--out", str(out), "--json", *TINY_LAB])
    assert code == 0
    return out


def test_run_writes_every_file_read_only(full_run):
    names = {p.relative_to(full_run).as_posix() for p in full_run.rglob("*") if p.is_file()}
    for f in ("meta.jsonl", "sparsity.csv", "sae.csv", "si_modularity.csv", "si_units.csv", "dynamic_k.csv",
              "sae/0/cfg.json", "sae/0/sae_weights.safetensors", "sae/1/cfg.json", "progress.jsonl"):
        assert f in names, f
    for p in full_run.rglob("*"):
        if p.is_file():
            assert not p.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH), p


def test_csv_columns_and_meta(full_run, gpt_run):
    assert list(read_csv(full_run / "sparsity.csv")[0]) == ["layer", "width", "tokens", "frac", "pr", "dead"]
    assert list(read_csv(full_run / "si_modularity.csv")[0])[:5] == ["layer", "task", "SI", "Q", "n_communities"]
    dk = read_csv(full_run / "dynamic_k.csv")
    assert list(dk[0])[:5] == ["k", "perplexity", "tokens_per_sec", "flops_reduction", "quality_delta"]
    assert [float(r["k"]) for r in dk] == [0.2, 0.5, 1.0]
    assert float(dk[-1]["quality_delta"]) == 0.0 and float(dk[-1]["flops_reduction"]) == 0.0
    assert 0 < float(dk[0]["flops_reduction"]) < 0.8  # only the down projection's share, never 1 - k
    meta = [json.loads(line) for line in (full_run / "meta.jsonl").read_text().splitlines()]
    config = meta[0]
    assert config["kind"] == "config" and config["seed"] == 0
    assert len(config["model"]["weights_sha256"]) == 64
    assert {t["name"] for t in config["tasks"]} == {"prose", "digits", "code"}
    assert all(len(t["sha256"]) == 64 for t in config["tasks"])
    assert config["versions"]["torch"]
    assert [m["stage"] for m in meta if m["kind"] == "stage"] == ["capture", "sae", "si", "dynamic-k"]


def test_sae_files_in_saelens_layout(full_run):
    from safetensors.torch import load_file

    cfg = json.loads((full_run / "sae/0/cfg.json").read_text())
    w = load_file(str(full_run / "sae/0/sae_weights.safetensors"))
    assert set(w) == {"W_enc", "W_dec", "b_enc", "b_dec"}
    assert w["W_enc"].shape == (cfg["d_in"], cfg["d_sae"]) and cfg["d_sae"] == 8 * cfg["d_in"]
    assert w["W_dec"].shape == (cfg["d_sae"], cfg["d_in"])
    runs = list((full_run / "sae/0/runs").iterdir())
    assert len(runs) == 2 and all((r / "metrics.jsonl").is_file() for r in runs)
    line = json.loads((runs[0] / "metrics.jsonl").read_text().splitlines()[0])
    assert {"step", "val_mse", "l0", "explained_variance"} <= set(line)


def test_same_seed_gives_identical_csvs(full_run, gpt_run, task_spec, tmp_path, capsys):
    again = tmp_path / "b"
    assert lab(["run", "--model", str(gpt_run), "--tasks", task_spec, "--out", str(again), *TINY_LAB], capsys)[0] == 0
    for name in ("sparsity.csv", "sae.csv", "si_modularity.csv", "si_units.csv"):
        assert (full_run / name).read_bytes() == (again / name).read_bytes(), name
    a, b = read_csv(full_run / "dynamic_k.csv"), read_csv(again / "dynamic_k.csv")
    strip = lambda rows: [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in rows]
    assert strip(a) == strip(b)


def test_single_stage_and_text_output(gpt_run, task_spec, tmp_path, capsys):
    code, out, _ = lab(["capture", "--model", str(gpt_run), "--tasks", task_spec, "--out", str(tmp_path / "c"),
                        "--layers", "0,1", "--save-acts", "100", *TINY_LAB[:6]], capsys)
    assert code == 0 and "frac" in out
    import numpy as np

    acts = np.load(tmp_path / "c/acts/0.npy")
    assert acts.shape == (100, 128)
    assert sorted(os.listdir(tmp_path / "c")) == ["acts", "meta.jsonl", "progress.jsonl", "sparsity.csv"]


def test_si_reads_a_parent_sae(full_run, gpt_run, task_spec, tmp_path, capsys):
    out = tmp_path / "si"
    code, _, _ = lab(["si", "--model", str(gpt_run), "--tasks", task_spec, "--out", str(out), "--sae-from", str(full_run),
                      *TINY_LAB[:6]], capsys)
    assert code == 0
    units = {r["unit"] for r in read_csv(out / "si_modularity.csv")}
    assert units == {"neuron", "feature"}
    meta = [json.loads(line) for line in (out / "meta.jsonl").read_text().splitlines()]
    assert any(m["kind"] == "parent" and m["path"] == str(full_run) for m in meta)


# ------------------------------------------------------------------ bad input: one line, exit 2, nothing written


def _bad(args, capsys, tmp_path, expect: str):
    out = tmp_path / "never"
    code, stdout, err = lab([*args, "--out", str(out)] if "--out" not in args else args, capsys)
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert expect in err, err
    assert not out.exists()
    return err


def test_missing_checkpoint(tmp_path, capsys, task_spec):
    _bad(["capture", "--model", str(tmp_path / "nope"), "--tasks", task_spec], capsys, tmp_path, "no such file or directory")


def test_corrupt_checkpoint(tmp_path, capsys, task_spec):
    bad = tmp_path / "step_00000001.pt"
    bad.write_bytes(b"not a checkpoint")
    _bad(["capture", "--model", str(bad), "--tasks", task_spec], capsys, tmp_path, "not a usable checkpoint")


def test_hf_dir_without_weights(tmp_path, capsys, task_spec):
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2, "n_embd": 32, "n_head": 2, "vocab_size": 300}))
    _bad(["capture", "--model", str(hf), "--tasks", task_spec], capsys, tmp_path, "config.json but no weights")


def test_unknown_layer(gpt_run, tmp_path, capsys, task_spec):
    err = _bad(["capture", "--model", str(gpt_run), "--tasks", task_spec, "--layers", "7"], capsys, tmp_path, "layer '7'")
    assert "accepted" in err and "0, 1" in err


@pytest.mark.parametrize("k", ["0", "1.5", "-0.2", "abc"])
def test_k_outside_unit_interval(gpt_run, tmp_path, capsys, task_spec, k):
    _bad(["dynamic-k", "--model", str(gpt_run), "--tasks", task_spec, f"--k=0.5,{k}"], capsys, tmp_path, "accepted")


def test_task_with_too_few_tokens(gpt_run, tmp_path, capsys, task_spec):
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("too short")
    _bad(["capture", "--model", str(gpt_run), "--tasks", f"{task_spec},tiny={tiny}", "--seq", "32"], capsys, tmp_path,
         "task tiny: 9 tokens, fewer than one window")


def test_existing_artifact_dir_untouched(gpt_run, tmp_path, capsys, task_spec):
    out = tmp_path / "exists"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = lab(["capture", "--model", str(gpt_run), "--tasks", task_spec, "--out", str(out)], capsys)
    assert code == 2 and "already exists" in err and err.count("\n") == 1
    assert sorted(os.listdir(out)) == ["keep.txt"]


def test_too_little_disk(gpt_run, tmp_path, capsys, task_spec, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    _bad(["capture", "--model", str(gpt_run), "--tasks", task_spec], capsys, tmp_path, "MB free on its disk")


def test_bad_tasks_manifest(gpt_run, tmp_path, capsys):
    m = tmp_path / "tasks.jsonl"
    m.write_text('{"task": "a", "text": "x"}\nnot json\n')
    _bad(["capture", "--model", str(gpt_run), "--tasks", str(m)], capsys, tmp_path, "tasks.jsonl:2: not JSON")


def test_non_finite_threshold(gpt_run, tmp_path, capsys, task_spec):
    _bad(["capture", "--model", str(gpt_run), "--tasks", task_spec, "--threshold", "nan"], capsys, tmp_path, "a finite number")


@pytest.mark.parametrize("stage", ["dynamic-k", "run"])
def test_gather_mode_on_cpu_says_it_needs_cuda(gpt_run, tmp_path, capsys, task_spec, stage):
    err = _bad([stage, "--model", str(gpt_run), "--tasks", task_spec, "--mode", "gather", "--device", "cpu"], capsys, tmp_path,
               "--mode gather: needs a CUDA GPU (--device cuda), got --device cpu")
    assert "accepted here: --mode mask" in err
