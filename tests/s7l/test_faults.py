"""Damaged files: every bit flip, truncation, extension, reordering, misalignment, forgery."""

from __future__ import annotations

import random
import struct

import pytest

from engine.runtime.seal import s7l

from .conftest import check_bytes, rebuild, split


def _rejected(blob) -> str | None:
    try:
        check_bytes(blob)
    except s7l.S7LError as exc:
        assert str(exc) and "\n" not in str(exc)
        return exc.check
    return None


def test_every_single_bit_flip_of_a_small_file_is_detected(small_blob):
    assert len(small_blob) <= 1024
    missed = []
    for bit in range(len(small_blob) * 8):
        bad = bytearray(small_blob)
        bad[bit >> 3] ^= 1 << (bit & 7)
        if _rejected(bad) is None:
            missed.append(bit)
    assert not missed, f"undetected flips at bits {missed[:10]}"


def test_sampled_bit_flips_of_a_larger_file_are_detected():
    rng = random.Random(7)
    tensors = {f"blocks.{i}.w": ("I8", [257, 129], rng.randbytes(257 * 129)) for i in range(8)}
    tensors.update({f"blocks.{i}.s": ("F32", [257], rng.randbytes(4 * 257)) for i in range(8)})
    blob = s7l.pack(tensors, {"kind": "big"})
    assert len(blob) > 250_000
    for _ in range(300):
        bit = rng.randrange(len(blob) * 8)
        bad = bytearray(blob)
        bad[bit >> 3] ^= 1 << (bit & 7)
        assert _rejected(bad) is not None, f"bit {bit} undetected"


def test_truncated_files_are_rejected(small_blob):
    for n in range(len(small_blob)):
        assert _rejected(small_blob[:n]) is not None, n
    with pytest.raises(s7l.S7LError, match="truncated"):
        check_bytes(small_blob[:-1])


@pytest.mark.parametrize("extra", [b"\x00", bytes(32), b"junk"])
def test_extended_files_are_rejected(small_blob, extra):
    with pytest.raises(s7l.S7LError, match="extended") as exc:
        check_bytes(small_blob + extra)
    assert exc.value.check == "bounds"


def test_header_entries_out_of_name_order_fail_V0(small_blob):
    header, data = split(small_blob)
    header["tensors"] = header["tensors"][::-1]
    with pytest.raises(s7l.S7LError, match=r"order \(V0\)") as exc:
        check_bytes(rebuild(header, data))
    assert exc.value.check == "order"


def test_swapped_tensor_data_fails_bounds_or_hashes(small_blob):
    header, data = split(small_blob)
    a, b = header["tensors"][0], header["tensors"][1]
    a["offset"], b["offset"] = b["offset"], a["offset"]  # names kept, data regions exchanged in the header
    assert _rejected(rebuild(header, data)) == "bounds"
    header, data = split(small_blob)
    ea, eb = s7l.parse_header(small_blob).entries[:2]
    swapped = bytearray(data)  # header kept, the two 32-byte slots exchanged in the data
    swapped[ea.offset:ea.offset + 32] = data[eb.offset:eb.offset + 32]
    swapped[eb.offset:eb.offset + 32] = data[ea.offset:ea.offset + 32]
    assert _rejected(rebuild(header, bytes(swapped))) in ("padding", "tensor_hashes")


def test_misaligned_offsets_are_rejected(small_blob):
    header, data = split(small_blob)
    header["tensors"][1]["offset"] += 4
    with pytest.raises(s7l.S7LError, match="alignment") as exc:
        check_bytes(rebuild(header, data))
    assert exc.value.check == "alignment"


def test_data_shifted_off_alignment_is_rejected(small_blob):
    header, data = split(small_blob)
    assert _rejected(rebuild(header, b"\x00" * 4 + data[:-4])) is not None


def test_nonzero_padding_is_rejected(small_blob):
    p = s7l.parse_header(small_blob)
    e = p.entries[0]
    bad = bytearray(small_blob)
    bad[p.data_start + e.offset + e.nbytes] = 1
    with pytest.raises(s7l.S7LError, match="padding"):
        check_bytes(bad)


def test_forged_header_hashes_rewritten_root_not(small_blob):
    """Tensor bytes changed and their hashes rewritten (digest of the header too): the root catches it."""
    header, data = split(small_blob)
    p = s7l.parse_header(small_blob)
    e = p.entries[0]
    forged = bytearray(data)
    forged[e.offset] ^= 0xFF
    import hashlib
    header["tensors"][0]["sha256"] = hashlib.sha256(forged[e.offset:e.offset + e.nbytes]).hexdigest()
    with pytest.raises(s7l.S7LError, match="merkle_root") as exc:
        check_bytes(rebuild(header, bytes(forged)))
    assert exc.value.check == "merkle_root"
    with pytest.raises(s7l.S7LError, match="header") as exc:  # forger did not refresh the header digest
        check_bytes(rebuild(header, bytes(forged), fix_digest=False))
    assert exc.value.check == "header"


def test_non_canonical_header_is_rejected(small_blob):
    header, data = split(small_blob)
    with pytest.raises(s7l.S7LError, match="canonical"):
        check_bytes(rebuild(header, data, canonical=False))


@pytest.mark.parametrize("edit, match", [
    (lambda h: h.update(extra=1), "top-level keys"),
    (lambda h: h.update(version=2), "version"),
    (lambda h: h["tensors"][0].update(shape=[True, 5]), "shape dim"),
    (lambda h: h["tensors"][0].update(nbytes=16), "nbytes"),
    (lambda h: h["tensors"][0].update(dtype="I4"), "dtype"),
    (lambda h: h["tensors"][0].update(name="a b"), "name"),
    (lambda h: h["tensors"][0].update(shape=[10**30, 10**30]), "shape dim"),
    (lambda h: h.update(tensors=[]), "non-empty"),
    (lambda h: h.update(metadata={"k": 1}), "metadata"),
    (lambda h: h.update(merkle_root="XYZ"), "merkle_root"),
])
def test_schema_violations_name_the_field(small_blob, edit, match):
    header, data = split(small_blob)
    edit(header)
    with pytest.raises(s7l.S7LError, match=match) as exc:
        check_bytes(rebuild(header, data))
    assert exc.value.check == "header"


def test_preamble_faults(small_blob):
    with pytest.raises(s7l.S7LError, match="magic"):
        check_bytes(b"PK\x03\x04" + small_blob[4:])
    bad = bytearray(small_blob)
    struct.pack_into("<I", bad, 8, 2)
    with pytest.raises(s7l.S7LError, match="version 2"):
        check_bytes(bad)
    struct.pack_into("<II", bad, 8, 1, 0xFFFFFFFF)
    with pytest.raises(s7l.S7LError, match="length"):
        check_bytes(bad)


def test_report_keeps_the_checks_that_passed_before_the_failure(tmp_path, small_blob):
    (tmp_path / "x.s7l").write_bytes(small_blob + b"\x00")
    report = s7l.verify(tmp_path / "x.s7l")
    assert [(c["check"], c["ok"]) for c in report.checks] == [
        ("preamble", True), ("header", True), ("order", True), ("alignment", True), ("bounds", False),
        ("padding", None), ("tensor_hashes", None), ("merkle_root", None)]
    bad = bytearray(small_blob)
    bad[60] ^= 1  # inside the header JSON: its digest no longer matches
    (tmp_path / "h.s7l").write_bytes(bad)
    report = s7l.verify(tmp_path / "h.s7l")
    assert [(c["check"], c["ok"]) for c in report.checks][:3] == [("preamble", True), ("header", False), ("order", None)]
