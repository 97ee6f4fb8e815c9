"""Shared helpers of the training tests: a tiny model file, a small corpus, a subprocess runner."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

TINY_MODEL_TOML = """name = "test-tiny"
n_layer = 2
d_model = 32
n_head = 2
n_kv_head = 1
vocab_size = 256
seq_len = 32
ffn = "relu2"
"""

_WORDS = ("the quick brown fox jumps over a lazy dog while seven wizards quietly hex a jovial "
          "knight near the old mill; every morning the baker sells warm bread to hungry travellers").split()


def corpus_text(n_words: int = 6000) -> str:
    """Deterministic pseudo-text: structured enough to learn, varied enough not to be trivial."""
    out, state = [], 12345
    for i in range(n_words):
        state = (1103515245 * state + 12345) % 2**31
        out.append(_WORDS[state % len(_WORDS)])
        if i % 12 == 11:
            out.append(".\n")
    return " ".join(out)


def make_inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(model TOML, corpus file, data cache dir) under tmp_path."""
    model = tmp_path / "tiny.toml"
    model.write_text(TINY_MODEL_TOML)
    data = tmp_path / "corpus.txt"
    data.write_text(corpus_text())
    return model, data, tmp_path / "cache"


def base_args(tmp_path: Path, run: str = "run", **over) -> list[str]:
    model, data, cache = make_inputs(tmp_path)
    args = {"--model": model, "--data": data, "--data-cache": cache, "--run-dir": tmp_path / run, "--device": "cpu",
            "--device-batch": 4, "--steps": 12, "--warmup": 2, "--lr": 3e-3, "--log-every": 1, "--eval-every": 6,
            "--eval-batches": 2, "--ckpt-every": 4, "--threads": 1}
    args.update(over)
    flat: list[str] = []
    for k, v in args.items():
        if v is None:
            continue
        flat += [k] if v is True else [k, str(v)]
    return flat


def train_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine.runtime.train.loop", *args]


def run_train(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(train_cmd(*args), capture_output=True, text=True, timeout=timeout, cwd=REPO, env={**os.environ})


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return False


def run_torchrun(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run of a 2-rank torchrun job, one such job at a time across pytest-xdist workers:
    two gloo jobs at once on this 2-core machine aborted a rank in gloo ("terminate called without
    an active exception", exit -6) about every other CI run; one at a time they pass."""
    with open(Path(tempfile.gettempdir()) / "lsdt-tests-torchrun.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return subprocess.run(cmd, **kwargs)
