"""docs/s7l-format.md's example hex dump is what the implementation writes."""

from __future__ import annotations

import hashlib
import re
import struct

from engine.runtime.seal import s7l

from ..conftest import REPO


def test_example_hex_dump_matches_the_writer():
    doc = (REPO / "docs" / "s7l-format.md").read_text()
    dump = doc.split("## Example", 1)[1].split("```", 2)[1]
    got = bytearray()
    for line in dump.strip().splitlines():
        m = re.match(r"([0-9a-f]{8}): ((?:[0-9a-f]{4} ){7}[0-9a-f]{4})", line)
        assert m and int(m.group(1), 16) == len(got)
        got += bytes.fromhex(m.group(2).replace(" ", ""))
    blob = s7l.pack({"scale": ("F32", [2], struct.pack("<2f", 0.5, 0.25)),
                     "w": ("I8", [2, 3], bytes([1, 2, 3, 0xFF, 0xFE, 0x7F]))}, {"kind": "example"})
    assert bytes(got) == bytes(blob)
    root = s7l.parse_header(blob).merkle_root
    assert root in doc
    l0 = hashlib.sha256(b"\x00scale\x00F32\x002\x00" + hashlib.sha256(struct.pack("<2f", 0.5, 0.25)).digest()).digest()
    l1 = hashlib.sha256(b"\x00w\x00I8\x002,3\x00" + hashlib.sha256(bytes([1, 2, 3, 0xFF, 0xFE, 0x7F])).digest()).digest()
    assert hashlib.sha256(b"\x01" + l0 + l1).hexdigest() == root
