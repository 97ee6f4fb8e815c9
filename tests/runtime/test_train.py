"""The training loop end to end (CPU, tiny model): schema, determinism, errors, curriculum, time budget."""

from __future__ import annotations

import math
import random

import pytest
import torch

from engine.cli import main as cli_main
from engine.runtime.train import rundir
from engine.runtime.train.loop import main as train_main
from tests.conftest import run_lsdt
from tests.runtime.train_helpers import base_args, make_inputs, read_jsonl, run_train


def _losses(run_dir):
    return [m["loss"] for m in rundir.read_metrics(run_dir)]


def test_lsdt_train_writes_the_run_directory(tmp_path):
    r = run_lsdt("train", *base_args(tmp_path), timeout=120)
    assert r.returncode == 0, r.stderr
    run = tmp_path / "run"
    lines = [l for l in r.stdout.splitlines() if l.startswith("step ")]
    assert len(lines) == 12 and all(k in lines[-1] for k in ("loss", "lr", "tok/s", "mfu n/a", "eta"))
    metrics = rundir.read_metrics(run)
    assert [m["step"] for m in metrics] == list(range(1, 13))
    for m in metrics:
        assert set(rundir.METRIC_KEYS) <= set(m)
        assert m["mfu"] is None and m["vram_alloc_bytes"] is None  # CPU: unknown, never guessed
    assert [m["step"] for m in metrics if "val_loss" in m] == [6, 12]
    assert metrics[-1]["tokens"] == 12 * 4 * 32
    kinds = [e["event"] for e in rundir.read_events(run)]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("eval") == 2 and kinds.count("checkpoint") == 3
    assert rundir.read_events(run)[-1]["reason"] == "completed"
    assert rundir.run_status(run).state == "ended"
    assert [p.name for p in rundir.list_checkpoints(run)] == ["step_00000004.pt", "step_00000008.pt", "step_00000012.pt"]
    cfg = rundir.read_config(run)
    assert cfg["model"]["name"] == "test-tiny" and cfg["grad_accum"] == 1 and cfg["env"]["params"] > 0
    assert (run / "metrics.csv").read_text().startswith("step,time,loss,lr,tokens,tok_per_s,mfu,")
    assert metrics[-1]["loss"] < metrics[0]["loss"]


def test_same_seed_gives_bitwise_identical_losses(tmp_path):
    assert train_main(base_args(tmp_path, "a", **{"--steps": 8})) == 0
    assert train_main(base_args(tmp_path, "b", **{"--steps": 8})) == 0
    a, b = _losses(tmp_path / "a"), _losses(tmp_path / "b")
    assert len(a) == 8 and a == b
    assert train_main(base_args(tmp_path, "c", **{"--steps": 8, "--seed": 7})) == 0
    assert _losses(tmp_path / "c") != a


def test_two_seeds_end_within_one_percent(tmp_path):
    """Bytes drawn i.i.d. from a Zipf law over 16 letters: the best possible loss is its entropy H.

    Both seeds must reach H (within 2 %) and each other (within 1 %): seed-insensitive convergence.
    """
    letters = "abcdefghijklmnop"
    weights = [1 / (i + 1) for i in range(len(letters))]
    total = sum(weights)
    entropy = -sum(w / total * math.log(w / total) for w in weights)
    corpus = tmp_path / "zipf.txt"
    corpus.write_text("".join(random.Random(0).choices(letters, weights=weights, k=40000)))
    finals = []
    for seed in (1, 2):
        args = base_args(tmp_path, f"s{seed}", **{"--steps": 100, "--seed": seed, "--log-every": 50, "--eval-every": 100,
                                                 "--eval-batches": 16, "--ckpt-every": 100, "--lr": 1e-2, "--warmup": 10,
                                                 "--data": corpus})
        assert train_main(args) == 0
        finals.append(rundir.read_metrics(tmp_path / f"s{seed}")[-1]["val_loss"])
    assert abs(finals[0] - finals[1]) / min(finals) < 0.01, finals
    assert all(abs(f - entropy) / entropy < 0.02 for f in finals), (finals, entropy)


def test_grad_accum_and_batch_tokens(tmp_path):
    assert train_main(base_args(tmp_path, "acc", **{"--steps": 3, "--batch-tokens": 4 * 32 * 3})) == 0
    assert rundir.read_config(tmp_path / "acc")["grad_accum"] == 3
    assert rundir.read_metrics(tmp_path / "acc")[-1]["tokens"] == 3 * 3 * 4 * 32


