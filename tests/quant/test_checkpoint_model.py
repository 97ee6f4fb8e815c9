"""The model quantize rebuilds from a checkpoint is the architecture the run trained."""

from __future__ import annotations

import argparse

import torch

from engine.runtime.train.checkpoint import write_checkpoint
from engine.runtime.model import GPT, GPTConfig
from engine.runtime.seal.quantize_ckpt import load_checkpoint, model_from_checkpoint
from engine.runtime.train.config import add_arguments, resolve_config


def test_rope_base_qk_norm_and_init_std_come_back_from_the_checkpoint(tmp_path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    run_dir = tmp_path / "run"
    args = parser.parse_args(["--steps", "2", "--warmup", "0", "--seq", "32", "--rope-base", "500", "--qk-norm",
                              "--init-std", "0.01", "--run-dir", str(run_dir)])
    cfg = resolve_config(args)
    torch.manual_seed(0)
    trained = GPT(GPTConfig.from_spec(cfg.spec, dropout=cfg.dropout, **cfg.model_options())).eval()
    write_checkpoint(run_dir, 3, {"step": 3, "tokens": 0, "elapsed_s": 0.0, "model": trained.state_dict(), "config": cfg.to_dict()})

    state, path = load_checkpoint(run_dir)
    model, _ = model_from_checkpoint(state, str(path))
    assert (model.config.rope_base, model.config.qk_norm, model.config.init_std) == (500.0, True, 0.01)
    x = torch.randint(0, 256, (1, 32))
    assert torch.equal(model(x)[0], trained(x)[0])  # the same function, RoPE tables included
