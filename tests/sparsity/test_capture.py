"""Capture: streaming statistics equal a one-shot computation; hooks leave the model's outputs
bitwise unchanged; the metric formulas on hand-computed cases; memory does not grow with tokens."""

from __future__ import annotations

import numpy as np
import torch

from engine.runtime.model import GPT, GPTConfig
from engine.runtime.sparsity.capture import RunningStats, mlp_hooks, participation_ratio
from engine.runtime.sparsity.sources import Layer


def _data(n=600, d=12, K=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.relu(torch.randn(n, d, generator=g) + 0.2 * torch.arange(d))
    task = torch.randint(0, K, (n,), generator=g)
    null = task[torch.randperm(n, generator=g)]
    return x, task, null


def test_streaming_equals_one_shot():
    x, task, null = _data()
    streamed = RunningStats(12, 3)
    for lo in range(0, len(x), 37):  # uneven batches
        streamed.update(x[lo: lo + 37], task[lo: lo + 37], null[lo: lo + 37])
    a = x.double().numpy()
    on = a > 0
    cov = np.cov(a, rowvar=False, bias=True)
    assert streamed.n == len(x)
    np.testing.assert_allclose(streamed.covariance(), cov, rtol=1e-5, atol=1e-6)  # float32 within a batch
    assert streamed.frac() == on.mean()
    assert streamed.dead() == (~on.any(0)).mean()
    np.testing.assert_allclose(streamed.pr(), np.trace(cov) ** 2 / (cov ** 2).sum(), rtol=1e-5)
    for k in range(3):
        np.testing.assert_array_equal(streamed.task_active[k], on[task.numpy() == k].sum(0))
        assert streamed.task_tokens[k] == (task.numpy() == k).sum()
    np.testing.assert_array_equal(streamed.coactive, on.T.astype(float) @ on.astype(float))


def test_strided_covariance_sample_equals_one_shot_on_the_same_tokens():
    x, task, null = _data(n=500)
    streamed = RunningStats(12, 3, pr_stride=3)
    for lo in range(0, len(x), 37):  # batch edges do not line up with the stride
        streamed.update(x[lo: lo + 37], task[lo: lo + 37], null[lo: lo + 37])
    sample = x[::3].double().numpy()
    np.testing.assert_allclose(streamed.covariance(), np.cov(sample, rowvar=False, bias=True), rtol=1e-5, atol=1e-6)
    assert streamed.n == 500 and streamed.n_cov == len(sample)
    assert streamed.frac() == (x.numpy() > 0).mean()  # every token, not the sample


def test_participation_ratio_hand_cases():
    assert participation_ratio(np.eye(5)) == 5.0  # every direction the same variance
    v = np.array([1.0, 2.0, 2.0])
    assert abs(participation_ratio(np.outer(v, v)) - 1.0) < 1e-12  # one direction
    assert participation_ratio(np.diag([3.0, 1.0])) == 16.0 / 10.0  # (3 + 1)^2 / (9 + 1)
    assert np.isnan(participation_ratio(np.zeros((3, 3))))


def test_frac_and_dead_hand_values():
    s = RunningStats(4, 2)
    x = torch.tensor([[1.0, 0.0, -1.0, 0.0], [2.0, 0.5, 0.0, 0.0]])
    s.update(x, torch.tensor([0, 1]), torch.tensor([1, 0]))
    assert s.frac() == 3 / 8
    assert s.dead() == 2 / 4  # neurons 2 and 3 never > 0
    t = RunningStats(4, 2, threshold=0.75)
    t.update(x, torch.tensor([0, 1]), torch.tensor([1, 0]))
    assert t.frac() == 2 / 8


def test_memory_does_not_grow_with_tokens():
    small, big = RunningStats(16, 4), RunningStats(16, 4)
    for n, s in ((100, small), (10_000, big)):
        x, task, null = _data(n, 16, 4)
        s.update(x, task, null)
    assert small.nbytes() == big.nbytes() > 0


def test_hooks_leave_outputs_bitwise_unchanged():
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, d_model=32, n_head=2, d_ff=64, seq_len=16, ffn="swiglu")).eval()
    idx = torch.randint(0, 256, (2, 16))
    with torch.no_grad():
        before = model(idx)[0]
        layers = [Layer(str(i), b.mlp.down, 64) for i, b in enumerate(model.blocks)]
        seen = []
        with mlp_hooks(layers, lambda layer, act: seen.append(act.clone())):
            during = model(idx)[0]
        after = model(idx)[0]
    assert len(seen) == 2 and seen[0].shape == (2, 16, 64)
    assert torch.equal(before, during) and torch.equal(before, after)
    assert all(not b.mlp.down._forward_pre_hooks for b in model.blocks)  # removed


def test_device_sums_flushed_across_many_batches_equal_one_shot(monkeypatch):
    """float32 sums on the device, flushed to float64 every FLUSH_TOKENS (a small value here so the
    flush falls mid-batch-sequence), an odd width (the Gram's block rows are uneven) and a mean
    1000x the spread (raw E[x x^T] - m m^T in float32 would keep no digit of the covariance)."""
    import engine.runtime.sparsity.capture as cap

    monkeypatch.setattr(cap, "FLUSH_TOKENS", 100)
    g = torch.Generator().manual_seed(1)
    n, d = 1500, 13
    x = 1000.0 + torch.randn(n, d, generator=g) * torch.linspace(0.5, 2.0, d)
    x[:, 0] = torch.relu(torch.randn(n, generator=g))  # one sparse neuron for the counts
    task = torch.randint(0, 2, (n,), generator=g)
    s = cap.RunningStats(d, 2, threshold=0.0)
    for lo in range(0, n, 41):
        s.update(x[lo: lo + 41], task[lo: lo + 41], task[lo: lo + 41])
    a = x.double().numpy()
    cov = np.cov(a, rowvar=False, bias=True)
    np.testing.assert_allclose(s.covariance(), cov, rtol=1e-4, atol=1e-4 * cov.diagonal().max())
    on = a > 0
    np.testing.assert_array_equal(s.active, on.sum(0))
    np.testing.assert_array_equal(s.coactive, on.T.astype(float) @ on.astype(float))  # symmetric, mirrored
    assert s.task_tokens.sum() == n


def test_gram_upper_blocks_mirror_to_the_full_product():
    from engine.runtime.sparsity.capture import add_gram_upper, mirror_gram_upper

    for d in (1, 3, 13, 64):
        a = torch.randn(20, d)
        acc = torch.zeros(d, d)
        add_gram_upper(acc, a)
        full = acc.double().numpy()
        mirror_gram_upper(full)
        np.testing.assert_allclose(full, (a.T @ a).double().numpy(), rtol=1e-5, atol=1e-5)
