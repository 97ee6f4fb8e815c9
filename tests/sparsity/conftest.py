"""Sparsity-lab fixtures: a private token cache, a tiny trained GPT run, small probe tasks."""

from __future__ import annotations

import pytest

from tests.runtime.train_helpers import base_args, corpus_text


@pytest.fixture(scope="session", autouse=True)
def sparsity_cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("lsdt-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LSDT_CACHE_DIR", str(path))
        yield path


@pytest.fixture(scope="session")
def gpt_run(tmp_path_factory):
    """A real `lsdt train` run of the tests' tiny relu2 model (2 layers, d_model 32, d_ff 128), 8 steps."""
    from engine.cli import main

    tmp = tmp_path_factory.mktemp("gpt-run")
    assert main(["train", *base_args(tmp, **{"--steps": 8, "--ckpt-every": 8, "--eval-every": 8})]) == 0
    return tmp / "run"


@pytest.fixture(scope="session")
def task_spec(tmp_path_factory):
    """Three small probe tasks as NAME=PATH: prose, digits, code-like text (enough windows for a split)."""
    d = tmp_path_factory.mktemp("tasks")
    (d / "prose.txt").write_text(corpus_text(900))
    (d / "digits.txt").write_text(" ".join(str((i * 7919) % 1000) for i in range(1400)))
    (d / "code.txt").write_text("\n".join(f"def f{i}(x):\n    return x * {i} + {i % 7}" for i in range(200)))
    return ",".join(f"{n}={d / (n + '.txt')}" for n in ("prose", "digits", "code"))


TINY_LAB = ["--seq", "32", "--max-tokens", "1024", "--batch", "8", "--sae-tokens", "2048", "--sae-steps", "60",
            "--l1", "1e-3,1e-2", "--eval-windows", "6", "--seeds", "2", "--k", "0.2,0.5,1.0", "--device", "cpu",
            "--layers", "all"]
