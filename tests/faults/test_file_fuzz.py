"""Fuzz over the file inputs of every file-reading flag: whatever bytes a user points a flag at, the
answer is exit 0 or exit 2 with one stderr line, never a traceback, and nothing new on disk."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cli import main as lsdt

# Text that looks enough like TOML/JSON to get past the first parser and into the field checks.
_atoms = st.sampled_from(['n_layer', 'd_model', 'n_head', 'vocab_size', 'seq_len', 'name', 'peak_flops',
                          'memory_bytes', '[model]', '[goal]', '{', '}', '[', ']', '=', ':', ',', '"x"', '1e308',
                          '-1', '0', 'nan', 'inf', 'true', '\n', ' ', '"', "'''", '\\u0000', '1' * 40])
TEXTS = st.one_of(st.binary(max_size=300), st.lists(_atoms, max_size=40).map("".join).map(str.encode))

COMMANDS = [
    ("plan", "--model", "{f}.toml", "--hardware", "a100-80g-sxm"),
    ("plan", "--model", "{f}.json", "--hardware", "a100-80g-sxm"),
    ("plan", "--model", "llama-13b", "--hardware", "{f}.toml"),
    ("plan", "--load", "{f}.toml"),
    ("predict", "--model", "llama-13b", "--hardware", "a100-80g-sxm", "--gpus", "8", "--global-batch", "512", "--calibrate", "{f}.json"),
    ("export", "--plan", "{f}.toml", "--to", "megatron"),
    ("moe", "--model", "{f}.toml"),
    ("bands", "--pilot", "{f}.jsonl"),
    ("bands", "--probe", "{f}.json"),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=TEXTS, which=st.integers(0, len(COMMANDS) - 1))
def test_any_file_content_is_exit_0_or_one_line_exit_2(content, which):
    with tempfile.TemporaryDirectory() as d:
        base = Path(d) / "input"
        argv = [a.format(f=base) for a in COMMANDS[which]]
        Path(next(a for a in argv if a.startswith(str(base)))).write_bytes(content)
        before = sorted(os.listdir(d))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = lsdt(argv)
            except SystemExit as exc:  # argparse's own refusals (one line, exit 2)
                code = exc.code
        text = err.getvalue()
        assert code in (0, 2), (argv, content, text[-2000:])
        if code == 2:
            assert len(text.strip().splitlines()) == 1 and "Traceback" not in text, (argv, content, text[-2000:])
        assert sorted(os.listdir(d)) == before
