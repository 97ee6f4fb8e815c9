"""Domain slices: deterministic built-ins, --domains parsing, the phase-1 data mix."""

from __future__ import annotations

import hashlib

import pytest

from engine.errors import UserError
from engine.runtime.moe import data as moe_data
from engine.runtime.moe.data import DomainSet, builtin_source, parse_domains


def test_generated_slices_are_the_same_bytes_everywhere():
    # pinned: a change to the generators changes every trained model's data, so it must be deliberate
    assert hashlib.sha256(moe_data._math_text().encode()).hexdigest()[:16] == "f0a27625a3c370de"
    assert hashlib.sha256(moe_data._reasoning_text().encode()).hexdigest()[:16] == "07a4fca68ca88b76"


def test_builtin_sources(moe_cache):
    assert builtin_source("code") == "stdlib"
    for name in ("math", "reasoning", "general"):
        path = builtin_source(name)
        assert path.startswith(str(moe_cache)) and len(open(path, "rb").read()) > 100_000
    with pytest.raises(UserError, match="no built-in slice"):
        builtin_source("poetry")


def test_parse_domains(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("m.txt", "1", "2"):
        (tmp_path / name).write_text("text\n")
    assert parse_domains(None, 4) == {"code": None, "math": None, "reasoning": None, "general": None}
    assert parse_domains("math=m.txt", 4)["math"] == "m.txt"
    assert parse_domains("a=1,b=2", 2) == {"a": "1", "b": "2"}
    for bad, match in (("math", "NAME=PATH"), ("math=1,math=2", "twice"), ("a=1", "1 domain")):
        with pytest.raises(UserError, match=match):
            parse_domains(bad, 4)


def test_parse_domains_checks_each_path_naming_the_domain(tmp_path):
    """A missing or empty domain path is refused while parsing, naming --domains NAME=PATH: it used
    to surface as `--data PATH` after moe.toml was written, and the corrected command then failed
    with "already holds a MoE run"."""
    (tmp_path / "empty").mkdir()
    for bad, match in ((f"code={tmp_path}/nope.txt", f"--domains code={tmp_path}/nope.txt: no such file"),
                       (f"math={tmp_path}/empty", f"--domains math={tmp_path}/empty: the directory holds no text")):
        with pytest.raises(UserError, match=match):
            parse_domains(bad, 4)


def test_mixed_batches_follow_the_mix_and_are_seeded(tmp_path):
    files = {}
    for i, n in enumerate("abcd"):
        files[n] = tmp_path / f"{n}.txt"
        files[n].write_bytes(bytes([65 + i]) * 5000)  # domain i is the byte 65 + i
    ds = DomainSet.load({n: str(p) for n, p in files.items()}, str(tmp_path / "cache"), 0.1, [0.4, 0.3, 0.2, 0.1])
    x, y, d = ds.mixed_batch("train", 2000, 8, seed=1, step=0)
    assert (x[:, 0] == 65 + d).all()  # each row comes from its labelled domain
    shares = [(d == i).float().mean().item() for i in range(4)]
    assert shares == pytest.approx([0.4, 0.3, 0.2, 0.1], abs=0.04)
    x2, _, d2 = ds.mixed_batch("train", 2000, 8, seed=1, step=0)
    assert (x2 == x).all() and (d2 == d).all()
