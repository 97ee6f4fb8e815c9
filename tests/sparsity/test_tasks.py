"""Probe tasks: the tasks.jsonl manifest, NAME=PATH lists, windows, and the sample warnings."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import UserError
from engine.runtime.sparsity.tasks import parse_tasks, tokenize_tasks


def test_manifest_text_and_path_lines(tmp_path):
    (tmp_path / "b.txt").write_text("bee " * 100)
    m = tmp_path / "tasks.jsonl"
    m.write_text("\n".join(json.dumps(r) for r in [{"task": "a", "text": "alpha " * 50}, {"task": "b", "path": "b.txt"},
                                                    {"task": "a", "text": "more"}]) + "\n")
    tasks = parse_tasks(str(m))
    assert [t.name for t in tasks] == ["a", "b"]
    assert tasks[0].text == ("alpha " * 50 + "\nmore").encode() and tasks[1].text == ("bee " * 100).encode()
    assert len(tasks[0].sha256) == 64


def test_windows_and_warnings(tmp_path):
    (tmp_path / "x.txt").write_text("x" * 1000)
    (tmp_path / "y.txt").write_text("y" * 100)
    tw = tokenize_tasks(parse_tasks(f"x={tmp_path / 'x.txt'},y={tmp_path / 'y.txt'}"), lambda b: list(b), 32, 10_000, 256)
    assert tw.windows[0].shape == (31, 33) and tw.windows[1].shape == (3, 33)  # (n - 1) // 32 windows of 33
    assert np.array_equal(tw.windows[0][1, :2], [ord("x")] * 2)
    assert any("task y: 96 samples" in w for w in tw.warnings) and any("2 tasks" in w for w in tw.warnings)


@pytest.mark.parametrize("spec,msg", [("a=,b=x", "is not NAME=PATH"), ("a=/nope,b=/nope2", "no such file"),
                                      ("/nope.jsonl", "no such file")])
def test_bad_task_specs(spec, msg):
    with pytest.raises(UserError, match=msg):
        parse_tasks(spec)


def test_one_task_and_duplicates(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("text " * 50)
    with pytest.raises(UserError, match="at least 2"):
        parse_tasks(f"a={f}")
    with pytest.raises(UserError, match="given twice"):
        parse_tasks(f"a={f},a={f}")
