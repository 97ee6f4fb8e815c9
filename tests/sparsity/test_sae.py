"""SAE: recovers a planted sparse dictionary; metric formulas against hand-computed values; the
80/20 split never shares a window; folding the input scale keeps the SAE's function."""

from __future__ import annotations

import math

import pytest
import torch

from engine.runtime.sparsity.sae import (SAE, SAEConfig, ce_loss_recovered, explained_variance, fold_scale,
                                         normalisation_scale, reconstruction_metrics, split_windows, train_one)


def _synthetic(n=5000, d=16, atoms=32, active=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    D = torch.randn(atoms, d, generator=g)
    D = D / D.norm(dim=1, keepdim=True)
    codes = torch.zeros(n, atoms)
    idx = torch.stack([torch.randperm(atoms, generator=g)[:active] for _ in range(n)])
    codes.scatter_(1, idx, 0.5 + torch.rand(n, active, generator=g))
    return codes @ D, D


@pytest.mark.slow  # ~1 min on an idle 2-core CPU
def test_recovers_a_planted_sparse_dictionary():
    x, D = _synthetic()
    x_train, x_val = x[:4000], x[4000:]
    s = normalisation_scale(x_train)
    cfg = SAEConfig(expansion=4, lr=3e-3, batch_tokens=256, max_steps=800, eval_every=100, patience=4, seed=0)
    state, _ = train_one(x_train * s, x_val * s, 64, 0.1, cfg)
    sae = SAE.from_state(fold_scale(state, s))
    dec = sae.W_dec.detach()
    cos = (D @ (dec / dec.norm(dim=1, keepdim=True)).T).max(dim=1).values
    assert (cos > 0.9).float().mean() >= 0.9, cos
    m = reconstruction_metrics(sae, x_val)
    assert m["explained_variance"] > 0.7 and m["l0"] < 8  # 3 atoms per sample; a strong L1 trades some EV for sparsity


def test_explained_variance_hand_value():
    x = torch.tensor([[1.0, 0.0], [3.0, 2.0]])  # E||x||^2 = (1 + 13) / 2 = 7, ||E x||^2 = 4 + 1 = 5 -> var 2
    x_hat = torch.tensor([[1.0, 1.0], [3.0, 2.0]])  # E||x - x_hat||^2 = 0.5
    assert abs(explained_variance(x, x_hat) - (1 - 0.5 / 2)) < 1e-12
    assert explained_variance(x, x) == 1.0


def test_ce_loss_recovered_and_metrics_hand_values():
    assert ce_loss_recovered(2.0, 2.5, 4.0) == 0.75  # (4 - 2.5) / (4 - 2)
    assert ce_loss_recovered(2.0, 2.0, 4.0) == 1.0
    assert math.isnan(ce_loss_recovered(2.0, 2.1, 2.0))
    sae = SAE(2, 3)
    with torch.no_grad():
        sae.W_enc.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
        sae.W_dec.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    x = torch.tensor([[1.0, 0.0], [2.0, -1.0]])  # f = relu(x): [1, 0, 0], [2, 0, 0]; x_hat = [1, 0], [2, 0]
    m = reconstruction_metrics(sae, x)
    assert m["l0"] == 1.0 and m["dead_frac"] == 2 / 3 and m["mse"] == 1 / 4


def test_split_keeps_windows_whole_and_disjoint():
    wins = torch.arange(50).repeat_interleave(7)  # 50 windows of 7 tokens
    tr, va = split_windows(wins, seed=3)
    assert len(tr) + len(va) == len(wins)
    assert set(wins[tr].tolist()).isdisjoint(set(wins[va].tolist()))
    assert len(set(wins[va].tolist())) == 10  # 20 % of the windows
    tr2, va2 = split_windows(wins, seed=3)
    assert torch.equal(tr, tr2) and torch.equal(va, va2)
    assert not torch.equal(va, split_windows(wins, seed=4)[1])


def test_fold_scale_keeps_the_function():
    torch.manual_seed(0)
    sae = SAE(8, 16)
    sae.init(torch.Generator().manual_seed(0), torch.randn(8))
    x = torch.randn(5, 8) * 7
    s = 0.37
    folded = SAE.from_state(fold_scale(sae.state(), s))
    with torch.no_grad():
        x_hat, f = sae(x * s)
        x_hat2, f2 = folded(x)
    torch.testing.assert_close(f, f2)
    torch.testing.assert_close(x_hat / s, x_hat2)
