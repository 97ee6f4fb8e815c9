"""Odd write targets and absurd input files.

- Atomic writes refuse a target that exists and is not a regular file. Before: as root, `--save
  /dev/null` replaced the device with a regular file (the rename lands on whatever the path is).
- Written files follow the umask (0666 & ~umask), not mkstemp's 0600.
- TOML/JSON nested 20,000 / 100,000 levels deep: one line, exit 2. Before: a RecursionError
  traceback thousands of lines long from every file-reading flag.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from engine.atomic import write_atomic
from engine.errors import UserError
from tests.runtime.train_helpers import REPO


@pytest.fixture
def char_device(tmp_path):
    """A character device like /dev/null: our own (mknod, as root) or /dev/null itself, which the
    refusal must leave a character device."""
    path = tmp_path / "null"
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        path = "/dev/null"
    yield str(path)
    assert stat.S_ISCHR(os.stat(path).st_mode), f"{path} is no longer a character device"


def _lsdt(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _one_line_exit_2(res, *needles):
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert all(n in lines[0] for n in needles), lines[0]


def test_write_atomic_refuses_a_character_device_a_fifo_and_a_directory(tmp_path, char_device):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target, kind in ((char_device, "a character device"), (fifo, "a FIFO"), (tmp_path, "a directory")):
        with pytest.raises(UserError, match=kind):
            write_atomic(target, "x")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_plan_save_and_export_out_refuse_a_device(tmp_path, char_device):
    plan = tmp_path / "plan.toml"
    assert _lsdt("plan", "--model", "llama-13b", "--hardware", "a100-80g-sxm", "--save", str(plan)).returncode == 0
    _one_line_exit_2(_lsdt("plan", "--model", "llama-13b", "--hardware", "a100-80g-sxm", "--save", char_device),
                     char_device, "character device")
    _one_line_exit_2(_lsdt("export", "--plan", str(plan), "--to", "megatron", "--out", char_device),
                     char_device, "character device")


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        plain = write_atomic(tmp_path / "plan.toml", "a = 1\n")
        sealed = write_atomic(tmp_path / "w.s7l", b"x", mode=0o444)
    finally:
        os.umask(old)
    assert plain.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sealed.stat().st_mode & 0o777 == 0o444  # an explicit mode (read-only seals) wins


def _deep_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def _deep_toml(depth: int) -> str:
    return "x = " + "[" * depth + "]" * depth + "\n"


@pytest.mark.parametrize("args", [
    ("plan", "--model", "{json}", "--hardware", "a100-80g-sxm"),
    ("plan", "--model", "llama-13b", "--hardware", "{toml}"),
    ("plan", "--load", "{toml}"),
    ("predict", "--model", "{toml}", "--hardware", "a100-80g-sxm", "--gpus", "8"),
    ("predict", "--model", "llama-13b", "--hardware", "a100-80g-sxm", "--gpus", "8", "--calibrate", "{json}"),
    ("bands", "--pilot", "{jsonl}"),
    ("export", "--plan", "{toml}", "--to", "torchrun"),
    ("moe", "--model", "{toml}"),
    ("train", "--model", "{json}", "--steps", "2"),
])
def test_deeply_nested_files_are_one_line_errors(tmp_path, args):
    files = {"json": (tmp_path / "deep.json", _deep_json(100_000)), "toml": (tmp_path / "deep.toml", _deep_toml(20_000)),
             "jsonl": (tmp_path / "metrics.jsonl", _deep_json(100_000) + "\n")}
    for path, text in files.values():
        path.write_text(text)
    argv = [a.format(**{k: str(p) for k, (p, _) in files.items()}) for a in args]
    before = set(os.listdir(tmp_path))
    res = _lsdt(*argv, cwd=tmp_path)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr and "RecursionError" not in res.stderr, res.stderr[-2000:]
    assert set(os.listdir(tmp_path)) == before  # nothing created (no run dir, no cache)
