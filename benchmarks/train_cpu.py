"""CPU throughput of `lsdt train` against a plain PyTorch training loop of the same model.

Target (issue #6): tokens/s of `lsdt train` / tokens/s of a straightforward loop >= 1.0, with the
same model (engine.runtime.model.GPT built from the same spec), dtype (fp32), batch, sequence
length and thread count. The plain loop is what one writes first: index random windows out of a
token tensor, forward, backward, clip, AdamW step (torch's default implementation), zero_grad.
`lsdt train` is run through its real entry point (engine.runtime.train.main, what `lsdt train`
calls), so its figure includes data sampling, logging, metrics writing and LR scheduling.

Trials alternate (lsdt, plain, lsdt, plain, ...) so a shared, noisy machine hits both alike; the
figure is the median of the per-pair ratios. tokens/s of lsdt train is read from its metrics.jsonl,
skipping the first interval (warm-up), exactly as a user would read it.

    python benchmarks/train_cpu.py [--steps 60] [--trials 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from engine.runtime import rundir
from engine.runtime.data import load_tokens
from engine.runtime.model import GPT, GPTConfig
from engine.runtime.train import main as train_main
from engine.runtime.train_config import DEFAULTS, TINY_MODEL
from engine.specs import ModelSpec


def lsdt_tok_per_s(work: Path, trial: int, steps: int, threads: int, log_every: int) -> float:
    run = work / f"lsdt-{trial}"
    code = train_main([
        "--run-dir", str(run), "--steps", str(steps), "--threads", str(threads), "--device", "cpu",
        "--log-every", str(log_every), "--eval-every", str(10 * steps), "--ckpt-every", str(10 * steps),
        "--data-cache", str(work / "cache"),
    ])
    assert code == 0
    m = rundir.read_metrics(run)[1:]  # skip the warm-up interval
    return sum(r["tok_per_s"] for r in m) / len(m)


def plain_tok_per_s(work: Path, steps: int, threads: int, warmup_steps: int) -> float:
    torch.set_num_threads(threads)
    spec = ModelSpec(**TINY_MODEL)
    data = load_tokens("stdlib", work / "cache")
    tokens = torch.from_numpy(data.train[:].astype("int64"))
    B, T = DEFAULTS["device_batch"], spec.seq_len
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_spec(spec))
    opt = torch.optim.AdamW(model.parameters(), lr=DEFAULTS["lr"], betas=(DEFAULTS["beta1"], DEFAULTS["beta2"]),
                            weight_decay=DEFAULTS["weight_decay"])
    t0 = None
    for step in range(steps):
        if step == warmup_steps:
            t0 = time.perf_counter()
        ix = torch.randint(len(tokens) - T - 1, (B,))
        x = torch.stack([tokens[i:i + T] for i in ix])
        y = torch.stack([tokens[i + 1:i + 1 + T] for i in ix])
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), DEFAULTS["grad_clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()  # a plain loop prints its loss
    return (steps - warmup_steps) * B * T / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    a = p.parse_args()
    log_every = max(1, a.steps // 6)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ratios, ours, plain = [], [], []
        for trial in range(a.trials):
            ours.append(lsdt_tok_per_s(work, trial, a.steps, a.threads, log_every))
            plain.append(plain_tok_per_s(work, a.steps, a.threads, warmup_steps=log_every))
            ratios.append(ours[-1] / plain[-1])
            print(f"trial {trial}: lsdt train {ours[-1]:,.0f} tok/s   plain loop {plain[-1]:,.0f} tok/s   ratio {ratios[-1]:.3f}", flush=True)
    spec = ModelSpec(**TINY_MODEL)
    print(f"model {spec.name}: {spec.n_layer} layers x {spec.d_model}, seq {spec.seq_len}, batch {DEFAULTS['device_batch']}, "
          f"fp32, {a.threads} threads, torch {torch.__version__}")
    print(f"median tokens/s: lsdt train {statistics.median(ours):,.0f}, plain loop {statistics.median(plain):,.0f}")
    print(f"ratio lsdt/plain (median of {a.trials} paired trials): {statistics.median(ratios):.3f}  (target >= 1.0)")


if __name__ == "__main__":
    main()
