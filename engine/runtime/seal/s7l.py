"""`.s7l`: the sealed weight file. Pack, open, verify. The byte-level spec is docs/s7l-format.md.

    offset  size  field
    0       8     magic  89 53 37 4C 0D 0A 1A 0A  ("\\x89S7L\\r\\n\\x1a\\n", PNG-style: catches
                         7-bit and CRLF-mangling transfers)
    8       4     format version, u32 little-endian (1)
    12      4     header length H, u32 little-endian, 2 <= H <= MAX_HEADER_BYTES
    16      32    SHA-256 of the H header bytes
    48      H     header: canonical JSON (sorted keys, no whitespace, ASCII)
    48+H          zero bytes up to data_start = align32(48 + H)
    data_start    tensor data: each tensor at data_start + offset, offset a multiple of 32,
                  in lexicographic name order, zero padding to the next multiple of 32;
                  the file ends exactly at data_start + data_bytes

Per tensor the header holds name, dtype, shape, offset, nbytes and the SHA-256 of its bytes.
The Merkle root (in the header) is built over one leaf per tensor, in name order:
    leaf   = SHA-256(0x00 || name || 0x00 || dtype || 0x00 || shape "d0,d1,.." || 0x00 || digest)
    node   = SHA-256(0x01 || left || right)
    odd    : the last node of a level with an odd count is carried up unchanged (RFC 6962 style;
             Bitcoin's duplicate-the-last rule lets two different leaf lists share a root,
             CVE-2012-2459).
The leaf binds name, dtype and shape as well as the bytes, so a forged header that renames or
reshapes a tensor changes the root, not only the header digest.

Why not plain safetensors (which this header borrows its dtype names and relative offsets from):
safetensors starts with its header length, so there is no room for a magic number, and it
rejects any byte of the data region not covered by a tensor ("no holes"), which the 32-byte
zero padding between tensors is. See docs/s7l-format.md, "Relation to safetensors".

The reader never unpickles, never evaluates anything, and never allocates more than the header
(capped, checked before reading) before every offset and length has been checked against the
file size. This module is torch-free except `seal_tensors` / `load_tensors`, which import torch
lazily.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from engine.errors import UserError

MAGIC = b"\x89S7L\r\n\x1a\n"
VERSION = 1
ALIGN = 32  # bytes; one AVX2 register (seed 002, sec. 8: "32-byte (256-bit) boundary alignment")
PREAMBLE = struct.Struct("<8sII32s")  # magic, version, header length, header SHA-256
PREAMBLE_BYTES = PREAMBLE.size  # 48
# 16 MiB of header is ~80k tensor entries; safetensors caps its header at 100 MB for the same reason
# (a length field must never drive an unbounded allocation).
MAX_HEADER_BYTES = 16 << 20
MAX_NDIM = 8
MAX_METADATA_VALUE = 1 << 20
NAME_RE = re.compile(r"[A-Za-z0-9_.:/-]{1,255}")  # ASCII: byte order == str order, no escaping
META_KEY_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
HEX64_RE = re.compile(r"[0-9a-f]{64}")
# dtype code (safetensors' spelling) -> bytes per element; all little-endian
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
HEADER_KEYS = ("alignment", "data_bytes", "format", "merkle_root", "metadata", "tensors", "version")
ENTRY_KEYS = ("dtype", "name", "nbytes", "offset", "sha256", "shape")

# metadata "kind" -> determinism_check(path, metadata) -> check dict, which runs V6 on such a file.
# Filled by the seal package (engine/runtime/seal/__init__.py) for the model kinds this build runs;
# this module stays torch-free and imports no module by name.
V6_CHECKS: dict[str, Callable[[Any, dict], dict]] = {}


def register_v6_check(kind: str, check: Callable[[Any, dict], dict]) -> None:
    V6_CHECKS[kind] = check

# The verification steps, in the order they run (names used in reports and error messages).
CHECKS = ("preamble", "header", "order", "alignment", "bounds", "padding", "tensor_hashes", "merkle_root")


class S7LError(UserError):
    """A file that is not a valid .s7l; `check` names the verification step that failed."""

    def __init__(self, check: str, message: str):
        super().__init__(message)
        self.check = check


def align(n: int, to: int = ALIGN) -> int:
    return -(-n // to) * to


def canonical_json(obj: Any) -> bytes:
    """The one byte form of a header: sorted keys, no whitespace, ASCII (\\uXXXX escapes)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


