"""Byte-level data: caching, split, sampling determinism, errors."""

from __future__ import annotations

import pytest
import torch

from engine.errors import UserError
from engine.runtime.train import data as D


def test_encode_decode_round_trip():
    text = "héllo, wörld\n"
    assert D.decode(D.encode(text)) == text
    assert max(D.encode(text)) < D.BYTE_VOCAB


def test_file_to_split_and_cache(tmp_path):
    src = tmp_path / "a.txt"
    src.write_bytes(bytes(range(256)) * 40)  # 10,240 bytes
    td = D.load_tokens(str(src), cache_dir=tmp_path / "cache", val_fraction=0.1)
    assert len(td.train) + len(td.val) == 10240 and len(td.val) == 1024
    assert bytes(td.train[:256]) == bytes(range(256))
    again = D.load_tokens(str(src), cache_dir=tmp_path / "cache", val_fraction=0.1)
    assert again.cache_dir == td.cache_dir
    src.write_bytes(b"x" * 5000)  # edited corpus -> new cache entry
    assert D.load_tokens(str(src), cache_dir=tmp_path / "cache").cache_dir != td.cache_dir


def test_folder_skips_hidden_and_binary(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.txt").write_text("bbbb")
    (tmp_path / "d" / "a.md").write_text("aaaa")
    (tmp_path / "d" / ".hidden").write_text("hhhh")
    (tmp_path / "d" / "blob.bin").write_bytes(b"\0\1\2")
    td = D.load_tokens(str(tmp_path / "d"), cache_dir=tmp_path / "c", val_fraction=0.25)
    assert td.n_files == 2
    assert bytes(td.train) + bytes(td.val) == b"aaaabbbb"


def test_stdlib_corpus_exists():
    files = D.stdlib_files()
    assert len(files) > 100 and all(f.suffix == ".py" for f in files)


def test_batches_are_deterministic_and_shifted(tmp_path):
    src = tmp_path / "t.txt"
    src.write_text("the quick brown fox jumps over the lazy dog. " * 50)
    td = D.load_tokens(str(src), cache_dir=tmp_path / "c")
    x, y = td.batch("train", 4, 16, seed=1, step=3)
    x2, y2 = td.batch("train", 4, 16, seed=1, step=3)
    assert x.shape == (4, 16) and x.dtype == torch.int64
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert not torch.equal(td.batch("train", 4, 16, seed=1, step=4)[0], x)
    assert not torch.equal(td.batch("train", 4, 16, seed=1, step=3, rank=1)[0], x)


def test_missing_empty_and_too_short_data(tmp_path):
    with pytest.raises(UserError, match="no such file or directory"):
        D.load_tokens(str(tmp_path / "nope.txt"), cache_dir=tmp_path / "c")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(UserError, match="empty"):
        D.load_tokens(str(tmp_path / "empty.txt"), cache_dir=tmp_path / "c")
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(UserError, match="no text files"):
        D.load_tokens(str(tmp_path / "emptydir"), cache_dir=tmp_path / "c")
    (tmp_path / "short.txt").write_text("x" * 100)
    td = D.load_tokens(str(tmp_path / "short.txt"), cache_dir=tmp_path / "c")
    with pytest.raises(UserError, match="longer than the data"):
        td.check_seq_len(64)
    td.check_seq_len(8)