def test_curriculum_changes_sequence_length_at_constant_tokens(tmp_path):
    args = base_args(tmp_path, "cur", **{"--steps": 8, "--curriculum": "16:0.5,32:0.5", "--eval-every": 100})
    assert train_main(args) == 0
    m = rundir.read_metrics(tmp_path / "cur")
    assert [r["seq_len"] for r in m] == [16] * 4 + [32] * 4
    assert [r["device_batch"] for r in m] == [8] * 4 + [4] * 4


def test_hours_budget_ends_on_time(tmp_path):
    args = base_args(tmp_path, "h", **{"--steps": None, "--hours": 2 / 3600, "--eval-every": 1000, "--ckpt-every": 1000})
    assert train_main(args) == 0
    end = rundir.read_events(tmp_path / "h")[-1]
    assert end["reason"] == "time_limit" and 2.0 <= end["elapsed_s"] < 10
    assert rundir.list_checkpoints(tmp_path / "h")  # the final checkpoint


def test_nan_loss_ends_with_an_error_and_keeps_the_last_good_checkpoint(tmp_path):
    args = base_args(tmp_path, "nan", **{"--lr": 1e30, "--warmup": 0, "--grad-clip": 0, "--ckpt-every": 1, "--steps": 30})
    assert train_main(args) == 3
    events = rundir.read_events(tmp_path / "nan")
    err = [e for e in events if e["event"] == "error"][0]
    assert "loss is nan" in err["message"] or "loss is inf" in err["message"]
    assert events[-1]["event"] == "end" and events[-1]["reason"] == "nan_loss"
    ckpts = rundir.list_checkpoints(tmp_path / "nan")
    assert ckpts and int(ckpts[-1].stem.split("_")[1]) < err["step"]
    assert rundir.run_status(tmp_path / "nan").state == "failed"


@pytest.mark.parametrize("extra, message", [
    ({"--data": "/nonexistent/corpus.txt"}, "no such file or directory"),
    ({"--seq": 100000}, "longer than the data"),
    ({"--batch-tokens": 1000}, "not a multiple of"),
    ({"--curriculum": "16:0.5,32:0.6"}, "sum to"),
    ({"--warmup": 50}, "not shorter than --steps"),
    ({"--device": "tpu"}, "accepted: auto | cuda | cpu"),
])
def test_bad_input_is_one_clear_line(tmp_path, capsys, extra, message):
    try:
        code = cli_main(["train", *base_args(tmp_path, **extra)])  # the CLI's own entry point, in-process (fast)
    except SystemExit as exc:  # a flag's own type refused it (argparse exits 2 with one line)
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_empty_data_and_cuda_without_gpu(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert cli_main(["train", *base_args(tmp_path, **{"--data": empty})]) == 2
    assert "empty" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert cli_main(["train", *base_args(tmp_path, "g", **{"--device": "cuda"})]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err


def test_run_dir_reuse_and_resume_errors(tmp_path):
    assert train_main(base_args(tmp_path, **{"--steps": 4})) == 0
    r = run_train(*base_args(tmp_path, **{"--steps": 4}))
    assert r.returncode == 2 and "already holds a run" in r.stderr
    r = run_train(*base_args(tmp_path, **{"--resume": True, "--lr": 0.5}))
    assert r.returncode == 2 and "--lr cannot change on --resume" in r.stderr
    r = run_train("--resume")
    assert r.returncode == 2 and "--resume needs --run-dir" in r.stderr
    model, _, _ = make_inputs(tmp_path)
    r = run_train("--resume", "--run-dir", str(tmp_path / "nothing-here"))
    assert r.returncode == 2 and "no such file" in r.stderr


def test_resume_extends_a_finished_run(tmp_path):
    args = base_args(tmp_path, **{"--steps": 8})
    assert train_main(args) == 0
    assert train_main(["--run-dir", str(tmp_path / "run"), "--resume", "--steps", "12"]) == 0
    m = rundir.read_metrics(tmp_path / "run")
    assert [r["step"] for r in m] == list(range(1, 13))
    ev = [e["event"] for e in rundir.read_events(tmp_path / "run")]
    assert ev.count("start") == 2 and ev.count("resume") == 1 and ev.count("end") == 2
