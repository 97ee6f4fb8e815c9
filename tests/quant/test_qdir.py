"""The quantized directory: round trip, and a hostile manifest only ever gives a UserError."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import UserError
from engine.runtime.seal import s7l
from engine.runtime.seal.qdir import read_qdir, write_qdir


def test_round_trip_and_unique_files(tmp_path):
    tensors = {"a/b": ("U8", (2,), b"\x01\x02"), "a__b": ("U8", (1,), b"\x03"), "w": ("F32", (1,), b"\x00\x00\x80?")}
    write_qdir(tmp_path, tensors, {"kind": "t"})
    got, meta = read_qdir(tmp_path)
    assert meta == {"kind": "t"} and {k: (v[0], tuple(v[1]), v[2]) for k, v in got.items()} == tensors
    assert len(list((tmp_path / "tensors").iterdir())) == 3


def test_path_escape_is_refused(tmp_path):
    write_qdir(tmp_path, {"w": ("U8", (1,), b"\x01")}, {})
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["tensors"][0]["file"] = "../outside.bin"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="relative path"):
        read_qdir(tmp_path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2**70) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(key=st.sampled_from(["name", "dtype", "shape", "file", "sha256"]), value=json_values,
       meta_value=st.one_of(st.none(), json_values))
def test_hostile_manifest_fields_give_user_errors(tmp_path_factory, key, value, meta_value):
    d = tmp_path_factory.mktemp("q")
    (d / "tensors").mkdir()
    (d / "tensors" / "w.bin").write_bytes(b"\x01\x02")
    row = {"name": "w", "dtype": "U8", "shape": [2], "file": "tensors/w.bin", "sha256": hashlib.sha256(b"\x01\x02").hexdigest()}
    row[key] = value
    manifest = {"format": "lsdt-qdir", "version": 1, "metadata": {"k": meta_value} if meta_value is not None else {}, "tensors": [row]}
    (d / "manifest.json").write_text(json.dumps(manifest))
    try:
        s7l.pack(*read_qdir(d))
    except UserError:
        pass
