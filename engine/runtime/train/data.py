"""Training data: a byte-level tokenizer, a corpus -> token memmap cache, and batch sampling.

Tokenizer: the UTF-8 bytes of the text are the tokens (vocab 256, nothing to download or train);
a model with a larger vocabulary simply never sees ids >= 256.

Corpus: a text file, a folder of text files (every regular, non-hidden file without a NUL byte in
its first 8 KiB, in sorted path order), or "stdlib": the Python standard library's own .py sources
on this machine (~11 MB on CPython 3.11), so `lsdt train` runs with no data at all. The bytes are
concatenated; the first (1 - val_fraction) form the train split and the rest the val split, written
once to <cache>/<key>/{train,val}.bin (uint8) and memory-mapped after that. The cache key hashes the
source's paths, sizes and mtimes, so an edited corpus is re-tokenized.

Sampling: batch `step` of rank `rank` draws its window offsets from a generator seeded with
(seed, step, rank, micro-batch), so the data order does not depend on history: a resumed run sees
exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import os
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.atomic import current_umask
from engine.errors import UserError

BYTE_VOCAB = 256
STDLIB = "stdlib"
_BINARY_SNIFF_BYTES = 8192
_SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__", "test", "tests", "idlelib"}
VAL_SEED = 0x5EED_0FA1  # eval windows are fixed across runs and seeds, so val losses compare


def default_cache_dir() -> Path:
    """$LSDT_CACHE_DIR, else $XDG_CACHE_HOME/lsdt, else ~/.cache/lsdt; token files live in data/ there."""
    if os.environ.get("LSDT_CACHE_DIR"):
        return Path(os.environ["LSDT_CACHE_DIR"]) / "data"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "lsdt" / "data"


def stdlib_files() -> list[Path]:
    """The standard library's .py files (no tests, no site-packages), sorted."""
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(f for f in root.rglob("*.py") if not _SKIP_DIRS.intersection(f.relative_to(root).parts) and f.is_file())


def _is_text(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return b"\0" not in fh.read(_BINARY_SNIFF_BYTES)
    except OSError:
        return False


def corpus_files(source: str, given: str | None = None) -> list[Path]:
    """The files a --data value names, in a fixed order; UserError when there are none.
    `given` is how errors name the value (default `--data SOURCE`; `--domains code=PATH` for a MoE domain)."""
    given = given or f"--data {source}"
    if source == STDLIB:
        files = stdlib_files()
        if not files:
            raise UserError(f"{given}: no Python standard-library sources found on this machine; give a PATH")
        return files
    path = Path(source).expanduser()
    if not path.exists():
        raise UserError(f"{given}: no such file or directory")
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise UserError(f"{given}: not a regular file or directory")
    files = sorted(
        f for f in path.rglob("*")
        if f.is_file() and not any(part.startswith(".") for part in f.relative_to(path).parts) and _is_text(f)
    )
    if not files:
        raise UserError(f"{given}: the directory holds no text files (hidden and binary files are skipped)")
    return files


@dataclass(frozen=True)
class TokenData:
    """A tokenized corpus: train and val token arrays (memory-mapped) and where they came from."""

    train: np.ndarray
    val: np.ndarray
    vocab_size: int
    source: str
    cache_dir: Path
    n_files: int

    def describe(self) -> str:
        return f"{self.source}: {self.n_files} file(s), {len(self.train):,} train + {len(self.val):,} val tokens (bytes)"

    def check_seq_len(self, seq_len: int) -> None:
        """A window of seq_len + 1 tokens (inputs and shifted targets) must fit in each split."""
        for split, arr in (("train", self.train), ("val", self.val)):
            if len(arr) < seq_len + 1:
                raise UserError(
                    f"--seq {seq_len} is longer than the data: the {split} split of {self.source} has {len(arr):,} tokens, "
                    f"a sequence needs {seq_len + 1:,}; accepted: --seq <= {len(arr) - 1} or more data"
                )

    def batch(self, split: str, batch_size: int, seq_len: int, *, seed: int, step: int, rank: int = 0, micro: int = 0):
        """(x, y) int64 torch tensors [batch_size, seq_len] on the CPU; y is x shifted by one token."""
        import torch

        arr = self.train if split == "train" else self.val
        rng = np.random.default_rng([seed, step, rank, micro])
        offsets = rng.integers(0, len(arr) - seq_len, size=batch_size)
        windows = arr[offsets[:, None] + np.arange(seq_len + 1)].astype(np.int64)
        t = torch.from_numpy(windows)
        return t[:, :-1], t[:, 1:]


def _cache_key(source: str, files: list[Path], val_fraction: float) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"tokenizer": "bytes", "val_fraction": val_fraction, "source": source}).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def _write_split(files: list[Path], n_train: int, out_dir: Path) -> None:
    """Stream the files' bytes into train.bin (first n_train) and val.bin, each renamed into place."""
    fds = {}
    try:
        for name in ("train", "val"):
            fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=".tmp")
            os.fchmod(fd, 0o666 & ~current_umask())  # a shared cache: the umask decides, not mkstemp's 0600
            fds[name] = (os.fdopen(fd, "wb"), tmp)
        written = 0
        for f in files:
            data = f.read_bytes()
            cut = max(0, min(len(data), n_train - written))
            fds["train"][0].write(data[:cut])
            fds["val"][0].write(data[cut:])
            written += len(data)
        for name, (fh, tmp) in fds.items():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            os.replace(tmp, out_dir / f"{name}.bin")
    finally:
        for fh, tmp in fds.values():
            if not fh.closed:
                fh.close()
            if os.path.exists(tmp):
                os.unlink(tmp)


def load_tokens(source: str = STDLIB, cache_dir: str | os.PathLike | None = None, val_fraction: float = 0.1) -> TokenData:
    """Tokenize `source` once into the cache, then memory-map it."""
    if not 0 < val_fraction < 1:
        raise UserError(f"--val-fraction {val_fraction}; accepted: a number in (0, 1)")
    files = corpus_files(source)
    total = sum(f.stat().st_size for f in files)
    if total == 0:
        raise UserError(f"--data {source}: empty (0 bytes of text)")
    n_val = max(1, int(total * val_fraction))
    n_train = total - n_val
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    out = root / _cache_key(source, files, val_fraction)
    meta_path = out / "meta.json"
    if not meta_path.is_file():
        try:
            out.mkdir(parents=True, exist_ok=True)
            _write_split(files, n_train, out)
        except OSError as exc:
            raise UserError(f"data cache {out}: cannot write ({exc.strerror}); set --data-cache DIR") from None
        from engine.atomic import write_atomic

        write_atomic(meta_path, json.dumps({
            "source": source, "files": len(files), "train_tokens": n_train, "val_tokens": n_val,
            "tokenizer": "bytes", "vocab_size": BYTE_VOCAB, "dtype": "uint8",
        }, indent=1))
    train = np.memmap(out / "train.bin", dtype=np.uint8, mode="r")
    val = np.memmap(out / "val.bin", dtype=np.uint8, mode="r")
    if len(train) != n_train or len(val) != n_val:
        raise UserError(f"data cache {out} is inconsistent (a file changed while caching?); delete it and retry")
    return TokenData(train, val, BYTE_VOCAB, source, out, len(files))


def encode(text: str) -> list[int]:
    """Text -> byte tokens."""
    return list(text.encode("utf-8"))


def decode(tokens) -> str:
    """Byte tokens -> text (invalid UTF-8 sequences are replaced, as a sampler may emit them)."""
    return bytes(int(t) for t in tokens).decode("utf-8", errors="replace")
