"""The reader on hostile bytes: only S7LError, never another exception, never a big allocation."""

from __future__ import annotations

import hashlib
import struct
import tracemalloc

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.runtime.seal import s7l

from .conftest import check_bytes, small_tensors

SMALL = s7l.pack(small_tensors(), {"kind": "test"})


def _only_format_errors(blob: bytes) -> None:
    try:
        check_bytes(blob)
    except s7l.S7LError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2048))
def test_random_bytes(blob):
    _only_format_errors(blob)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=1024))
def test_random_bytes_behind_a_valid_magic(tail):
    _only_format_errors(s7l.MAGIC + struct.pack("<I", 1) + tail)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=2, max_size=4096))
def test_random_header_with_a_correct_digest(raw):
    """The digest passes, so the JSON parser and schema checks see the hostile bytes."""
    head = s7l.PREAMBLE.pack(s7l.MAGIC, 1, len(raw), hashlib.sha256(raw).digest()) + raw
    _only_format_errors(head + bytes(64))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(s7l.HEADER_KEYS), json_values, st.integers(0, 2), st.sampled_from(s7l.ENTRY_KEYS), json_values)
def test_structured_header_mutations(key, value, entry_i, entry_key, entry_value):
    import json
    hlen = struct.unpack_from("<I", SMALL, 12)[0]
    header = json.loads(SMALL[48:48 + hlen])
    header[key] = value
    if isinstance(header.get("tensors"), list) and len(header["tensors"]) > entry_i and isinstance(header["tensors"][entry_i], dict):
        header["tensors"][entry_i][entry_key] = entry_value
    raw = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    head = s7l.PREAMBLE.pack(s7l.MAGIC, 1, len(raw), hashlib.sha256(raw).digest()) + raw
    _only_format_errors(head + bytes(s7l.align(len(head)) - len(head)) + SMALL[-96:])


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_valid_file(data):
    blob = bytearray(SMALL)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(blob) - 1))
        blob[i] = data.draw(st.integers(0, 255))
    if bytes(blob) != SMALL:
        try:
            check_bytes(blob)
        except s7l.S7LError:
            return
        raise AssertionError("a changed file verified")


def test_huge_declared_sizes_allocate_nothing_big(tmp_path):
    """A 16 MiB header length, or a tensor of 10^18 bytes, on a tiny file: rejected, no big allocation."""
    cases = [s7l.PREAMBLE.pack(s7l.MAGIC, 1, s7l.MAX_HEADER_BYTES, bytes(32)) + b"{}"]
    raw = s7l.canonical_json({"alignment": 32, "data_bytes": 10**18, "format": "s7l", "merkle_root": "0" * 64,
                              "metadata": {}, "version": 1, "tensors": [
                                  {"dtype": "F64", "name": "w", "nbytes": 8 * 10**17, "offset": 0, "sha256": "0" * 64,
                                   "shape": [10**17]}]})
    cases.append(s7l.PREAMBLE.pack(s7l.MAGIC, 1, len(raw), hashlib.sha256(raw).digest()) + raw)
    for i, blob in enumerate(cases):
        path = tmp_path / f"c{i}.s7l"
        path.write_bytes(blob)
        tracemalloc.start()
        try:
            report = s7l.verify(path, determinism=False)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert not report.ok and report.failed_check in ("header", "bounds")
        assert peak < 1 << 20, peak
