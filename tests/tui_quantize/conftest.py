"""Quantize-tab fixtures: a real (tiny, 3-step) dense training checkpoint, and the app on that tab."""

from __future__ import annotations

import pytest

from tests.conftest import run_lsdt

MODEL_TOML = """name = "tui-q-tiny"
n_layer = 2
d_model = 32
n_head = 2
vocab_size = 256
seq_len = 32
ffn = "relu2"
"""


@pytest.fixture(scope="session")
def dense_run(tmp_path_factory):
    """A run directory with one checkpoint, written by `lsdt train` (the same as a user's)."""
    d = tmp_path_factory.mktemp("tui-q")
    (d / "m.toml").write_text(MODEL_TOML)
    words = "the quick brown fox jumps over a lazy dog while seven wizards hex a jovial knight".split()
    (d / "corpus.txt").write_text(" ".join(words[(i * 7) % len(words)] for i in range(8000)))
    run = d / "run"
    r = run_lsdt("train", "--model", str(d / "m.toml"), "--data", str(d / "corpus.txt"), "--data-cache", str(d / "cache"),
                 "--steps", "3", "--warmup", "1", "--device", "cpu", "--val-fraction", "0.3", "--run-dir", str(run),
                 timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return run


@pytest.fixture
def quantize_app():
    from app.app import make_app

    return make_app(cursor_blink=False, initial_tab="quantize", only_tabs=("quantize",))
