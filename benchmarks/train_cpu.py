"""CPU throughput of `lsdt train` against a plain PyTorch training loop of the same model.

Target (issue #6): tokens/s of `lsdt train` / tokens/s of a straightforward loop >= 1.0, with the
same model (engine.runtime.model.GPT from the same spec: `lsdt train`'s default tiny model), dtype
(fp32), batch, sequence length and thread count. The plain loop is what one writes first: index
random windows out of a token tensor, forward, backward, clip, AdamW (torch's default
implementation), zero_grad, print the loss. `lsdt train` runs through its real CLI
(`python -m engine.cli train`), so its figure includes data sampling, logging, metrics and LR schedule.

Shared, noisy machines: the two run *at the same time*, as two single-threaded processes (the OS
gives each the same share of the CPU, whatever else runs), and each one's tokens/s is taken over the
time window in which both were past warm-up and still training, from the (time, tokens) points they
log (`lsdt train`: its metrics.jsonl, without the last line, whose timestamp includes the final eval). The figure is the median ratio over --trials such pairs.

    python benchmarks/train_cpu.py [--steps 80] [--trials 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOG_EVERY = 5
WARMUP_STEPS = 10


def plain_worker(out: Path, steps: int, cache: Path) -> None:
    """The plain loop (run in its own process)."""
    import torch

    from engine.runtime.train.data import load_tokens
    from engine.runtime.model import GPT, GPTConfig
    from engine.runtime.train.config import DEFAULTS, TINY_MODEL
    from engine.specs import ModelSpec

    torch.set_num_threads(1)
    spec = ModelSpec(**TINY_MODEL)
    tokens = torch.from_numpy(load_tokens("stdlib", cache).train[:].astype("int64"))
    B, T = DEFAULTS["device_batch"], spec.seq_len
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_spec(spec))
    opt = torch.optim.AdamW(model.parameters(), lr=DEFAULTS["lr"], betas=(DEFAULTS["beta1"], DEFAULTS["beta2"]),
                            weight_decay=DEFAULTS["weight_decay"])
    with open(out, "w") as fh:
        for step in range(1, steps + 1):
            ix = torch.randint(len(tokens) - T - 1, (B,))
            x = torch.stack([tokens[i:i + T] for i in ix])
            y = torch.stack([tokens[i + 1:i + 1 + T] for i in ix])
            _, loss = model(x, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), DEFAULTS["grad_clip"])
            opt.step()
            opt.zero_grad(set_to_none=True)
            value = loss.item()
            if step % LOG_EVERY == 0:
                print(f"step {step} loss {value:.4f}")
                fh.write(json.dumps({"step": step, "time": time.time(), "tokens": step * B * T}) + "\n")
                fh.flush()


def _rate(points: list[dict], t0: float, t1: float) -> float:
    """tokens/s between t0 and t1, interpolating the (time, tokens) points linearly."""
    def tokens_at(t):
        for a, b in zip(points, points[1:]):
            if a["time"] <= t <= b["time"]:
                return a["tokens"] + (b["tokens"] - a["tokens"]) * (t - a["time"]) / (b["time"] - a["time"])
        raise ValueError("time outside the logged range")
    return (tokens_at(t1) - tokens_at(t0)) / (t1 - t0)


def trial(work: Path, i: int, steps: int) -> tuple[float, float]:
    run, plain_log, cache = work / f"lsdt-{i}", work / f"plain-{i}.jsonl", work / "cache"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    lsdt_cmd = [sys.executable, "-m", "engine.cli", "train", "--run-dir", str(run), "--steps", str(steps),
                "--threads", "1", "--device", "cpu", "--log-every", str(LOG_EVERY), "--eval-every", str(10 * steps),
                "--ckpt-every", str(10 * steps), "--data-cache", str(cache)]
    plain_cmd = [sys.executable, __file__, "--plain-worker", str(plain_log), "--steps", str(steps), "--cache", str(cache)]
    # Alternate which starts first, so a start-order advantage cancels over the trials.
    first, second = (lsdt_cmd, plain_cmd) if i % 2 == 0 else (plain_cmd, lsdt_cmd)
    a = subprocess.Popen(first, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    b = subprocess.Popen(second, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    lsdt, plain = (a, b) if i % 2 == 0 else (b, a)
    if lsdt.wait() or plain.wait():
        raise SystemExit("a contender failed")
    ours = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    base = [json.loads(l) for l in plain_log.read_text().splitlines()]
    # The last line's timestamp includes the end-of-run evaluation (its tok_per_s does not): drop it,
    # as the plain loop evaluates nothing.
    ours = [p for p in ours[:-1] if p["step"] >= WARMUP_STEPS]
    base = [p for p in base if p["step"] >= WARMUP_STEPS]
    t0 = max(ours[0]["time"], base[0]["time"])
    t1 = min(ours[-1]["time"], base[-1]["time"])
    if t1 - t0 < 5:
        raise SystemExit(f"trial {i}: the two runs overlapped for only {t1 - t0:.1f} s; raise --steps")
    return _rate(ours, t0, t1), _rate(base, t0, t1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=80)
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--plain-worker", help=argparse.SUPPRESS)
    p.add_argument("--cache", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.plain_worker:
        plain_worker(Path(a.plain_worker), a.steps, Path(a.cache))
        return
    import torch

    from engine.runtime.train.data import load_tokens
    from engine.runtime.train.config import DEFAULTS, TINY_MODEL

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        load_tokens("stdlib", work / "cache")  # tokenize once, before any timing
        ours, plain, ratios = [], [], []
        for i in range(a.trials):
            o, b = trial(work, i, a.steps)
            ours.append(o)
            plain.append(b)
            ratios.append(o / b)
            print(f"trial {i}: lsdt train {o:,.0f} tok/s   plain loop {b:,.0f} tok/s   ratio {o / b:.3f}", flush=True)
    m = TINY_MODEL
    print(f"model {m['name']}: {m['n_layer']} layers x {m['d_model']}, seq {m['seq_len']}, batch {DEFAULTS['device_batch']}, "
          f"fp32, 1 thread each, run side by side; torch {torch.__version__}; {os.cpu_count()} CPUs")
    print(f"median tokens/s: lsdt train {statistics.median(ours):,.0f}, plain loop {statistics.median(plain):,.0f}")
    print(f"ratio lsdt/plain (median of {a.trials} trials): {statistics.median(ratios):.3f}  (target >= 1.0)")


if __name__ == "__main__":
    main()