@dataclass(frozen=True)
class Entry:
    """One tensor's header entry. offset is relative to data_start; nbytes excludes padding."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int
    nbytes: int
    sha256: str = ""

    def to_json(self) -> dict:
        return {"dtype": self.dtype, "name": self.name, "nbytes": self.nbytes, "offset": self.offset,
                "sha256": self.sha256, "shape": list(self.shape)}


def numel(shape: Iterable[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# ---------------------------------------------------------------- Merkle root

def merkle_leaf(name: str, dtype: str, shape: Iterable[int], digest: bytes) -> bytes:
    text = b"\x00".join((name.encode("ascii"), dtype.encode("ascii"), ",".join(str(d) for d in shape).encode("ascii")))
    return hashlib.sha256(b"\x00" + text + b"\x00" + digest).digest()


def merkle_root_of(leaves: list[bytes]) -> bytes:
    """Root over leaf hashes; an odd last node is carried up unchanged. Needs >= 1 leaf."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    level = list(leaves)
    while len(level) > 1:
        nxt = [hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def merkle_root(entries: Iterable[Entry]) -> str:
    return merkle_root_of([merkle_leaf(e.name, e.dtype, e.shape, bytes.fromhex(e.sha256)) for e in entries]).hex()


# ---------------------------------------------------------------- writing

def plan_layout(specs: Iterable[tuple[str, str, Iterable[int]]]) -> tuple[list[Entry], int]:
    """(name, dtype, shape) -> entries in name order at aligned offsets, and data_bytes."""
    checked = []
    for name, dtype, shape in specs:
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise UserError(f"tensor name {str(name)[:60]!r}: accepted: 1-255 characters of A-Z a-z 0-9 _ . : / -")
        if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
            raise UserError(f"tensor {name}: dtype {str(dtype)[:16]!r}; accepted: {', '.join(DTYPE_BYTES)}")
        if (not isinstance(shape, (list, tuple)) or len(shape) > MAX_NDIM
                or any(type(d) is not int or not 0 <= d < 1 << 62 for d in shape)):
            raise UserError(f"tensor {name}: shape {str(shape)[:60]}; accepted: a list of <= {MAX_NDIM} integers >= 0")
        checked.append((name, dtype, tuple(shape)))
    entries, offset, seen = [], 0, set()
    for name, dtype, shape in sorted(checked):
        if name in seen:
            raise UserError(f"tensor name {name!r} appears twice")
        seen.add(name)
        nbytes = numel(shape) * DTYPE_BYTES[dtype]
        entries.append(Entry(name, dtype, shape, offset, nbytes))
        offset = align(offset + nbytes)
    if not entries:
        raise UserError("nothing to seal: no tensors")
    return entries, offset


def check_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not META_KEY_RE.fullmatch(key):
            raise UserError(f"metadata key {key!r}: accepted: 1-64 characters of A-Z a-z 0-9 _ . -")
        if not isinstance(value, str) or len(value) > MAX_METADATA_VALUE or not value.isascii() or not value.isprintable():
            raise UserError(f"metadata {key}: accepted: a printable ASCII string of <= {MAX_METADATA_VALUE} characters")
        out[key] = value
    return out


def _header(entries: list[Entry], data_bytes: int, metadata: Mapping[str, str], root: str) -> bytes:
    header = canonical_json({
        "alignment": ALIGN, "data_bytes": data_bytes, "format": "s7l", "merkle_root": root,
        "metadata": check_metadata(metadata), "tensors": [e.to_json() for e in entries], "version": VERSION,
    })
    if len(header) > MAX_HEADER_BYTES:
        raise UserError(f"header of {len(header)} bytes is over the {MAX_HEADER_BYTES}-byte cap; too many tensors or too much metadata")
    return header


def file_buffer(entries: list[Entry], data_bytes: int, metadata: Mapping[str, str]) -> tuple[bytearray, int]:
    """A zeroed buffer of the whole file and its data_start, for the caller to fill the tensors into.

    Digests and root are fixed-length hex, so the header's length is known before the data is
    hashed: the file is built in place, with no second copy of the data.
    """
    placeholder = [Entry(e.name, e.dtype, e.shape, e.offset, e.nbytes, "0" * 64) for e in entries]
    data_start = align(PREAMBLE_BYTES + len(_header(placeholder, data_bytes, metadata, "0" * 64)))
    return bytearray(data_start + data_bytes), data_start


def finish(buf: bytearray, data_start: int, entries: list[Entry], metadata: Mapping[str, str]) -> str:
    """Hash the filled tensors, write preamble + header into `buf`; returns the Merkle root."""
    view = memoryview(buf)
    try:
        hashed = [Entry(e.name, e.dtype, e.shape, e.offset, e.nbytes,
                        hashlib.sha256(view[data_start + e.offset:data_start + e.offset + e.nbytes]).hexdigest())
                  for e in entries]
    finally:
        view.release()
    root = merkle_root(hashed)
    header = _header(hashed, len(buf) - data_start, metadata, root)
    if align(PREAMBLE_BYTES + len(header)) != data_start:
        raise AssertionError("header length changed between layout and hashing")
    buf[:PREAMBLE_BYTES + len(header)] = PREAMBLE.pack(MAGIC, VERSION, len(header), hashlib.sha256(header).digest()) + header
    return root


def pack(tensors: Mapping[str, tuple[str, Iterable[int], bytes | bytearray | memoryview]],
         metadata: Mapping[str, str] | None = None) -> bytearray:
    """Torch-free packer: name -> (dtype, shape, little-endian bytes). Returns the file's bytes."""
    metadata = metadata or {}
    entries, data_bytes = plan_layout((name, dt, shape) for name, (dt, shape, _) in tensors.items())
    raws = {e.name: memoryview(tensors[e.name][2]).cast("B") for e in entries}
    for e in entries:  # before the buffer exists: a hostile shape must not allocate its bytes first
        if len(raws[e.name]) != e.nbytes:
            raise UserError(f"tensor {e.name}: {len(raws[e.name])} bytes given, shape {list(e.shape)} x {e.dtype} needs {e.nbytes}")
    buf, data_start = file_buffer(entries, data_bytes, metadata)
    for e in entries:
        buf[data_start + e.offset:data_start + e.offset + e.nbytes] = raws[e.name]
    finish(buf, data_start, entries, metadata)
    return buf


@dataclass(frozen=True)
class SealInfo:
    path: Path
    merkle_root: str
    file_bytes: int
    n_tensors: int


def build_sealed(tensors: Mapping[str, Any], metadata: Mapping[str, str] | None = None) -> tuple[bytearray, str, int]:
    """The .s7l bytes of torch tensors, in memory: (file bytes, Merkle root, tensor count).

    Bytes are the tensors' little-endian in-memory bytes (this host must be little-endian, as
    every x86-64 and ARM64 Linux machine is). The same tensors and metadata give the same bytes.
    """
    import torch

    if sys.byteorder != "little":
        raise UserError("sealing needs a little-endian host (the .s7l byte order)")
    names = {dt: code for code, dt in _torch_dtypes(torch).items()}
    specs = []
    for name, t in tensors.items():
        if t.dtype not in names:
            raise UserError(f"tensor {name}: torch dtype {t.dtype} has no .s7l code; accepted: {', '.join(DTYPE_BYTES)}")
        specs.append((name, names[t.dtype], tuple(t.shape)))
    entries, data_bytes = plan_layout(specs)
    metadata = metadata or {}
    buf, data_start = file_buffer(entries, data_bytes, metadata)
    dst = torch.frombuffer(buf, dtype=torch.uint8)
    # One intra-op thread: a memcpy is memory-bound, and on a shared 2-core box a 2-thread OpenMP
    # copy stalled on the descheduled thread (measured under load ~9: 70 MB/s vs 370-430 MB/s).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for e in entries:
            if e.nbytes:
                src = tensors[e.name].detach().to("cpu").contiguous().reshape(-1).view(torch.uint8)
                dst[data_start + e.offset:data_start + e.offset + e.nbytes].copy_(src)
    finally:
        torch.set_num_threads(threads)
        del dst
    return buf, finish(buf, data_start, entries, metadata), len(entries)


def seal_tensors(tensors: Mapping[str, Any], out: str | os.PathLike, metadata: Mapping[str, str] | None = None) -> SealInfo:
    """Seal torch tensors into `out`: written atomically (fsync, rename), then read-only (0o444)."""
    from engine.atomic import write_atomic

    buf, root, n = build_sealed(tensors, metadata)
    path = write_atomic(out, buf, mode=0o444)
    return SealInfo(path, root, len(buf), n)


def _torch_dtypes(torch) -> dict:
    return {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
            "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
            "BOOL": torch.bool}


# ---------------------------------------------------------------- reading

@dataclass
class Parsed:
    """A file whose preamble, header and layout passed (hashes not yet checked)."""

    version: int
    header_sha256: str
    data_start: int
    data_bytes: int
    merkle_root: str
    metadata: dict[str, str]
    entries: list[Entry] = field(default_factory=list)


def _int(value: Any, what: str, lo: int = 0, hi: int = 1 << 62) -> int:
    if type(value) is not int or not lo <= value <= hi:  # `type is`: JSON true/false are not sizes
        raise S7LError("header", f"header: {what} = {str(value)[:40]!r}; accepted: an integer in [{lo}, {hi}]")
    return value


def _parse_entry(raw: Any, i: int) -> Entry:
    if not isinstance(raw, dict) or sorted(raw) != list(ENTRY_KEYS):
        got = sorted(raw)[:8] if isinstance(raw, dict) else type(raw).__name__
        raise S7LError("header", f"header: tensors[{i}] has {got}; accepted: an object with exactly {', '.join(ENTRY_KEYS)}")
    name, dtype, sha, shape = raw["name"], raw["dtype"], raw["sha256"], raw["shape"]
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise S7LError("header", f"header: tensors[{i}].name {str(name)[:40]!r}; accepted: 1-255 of A-Z a-z 0-9 _ . : / -")
    if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
        raise S7LError("header", f"header: tensor {name}: dtype {str(dtype)[:16]!r}; accepted: {', '.join(DTYPE_BYTES)}")
    if not isinstance(sha, str) or not HEX64_RE.fullmatch(sha):
        raise S7LError("header", f"header: tensor {name}: sha256 is not 64 lowercase hex digits")
    if not isinstance(shape, list) or len(shape) > MAX_NDIM:
        raise S7LError("header", f"header: tensor {name}: shape; accepted: a list of <= {MAX_NDIM} integers")
    shape_t = tuple(_int(d, f"tensor {name} shape dim") for d in shape)
    nbytes = _int(raw["nbytes"], f"tensor {name} nbytes")
    offset = _int(raw["offset"], f"tensor {name} offset")
    if nbytes != numel(shape_t) * DTYPE_BYTES[dtype]:
        raise S7LError("header", f"header: tensor {name}: nbytes {nbytes} != shape {list(shape_t)} x {dtype} "
                                 f"({numel(shape_t) * DTYPE_BYTES[dtype]})")
    return Entry(name, dtype, shape_t, offset, nbytes, sha)


def parse_header(buf: bytes | memoryview | mmap.mmap, file_bytes: int | None = None) -> Parsed:
    """Check preamble and header of a file's bytes (`buf` may be just its first bytes).

    Raises S7LError naming the check; allocates at most the header (<= MAX_HEADER_BYTES) and
    runs no code from the file.
    """
    view = memoryview(buf)
    size = len(view) if file_bytes is None else file_bytes
    if len(view) < PREAMBLE_BYTES:
        raise S7LError("preamble", f"preamble: file is {size} bytes, shorter than the {PREAMBLE_BYTES}-byte preamble")
    magic, version, hlen, hsha = PREAMBLE.unpack_from(view, 0)
    if magic != MAGIC:
        raise S7LError("preamble", f"preamble: bad magic {magic.hex()} (an .s7l file starts with {MAGIC.hex()})")
    if version != VERSION:
        raise S7LError("preamble", f"preamble: format version {version}; this reader accepts {VERSION}")
    if not 2 <= hlen <= MAX_HEADER_BYTES:
        raise S7LError("header", f"header: length {hlen} outside [2, {MAX_HEADER_BYTES}]")
    if PREAMBLE_BYTES + hlen > len(view):
        raise S7LError("header", f"header: {hlen} bytes declared, file is only {size} bytes (truncated)")
    raw = bytes(view[PREAMBLE_BYTES:PREAMBLE_BYTES + hlen])
    if hashlib.sha256(raw).digest() != hsha:
        raise S7LError("header", "header: SHA-256 of the header bytes does not match the preamble (header corrupted or edited)")
    try:
        header = json.loads(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise S7LError("header", f"header: not ASCII JSON ({type(exc).__name__})") from None
    if not isinstance(header, dict) or sorted(header) != list(HEADER_KEYS):
        got = sorted(header)[:10] if isinstance(header, dict) else type(header).__name__
        raise S7LError("header", f"header: top-level keys {got}; accepted: exactly {', '.join(HEADER_KEYS)}")
    if header["format"] != "s7l" or header["version"] != version or header["alignment"] != ALIGN:
        raise S7LError("header", f"header: format/version/alignment = {str(header['format'])[:10]!r}/{str(header['version'])[:10]}/"
                                 f"{str(header['alignment'])[:10]}; accepted: 's7l'/{VERSION}/{ALIGN}")
    root = header["merkle_root"]
    if not isinstance(root, str) or not HEX64_RE.fullmatch(root):
        raise S7LError("header", "header: merkle_root is not 64 lowercase hex digits")
    meta = header["metadata"]
    if not isinstance(meta, dict):
        raise S7LError("header", "header: metadata is not an object")
    try:
        meta = check_metadata(meta)
    except UserError as exc:
        raise S7LError("header", f"header: {exc}") from None
    tensors = header["tensors"]
    if not isinstance(tensors, list) or not tensors:
        raise S7LError("header", "header: tensors; accepted: a non-empty list")
    entries = [_parse_entry(t, i) for i, t in enumerate(tensors)]
    data_bytes = _int(header["data_bytes"], "data_bytes")
    if canonical_json(header) != raw:  # one byte form per header: no whitespace, order or escape freedom
        raise S7LError("header", "header: JSON is not in canonical form (sorted keys, no whitespace, ASCII escapes)")
    return Parsed(version, hsha.hex(), align(PREAMBLE_BYTES + hlen), data_bytes, root, meta, entries)


def check_layout(p: Parsed, view: memoryview | bytes, file_bytes: int, done: list | None = None) -> list[tuple[str, str]]:
    """order (V0), alignment, bounds, padding; each passed check is appended to `done` as
    (check, detail) as soon as it passes; raises S7LError at the first failure."""
    done = [] if done is None else done
    names = [e.name for e in p.entries]
    for a, b in zip(names, names[1:]):
        if not a < b:
            raise S7LError("order", f"order (V0): tensor {b!r} comes after {a!r}; tensors must be in strictly increasing name order")
    done.append(("order", f"{len(names)} tensors in lexicographic name order"))
    for e in p.entries:
        if e.offset % ALIGN:
            raise S7LError("alignment", f"alignment: tensor {e.name} at data offset {e.offset}, not a multiple of {ALIGN}")
    done.append(("alignment", f"every tensor at a multiple of {ALIGN} bytes (data starts at byte {p.data_start})"))
    expected = 0
    for e in p.entries:
        if e.offset != expected:
            how = "overlaps the previous tensor" if e.offset < expected else "leaves a gap after the previous tensor"
            raise S7LError("bounds", f"bounds: tensor {e.name} at data offset {e.offset} {how} (expected {expected})")
        expected = align(e.offset + e.nbytes)
    if p.data_bytes != expected:
        raise S7LError("bounds", f"bounds: header data_bytes {p.data_bytes} != {expected} (the padded end of the last tensor)")
    want = p.data_start + p.data_bytes
    if file_bytes != want:
        what = "truncated" if file_bytes < want else "extended"
        raise S7LError("bounds", f"bounds: file is {file_bytes} bytes, the header describes {want} ({what})")
    done.append(("bounds", f"tensors contiguous in order, file length exactly {want} bytes"))
    hlen = struct.unpack_from("<I", view, 12)[0]
    gaps = [("header", PREAMBLE_BYTES + hlen, p.data_start)]
    gaps += [(e.name, p.data_start + e.offset + e.nbytes, p.data_start + align(e.offset + e.nbytes)) for e in p.entries]
    for owner, lo, hi in gaps:
        if hi > lo and any(view[lo:hi]):
            raise S7LError("padding", f"padding: non-zero byte in the padding after {owner} (bytes {lo}..{hi})")
    done.append(("padding", "every padding byte is zero"))
    return done


def check_hashes(p: Parsed, view: memoryview, done: list | None = None) -> list[tuple[str, str]]:
    """tensor_hashes, then merkle_root (same `done` convention as check_layout)."""
    done = [] if done is None else done
    leaves = []
    for e in p.entries:
        lo = p.data_start + e.offset
        digest = hashlib.sha256(view[lo:lo + e.nbytes]).digest()
        if digest.hex() != e.sha256:
            raise S7LError("tensor_hashes", f"tensor_hashes: tensor {e.name}: SHA-256 of its bytes is {digest.hex()[:16]}.., header says {e.sha256[:16]}..")
        leaves.append(merkle_leaf(e.name, e.dtype, e.shape, digest))
    done.append(("tensor_hashes", f"{len(leaves)} tensor SHA-256 digests match"))
    root = merkle_root_of(leaves).hex()
    if root != p.merkle_root:
        raise S7LError("merkle_root", f"merkle_root: computed {root[:16]}.., header says {p.merkle_root[:16]}.. (tensor hashes rewritten?)")
    done.append(("merkle_root", root))
    return done


@dataclass
class Report:
    """verify()'s answer: ok, the checks in order, the first failure (check + one line)."""

    path: str
    ok: bool
    checks: list[dict]
    failure: str | None = None
    failed_check: str | None = None
    merkle_root: str | None = None
    header_sha256: str | None = None
    file_bytes: int = 0
    n_tensors: int = 0
    metadata: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"path": self.path, "ok": self.ok, "failed_check": self.failed_check, "failure": self.failure,
                "merkle_root": self.merkle_root, "header_sha256": self.header_sha256, "file_bytes": self.file_bytes,
                "n_tensors": self.n_tensors, "checks": self.checks}


def _map(path: Path):
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise UserError(f"{path}: cannot open ({exc.strerror})") from None
    size = os.fstat(fh.fileno()).st_size
    mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else None
    return fh, mm, size


def verify(path: str | os.PathLike, determinism: bool = True) -> Report:
    """Run every check in CHECKS order (then V6 determinism where the file holds a model).

    Stops at the first failure; later checks are listed as not run. A missing/unreadable path
    raises UserError (that is a usage error, not a bad file).
    """
    path = Path(path)
    fh, mm, size = _map(path)
    report = Report(str(path), False, [], file_bytes=size)

    passed: list[tuple[str, str]] = []  # filled by the checks as they pass, so a failure keeps them
    try:
        view = memoryview(mm) if mm is not None else memoryview(b"")
        try:
            p = parse_header(view, size)
            report.header_sha256, report.n_tensors, report.metadata = p.header_sha256, len(p.entries), p.metadata
            passed += [("preamble", f"magic ok, format version {p.version}"),
                       ("header", f"{len(p.entries)} tensors, canonical JSON, SHA-256 {p.header_sha256[:16]}..")]
            check_layout(p, view, size, passed)
            check_hashes(p, view, passed)
            report.merkle_root = p.merkle_root
        except S7LError as exc:
            report.failure, report.failed_check = str(exc), exc.check
            if exc.check == "header":  # parse_header checks the preamble first: it passed
                passed.append(("preamble", f"magic ok, format version {VERSION}"))
        finally:
            view.release()
            report.checks.extend({"check": c, "ok": True, "detail": d} for c, d in passed)
    finally:
        if mm is not None:
            mm.close()
        fh.close()
    if report.failure is None and determinism:
        kind = report.metadata.get("kind")
        if kind in V6_CHECKS:  # torch is imported only when the file holds a model we can run
            check = V6_CHECKS[kind](path, report.metadata)
        else:
            check = {"check": "V6_determinism", "ok": None, "detail": f"n/a: metadata kind {kind!r} is not a model this build runs"}
        report.checks.append(check)
        if check["ok"] is False:
            report.failure, report.failed_check = check["detail"], check["check"]
    ran = {c["check"] for c in report.checks}
    if report.failed_check and report.failed_check not in ran:
        report.checks.append({"check": report.failed_check, "ok": False, "detail": report.failure})
        ran.add(report.failed_check)
    report.checks.extend({"check": c, "ok": None, "detail": "not run"} for c in CHECKS if c not in ran)
    report.ok = report.failure is None
    return report


def read_checked(path: str | os.PathLike) -> tuple[Parsed, bytearray]:
    """The file's bytes after every format check (preamble .. merkle_root) passed."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(min(size, PREAMBLE_BYTES + MAX_HEADER_BYTES))
            p = parse_header(head, size)  # bounded: the header is checked before the data is read
            buf = bytearray(size)
            fh.seek(0)
            if fh.readinto(buf) != size:
                raise S7LError("bounds", f"bounds: {path} changed size while being read")
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    view = memoryview(buf)
    try:
        check_layout(p, view, size)
        check_hashes(p, view)
    finally:
        view.release()
    return p, buf


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, str]]:
    """Every tensor as a torch tensor (sharing one verified buffer), and the metadata."""
    import torch

    p, buf = read_checked(path)
    dtypes = _torch_dtypes(torch)
    out = {}
    for e in p.entries:
        if e.nbytes:
            t = torch.frombuffer(buf, dtype=dtypes[e.dtype], count=numel(e.shape), offset=p.data_start + e.offset)
            out[e.name] = t.view(e.shape)
        else:
            out[e.name] = torch.empty(e.shape, dtype=dtypes[e.dtype])
    return out, p.metadata
