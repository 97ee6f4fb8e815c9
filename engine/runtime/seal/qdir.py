"""The quantized-weights directory: what `lsdt quantize` writes and `lsdt seal` packs.

    DIR/manifest.json        canonical JSON (sorted keys, no whitespace):
                             {"format": "lsdt-qdir", "version": 1,
                              "metadata": {str: str},            # copied into the .s7l header
                              "tensors": [{"name", "dtype", "shape", "file", "sha256"}, ...]}
    DIR/tensors/NNNNN-NAME.bin  each tensor's raw little-endian bytes (no header, no pickle),
                             NNNNN its index in name order
    DIR/report.json          the quantization report (errors, perplexity); not sealed

Torch-free, so `lsdt seal` runs without importing torch. Every file is written atomically; the
same tensors give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Mapping

from engine.atomic import write_atomic
from engine.errors import UserError
from engine.runtime.seal import s7l

FORMAT, VERSION = "lsdt-qdir", 1


def write_qdir(out: str | os.PathLike, tensors: Mapping[str, tuple[str, tuple[int, ...], bytes]],
               metadata: Mapping[str, str]) -> Path:
    """name -> (dtype code, shape, raw bytes). Writes the .bin files first, the manifest last."""
    out = Path(out)
    entries, _ = s7l.plan_layout((n, dt, shape) for n, (dt, shape, _) in tensors.items())  # validates names/dtypes
    rows = []
    for i, e in enumerate(entries):
        raw = tensors[e.name][2]
        if len(raw) != e.nbytes:
            raise UserError(f"tensor {e.name}: {len(raw)} bytes for shape {list(e.shape)} x {e.dtype} ({e.nbytes})")
        rel = f"tensors/{i:05d}-{e.name.replace('/', '_')}.bin"  # the index keeps names unique
        write_atomic(out / rel, raw)
        rows.append({"dtype": e.dtype, "file": rel, "name": e.name, "sha256": hashlib.sha256(raw).hexdigest(), "shape": list(e.shape)})
    manifest = {"format": FORMAT, "metadata": s7l.check_metadata(metadata), "tensors": rows, "version": VERSION}
    write_atomic(out / "manifest.json", s7l.canonical_json(manifest))
    return out


def read_qdir(path: str | os.PathLike) -> tuple[dict[str, tuple[str, list[int], bytes]], dict[str, str]]:
    """The tensors and metadata of a quantized directory, every file checked against the manifest."""
    root = Path(path)
    mpath = root / "manifest.json"
    if not root.is_dir():
        raise UserError(f"{root}: not a directory; accepted: the output directory of `lsdt quantize`")
    try:
        manifest = json.loads(mpath.read_text(encoding="ascii"))
    except FileNotFoundError:
        raise UserError(f"{mpath}: missing; accepted: the output directory of `lsdt quantize`") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UserError(f"{mpath}: unreadable ({type(exc).__name__})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise UserError(f"{mpath}: format/version; accepted: {FORMAT!r} version {VERSION}")
    metadata = manifest.get("metadata")
    rows = manifest.get("tensors")
    if not isinstance(metadata, dict) or not isinstance(rows, list):
        raise UserError(f"{mpath}: needs 'metadata' (object) and 'tensors' (list)")
    tensors = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not {"name", "dtype", "shape", "file", "sha256"} <= set(row):
            raise UserError(f"{mpath}: tensors[{i}]; accepted: an object with name, dtype, shape, file, sha256")
        if not isinstance(row["name"], str):
            raise UserError(f"{mpath}: tensors[{i}].name; accepted: a string")
        rel = row["file"]
        if not isinstance(rel, str) or rel.startswith("/") or ".." in Path(rel).parts:
            raise UserError(f"{mpath}: tensors[{i}].file {rel!r}; accepted: a relative path inside {root}")
        try:
            raw = (root / rel).read_bytes()
        except OSError as exc:
            raise UserError(f"{root / rel}: cannot read ({exc.strerror})") from None
        if hashlib.sha256(raw).hexdigest() != row["sha256"]:
            raise UserError(f"{root / rel}: SHA-256 does not match {mpath} (file changed after quantize)")
        if row["name"] in tensors:
            raise UserError(f"{mpath}: tensor {row['name']!r} listed twice")
        tensors[row["name"]] = (row["dtype"], row["shape"], raw)
    return tensors, metadata
