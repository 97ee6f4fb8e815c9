"""Fixtures for the .s7l tests: small packed files built torch-free, and a header re-writer."""

from __future__ import annotations

import hashlib
import json
import struct

import pytest

from engine.runtime.seal import s7l


def small_tensors() -> dict:
    """Three tensors of mixed dtypes whose sizes are not multiples of 32 (so padding exists)."""
    return {
        "layer.0.weight": ("I8", [3, 5], bytes((i * 37) % 256 for i in range(15))),
        "layer.0.weight_scale": ("F32", [3], struct.pack("<3f", 0.5, 0.25, 0.125)),
        "norm": ("F32", [2], struct.pack("<2f", 1.0, -2.0)),
    }


@pytest.fixture
def small_blob() -> bytes:
    return s7l.pack(small_tensors(), {"kind": "test"})


def check_bytes(blob: bytes | bytearray) -> None:
    """Every format check over in-memory bytes (verify() without a file); raises S7LError."""
    view = memoryview(blob)
    try:
        p = s7l.parse_header(view)
        s7l.check_layout(p, view, len(blob))
        s7l.check_hashes(p, view)
    finally:
        view.release()


def split(blob: bytes) -> tuple[dict, bytes]:
    """(header dict, data region) of a valid file."""
    hlen = struct.unpack_from("<I", blob, 12)[0]
    header = json.loads(blob[48:48 + hlen])
    return header, blob[s7l.align(48 + hlen):]


def rebuild(header: dict, data: bytes, fix_digest: bool = True, canonical: bool = True) -> bytes:
    """A file from an (edited) header and data; fix_digest=False keeps a stale header SHA-256."""
    raw = s7l.canonical_json(header) if canonical else json.dumps(header, indent=1).encode()
    digest = hashlib.sha256(raw).digest() if fix_digest else b"\x00" * 32
    head = s7l.PREAMBLE.pack(s7l.MAGIC, s7l.VERSION, len(raw), digest) + raw
    return head + bytes(s7l.align(len(head)) - len(head)) + data
