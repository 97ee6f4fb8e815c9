"""The .s7l layout: round trip, determinism, alignment, Merkle rule, writer-side validation."""

from __future__ import annotations

import hashlib
import os
import stat

import pytest
import torch

from engine.errors import UserError
from engine.runtime.seal import s7l

from .conftest import check_bytes, small_tensors, split


def test_round_trip_and_layout(small_blob):
    check_bytes(small_blob)
    p = s7l.parse_header(small_blob)
    assert [e.name for e in p.entries] == sorted(small_tensors())
    assert p.data_start % 32 == 0 and all(e.offset % 32 == 0 for e in p.entries)
    assert len(small_blob) == p.data_start + p.data_bytes
    for e in p.entries:
        lo = p.data_start + e.offset
        assert small_blob[lo:lo + e.nbytes] == small_tensors()[e.name][2]
        assert hashlib.sha256(small_blob[lo:lo + e.nbytes]).hexdigest() == e.sha256
        pad = small_blob[lo + e.nbytes:p.data_start + s7l.align(e.offset + e.nbytes)]
        assert pad == bytes(len(pad))
    assert small_blob[:8] == b"\x89S7L\r\n\x1a\n"


def test_same_weights_same_bytes_whatever_the_insertion_order():
    t = small_tensors()
    a = s7l.pack(t, {"x": "1", "a": "2"})
    b = s7l.pack(dict(reversed(list(t.items()))), {"a": "2", "x": "1"})
    assert a == b
    changed = dict(t, norm=("F32", [2], b"\x00\x00\x80?\x00\x00\x00@"))
    assert s7l.parse_header(s7l.pack(changed)).merkle_root != s7l.parse_header(a).merkle_root


def test_header_is_canonical_json(small_blob):
    header, _ = split(small_blob)
    hlen = int.from_bytes(small_blob[12:16], "little")
    assert s7l.canonical_json(header) == small_blob[48:48 + hlen]
    assert b" " not in small_blob[48:48 + hlen] and b"\n" not in small_blob[48:48 + hlen]


def _leaf(name, dtype, shape, digest):
    text = f"{name}\x00{dtype}\x00{','.join(map(str, shape))}".encode()
    return hashlib.sha256(b"\x00" + text + b"\x00" + digest).digest()


def _node(a, b):
    return hashlib.sha256(b"\x01" + a + b).digest()


def test_merkle_odd_leaf_is_carried_up_unchanged():
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(5)]
    assert s7l.merkle_root_of(leaves[:1]) == leaves[0]
    assert s7l.merkle_root_of(leaves[:2]) == _node(leaves[0], leaves[1])
    assert s7l.merkle_root_of(leaves[:3]) == _node(_node(leaves[0], leaves[1]), leaves[2])
    l01, l23 = _node(leaves[0], leaves[1]), _node(leaves[2], leaves[3])
    assert s7l.merkle_root_of(leaves) == _node(_node(l01, l23), leaves[4])
    # the duplicate-last rule would make [a, b, c] and [a, b, c, c] collide; this one does not
    assert s7l.merkle_root_of(leaves[:3]) != s7l.merkle_root_of(leaves[:3] + leaves[2:3])


def test_root_recomputed_by_hand(small_blob):
    p = s7l.parse_header(small_blob)
    leaves = [_leaf(e.name, e.dtype, e.shape, bytes.fromhex(e.sha256)) for e in p.entries]
    assert s7l.merkle_root_of(leaves).hex() == p.merkle_root


def test_root_binds_shape_not_only_bytes():
    t = small_tensors()
    reshaped = dict(t, **{"layer.0.weight": ("I8", [5, 3], t["layer.0.weight"][2])})
    assert s7l.parse_header(s7l.pack(reshaped)).merkle_root != s7l.parse_header(s7l.pack(t)).merkle_root


@pytest.mark.parametrize("bad, match", [
    ({"bad name!": ("I8", [1], b"\x00")}, "tensor name"),
    ({"a": ("Q4", [1], b"\x00")}, "dtype"),
    ({"a": ("I8", [2], b"\x00")}, "needs 2"),
    ({}, "no tensors"),
])
def test_writer_rejects_bad_input(bad, match):
    with pytest.raises(UserError, match=match):
        s7l.pack(bad)


def test_writer_rejects_bad_metadata_and_oversized_header():
    with pytest.raises(UserError, match="metadata"):
        s7l.pack(small_tensors(), {"k": "tab\there"})
    with pytest.raises(UserError, match="cap"):
        s7l.pack(small_tensors(), {f"k{i}": "x" * 1_000_000 for i in range(17)})


def test_seal_tensors_read_only_atomic_and_loads_back(tmp_path):
    g = torch.Generator().manual_seed(0)
    tensors = {
        "w": torch.randint(-128, 128, (7, 9), dtype=torch.int8, generator=g),
        "s": torch.rand(7, generator=g),
        "b": torch.rand(3, 2, generator=g).to(torch.bfloat16),
        "e": torch.zeros(0, 4),
        "c": torch.tensor(3.5),
    }
    info = s7l.seal_tensors(tensors, tmp_path / "m.s7l", {"k": "v"})
    mode = stat.S_IMODE(os.stat(info.path).st_mode)
    assert mode == 0o444
    assert [p.name for p in tmp_path.iterdir()] == ["m.s7l"]  # no temporary left behind
    again = s7l.seal_tensors(dict(reversed(list(tensors.items()))), tmp_path / "n.s7l", {"k": "v"})
    assert info.path.read_bytes() == again.path.read_bytes() and info.merkle_root == again.merkle_root
    loaded, meta = s7l.load_tensors(info.path)
    assert meta == {"k": "v"} and sorted(loaded) == sorted(tensors)
    for k, t in tensors.items():
        assert loaded[k].dtype == t.dtype and torch.equal(loaded[k], t)
    report = s7l.verify(info.path, determinism=False)
    assert report.ok and report.merkle_root == info.merkle_root
    assert [c["check"] for c in report.checks] == list(s7l.CHECKS)


def test_load_refuses_a_corrupt_file(tmp_path, small_blob):
    bad = bytearray(small_blob)
    bad[-40] ^= 0x10
    (tmp_path / "bad.s7l").write_bytes(bad)
    with pytest.raises(s7l.S7LError):
        s7l.load_tensors(tmp_path / "bad.s7l")


def test_verify_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(UserError, match="cannot open"):
        s7l.verify(tmp_path / "nope.s7l")


def test_resealing_replaces_a_read_only_file(tmp_path):
    first = s7l.seal_tensors({"w": torch.zeros(3)}, tmp_path / "m.s7l")
    second = s7l.seal_tensors({"w": torch.ones(3)}, tmp_path / "m.s7l")
    assert first.merkle_root != second.merkle_root
    assert s7l.verify(second.path, determinism=False).merkle_root == second.merkle_root


def test_an_empty_file_fails_the_preamble(tmp_path):
    (tmp_path / "e.s7l").write_bytes(b"")
    report = s7l.verify(tmp_path / "e.s7l")
    assert not report.ok and report.failed_check == "preamble"
    assert [c["ok"] for c in report.checks] == [False] + [None] * (len(s7l.CHECKS) - 1)
