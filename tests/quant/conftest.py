"""Tiny GPTs and a tiny checkpoint for the quantization tests (seconds on 2 CPU cores)."""

from __future__ import annotations

import argparse

import pytest
import torch

from engine.runtime.model import GPT, GPTConfig

VOCAB, SEQ = 64, 32


def tiny_gpt(tie: bool = False, ffn: str = "swiglu", seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=VOCAB, seq_len=SEQ, n_layer=2, d_model=64, n_head=2, tie_embeddings=tie, ffn=ffn)).eval()


def token_batches(n: int, seed: int, batch: int = 2):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, VOCAB, (batch, SEQ + 1), generator=g) for _ in range(n)]


@pytest.fixture
def calib():
    return [b[:, :-1] for b in token_batches(3, seed=1)]


@pytest.fixture
def heldout():
    return [(b[:, :-1], b[:, 1:]) for b in token_batches(4, seed=2)]


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """A checkpoint written with the trainer's own config and checkpoint code (step 0, random init)."""
    from engine.runtime.train.checkpoint import write_checkpoint
    from engine.runtime.train.config import add_arguments, resolve_config

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"line {i}: the quick brown fox jumps over the lazy dog {i * 7 % 13}\n" for i in range(600)))
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    run_dir = tmp_path / "run"
    args = parser.parse_args(["--steps", "2", "--warmup", "0", "--seq", "32", "--data", str(corpus),
                              "--data-cache", str(tmp_path / "cache"), "--run-dir", str(run_dir)])
    cfg = resolve_config(args)
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_spec(cfg.spec, dropout=cfg.dropout, **cfg.model_options()))
    write_checkpoint(run_dir, 7, {"step": 7, "tokens": 0, "elapsed_s": 0.0, "model": model.state_dict(), "config": cfg.to_dict()})
    return run_dir
