"""`lsdt train` bad input: refused before the run directory exists, in one line naming the flag and
what is accepted, exit 2; a failure inside a run is reported as itself, not as a missing file."""

from __future__ import annotations

import pytest

from engine.runtime.train import rundir
from engine.runtime.train.loop import main as train_main
from tests.conftest import run_lsdt
from tests.runtime.train_helpers import base_args, make_inputs


@pytest.mark.parametrize("over, words", [
    # --seed -1 started a run that died in numpy's SeedSequence ("expected non-negative integer")
    ({"--seed": -1}, ["--seed", "[0, 2^63)"]),
    ({"--seed": 2**64}, ["--seed", "[0, 2^63)"]),
    # a vocabulary below the byte tokenizer's 256 ids failed inside the first step, reported as
    # "metrics.jsonl: no such file (not a run directory?)", and left a run directory behind
    ({"--vocab": 1}, ["--vocab 1", "at least 256"]),
    # an oversized model raised a torch allocator traceback (exit 1)
    ({"--model": None, "--depth": 2000}, ["model d2000", "GB free", "smaller --depth"]),
    # deeper than any model LSDT sizes: per-layer lists of 10^12 entries ran the machine out of memory
    ({"--model": None, "--depth": 10**12}, ["--depth", "accepted: an integer in [1, 2,147,483,647]"]),
    ({"--model": None, "--depth": 10**6}, ["model d1000000: n_layer", "accepted: 1..10,000 layers"]),
    # a model the trainer cannot build (odd head_dim for RoPE) left a run directory behind
    ({"--model": None, "--depth": 2, "--head-dim": 7}, ["head_dim = 7"]),
    ({"--hours": 1e308, "--steps": None}, ["--hours", "1e+06"]),
    # `type=float` let inf through: the run trained, and its config.toml could then not be resumed
    ({"--grad-clip": "inf"}, ["--grad-clip", "accepted: a finite number"]),
    ({"--weight-decay": "1e400"}, ["--weight-decay", "accepted: a finite number"]),
    # 1e308 on an integer flag: a traceback (--threads, --device-batch, which also left a run dir),
    # a silent hang (--grad-accum, --batch-tokens) or an accepted run (--steps); docs/bad-input.md
    ({"--threads": "1e308"}, ["--threads", "accepted: an integer in [1, 1,024]"]),
    ({"--device-batch": "1e308"}, ["--device-batch", "accepted: an integer in [1, 2,147,483,647]"]),
    ({"--grad-accum": "1e308"}, ["--grad-accum", "accepted: an integer in [1, 10,000]"]),
    ({"--batch-tokens": "1e308"}, ["--batch-tokens", "accepted: an integer in [1, 2,147,483,647]"]),
    ({"--batch-tokens": "2e9"}, ["--batch-tokens 2000000000", "accepted: at most 10,000 micro-batches"]),
    ({"--steps": "1e308"}, ["--steps", "accepted: an integer in [1, 1,000,000,000]"]),
    # integer fields took "161." as 161
    ({"--steps": "161."}, ["--steps", "'161.'", "accepted: an integer"]),
    ({"--eval-every": "1.5"}, ["--eval-every", "'1.5'", "accepted: an integer"]),
    # keeping FSDP's gathered weights means nothing without FSDP
    ({"--fsdp-keep-weights": True}, ["--fsdp-keep-weights", "add --fsdp"]),
])
def test_bad_flags_are_one_line_and_leave_no_run_dir(tmp_path, over, words):
    args = base_args(tmp_path, **over)
    r = run_lsdt("train", *[str(a) for a in args], timeout=60)
    assert r.returncode == 2, r.stderr[-1500:]
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    for w in words:
        assert w in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()


def test_model_file_with_a_small_vocab_names_the_file(tmp_path):
    model, _, _ = make_inputs(tmp_path)
    small = tmp_path / "small.toml"
    small.write_text(model.read_text().replace("vocab_size = 256", "vocab_size = 100"))
    r = run_lsdt("train", *[str(a) for a in base_args(tmp_path, **{"--model": small})], timeout=60)
    assert r.returncode == 2 and f"--model {small}: vocab_size = 100" in r.stderr, r.stderr


def test_an_error_before_the_first_log_line_is_reported_as_itself(tmp_path, monkeypatch):
    """The end-of-run CSV export raised "metrics.jsonl: no such file" when a run failed before its
    first metrics line, replacing the real error."""

    class Boom(RuntimeError):
        pass

    def explode(self, *a, **k):
        raise Boom("injected fault in the first step")

    monkeypatch.setattr("engine.runtime.train.step.TrainStep.__call__", explode)
    with pytest.raises(Boom):
        train_main(base_args(tmp_path, **{"--eval-every": 100}))
    events = rundir.read_events(tmp_path / "run")
    assert events[-1]["event"] == "end" and "injected fault" in events[-1]["message"]


@pytest.mark.parametrize("line, words", [
    ('lr = "x"', ["key 'lr' = 'x'", "accepted: a number"]),  # was a TypeError traceback inside torch's AdamW
    ("device_batch = -4", ["key 'device_batch' = -4", ">= 0"]),  # was accepted
    ("qk_norm = 1", ["key 'qk_norm' = 1", "true or false"]),
])
def test_a_hand_edited_config_toml_is_checked_on_resume(tmp_path, line, words):
    assert train_main(base_args(tmp_path, **{"--steps": 3, "--ckpt-every": 3, "--eval-every": 100})) == 0
    config = tmp_path / "run" / "config.toml"
    key = line.split(" =")[0]
    config.write_text("\n".join(line if ln.startswith(f"{key} =") else ln for ln in config.read_text().splitlines()) + "\n")
    r = run_lsdt("train", "--resume", "--run-dir", str(tmp_path / "run"), "--steps", "4", timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr[-800:]
    assert r.stderr.startswith(f"lsdt: error: {config}: ")
    for w in words:
        assert w in r.stderr, r.stderr


def test_a_hand_edited_moe_toml_is_checked(tmp_path):
    """moe.toml with lr = "x" ran phase 2 into a TypeError traceback."""
    import argparse

    from engine.commands.moe_run import resolve_config
    from engine.runtime.moe.config import CONFIG_FILE, read_config, write_config

    args = argparse.Namespace(moe_model=None, tiny=True, domains=None, data_cache=None)
    cfg = resolve_config(args)
    write_config(tmp_path, cfg)
    path = tmp_path / CONFIG_FILE
    path.write_text(path.read_text().replace(f"lr = {cfg.lr}", 'lr = "x"'))
    from engine.errors import UserError

    with pytest.raises(UserError, match=r"moe.toml: key 'lr' = 'x'; accepted: a number"):
        read_config(tmp_path)
