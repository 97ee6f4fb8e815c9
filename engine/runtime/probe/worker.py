"""One probe config in its own process: `python -m engine.runtime.probe.worker --depth D --seq T ...`.

Started by engine.runtime.probe.runner (one fresh process per config). Writes one JSON row to --result
(atomically) whatever happens inside the config: status "ok", "oom" (even batch 1 does not fit) or
"error" (anything else, with its message). A user mistake (e.g. --device cuda without a GPU) exits 2
with one line on stderr and writes nothing.

The tokens are random (torch.randint): a probe measures the model step, not a data pipeline.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import resource
import sys
import time
import traceback

from engine.atomic import write_atomic
from engine.errors import UserError
from engine.runtime.train.device import mfu
from engine.runtime.lifeline import die_with_parent
from engine.runtime.probe.runner import is_oom, search_batch
from engine.sizing.counts import flops_per_token
from engine.sizing.shapes import band_spec


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="probe_worker")
    p.add_argument("--depth", type=int, required=True)
    p.add_argument("--seq", type=int, required=True)
    p.add_argument("--head-dim", type=int, required=True)
    p.add_argument("--vocab", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--warmup", type=int, required=True)
    p.add_argument("--device", default="auto")
    p.add_argument("--max-batch", type=int, required=True)
    p.add_argument("--micro-batches", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--memory-cap", type=float, default=None, help="bytes")
    p.add_argument("--saturation", type=float, default=None, help="CPU: stop the batch search when 2x batch is < this much faster")
    p.add_argument("--parent-pid", type=int, default=None, help="die when this process (the sweep) dies")
    p.add_argument("--result", required=True)
    return p


# Without --memory-cap a CPU worker may use this share of the RAM available when it starts: Linux
# overcommit never fails an allocation, so without a limit a large batch grows until the kernel's OOM
# killer ends a process -- perhaps not this one. Half leaves room for the rest of the machine.
CPU_DEFAULT_MEMORY_SHARE = 0.5
# Each point of the CPU batch search takes the fastest of its steps over at least this long (a step
# of a tiny model takes ~1 ms; one step is too noisy to compare two batches by).
RATE_MIN_S = 0.1
RATE_MAX_STEPS = 20


def default_cpu_memory_cap() -> float:
    import psutil

    return CPU_DEFAULT_MEMORY_SHARE * psutil.virtual_memory().available


def _cap_memory(torch, device, cap_bytes: float) -> None:
    """Make `cap_bytes` the memory this process may use, so an OOM is real and catchable.

    CUDA: the caching allocator's per-process fraction of the card (torch.cuda docs,
    set_per_process_memory_fraction), e.g. to probe a 24 GB budget on an 80 GB card.
    CPU: an address-space limit of (what the process maps now + cap_bytes) (POSIX RLIMIT_AS); torch's
    CPU allocator then fails with "can't allocate memory", which `is_oom` recognises.
    """
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, cap_bytes / total), device)
    else:
        import psutil

        torch.ones(64, 64) @ torch.ones(64, 64)  # start the intra-op thread pool before measuring
        limit = int(psutil.Process().memory_info().vms + cap_bytes)
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))


def _first_row(args: argparse.Namespace, device_name: str, hardware: str | None) -> dict:
    """The row before anything ran: an "error" until a measurement says otherwise."""
    return {
        "depth": args.depth, "seq_len": args.seq, "device_batch": None, "tok_per_s": None, "step_time_s": None,
        "peak_vram_bytes": None, "mfu": None, "status": "error",
        "device": device_name, "hardware": hardware, "steps": args.steps, "warmup": args.warmup,
        "micro_batches": args.micro_batches, "compile": args.compile, "memory_cap_bytes": args.memory_cap,
    }


def _limit_memory(torch, device, memory_cap_bytes: float | None, row: dict) -> None:
    """--memory-cap, or on a CPU the default share of the available RAM (said in the row)."""
    cap = memory_cap_bytes
    if cap is None and device.type == "cpu":
        cap = default_cpu_memory_cap()
        row.update(memory_cap_bytes=cap, memory_cap_source=f"default: {CPU_DEFAULT_MEMORY_SHARE:.0%} of available RAM")
    if cap:
        _cap_memory(torch, device, cap)


class _ConfigRun:
    """One config's optimizer and eager step on one device, and the runs the probe times with them:
    a rate per batch for the batch search, then the timed steps at the batch it found."""

    def __init__(self, torch, synchronize, args: argparse.Namespace, device, optimizer, eager, saturation: float | None,
                 lr: float):
        self.torch, self.synchronize, self.args, self.device = torch, synchronize, args, device
        self.optimizer, self.eager = optimizer, eager
        self.saturation = saturation  # None: the search only asks whether a batch fits (GPU, or CPU with 0)
        self.lr = lr

    def free(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            self.torch.cuda.empty_cache()
        else:
            _malloc_trim()

    def batches(self, b: int) -> list:
        """Random tokens: a probe measures the model step, not a data pipeline."""
        args, torch = self.args, self.torch
        x = torch.randint(0, args.vocab, (b, args.seq), device=self.device)
        y = torch.randint(0, args.vocab, (b, args.seq), device=self.device)
        return [(x, y)] * args.micro_batches

    def or_oom(self, run):
        """run(), or None when it runs out of memory: the gradients dropped and the memory freed
        outside the except block (the traceback, and the activations its frames hold, is gone by then)."""
        oom = False
        try:
            return run()
        except Exception as exc:
            if not is_oom(exc):
                raise
            oom = True
        if oom:
            self.optimizer.zero_grad(set_to_none=True)
            self.free()
        return None

    def rate_tokens_per_s(self, b: int) -> float:
        """tokens/s of the eager step at batch b (its first step is the warm-up)."""
        work = self.batches(b)
        self.eager(work, self.lr)
        self.synchronize(self.device)
        if self.saturation is None:  # the GPU search only asks whether it fits
            return 1.0
        # the fastest of several steps: what the batch can do, not what a busy machine let it do
        fastest_s, t_start = math.inf, time.perf_counter()
        for _ in range(RATE_MAX_STEPS):
            t0 = time.perf_counter()
            self.eager(work, self.lr)
            self.synchronize(self.device)
            fastest_s = min(fastest_s, time.perf_counter() - t0)
            if time.perf_counter() - t_start >= RATE_MIN_S:
                break
        return self.args.micro_batches * b * self.args.seq / fastest_s

    def _timed_steps(self, step, b: int) -> tuple[float, float]:
        """(elapsed seconds of the timed steps, last loss) at batch b."""
        args = self.args
        work = self.batches(b)
        for _ in range(args.warmup):
            step(work, self.lr)
        self.synchronize(self.device)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            out = step(work, self.lr)
        self.synchronize(self.device)
        return time.perf_counter() - t0, float(out.loss)

    def _measure(self, step, b: int) -> tuple[float, float] | None:
        self.free()
        if self.device.type == "cuda":
            self.torch.cuda.reset_peak_memory_stats(self.device)
        return self.or_oom(lambda: self._timed_steps(step, b))

    def timed(self, step, device_batch: int, row: dict) -> tuple[int, tuple[float, float] | None]:
        """(the batch that ran, (elapsed s, last loss) or None). The batch that fitted one step can
        still fail over many (fragmentation, compile's buffers): halve until the timed run completes
        (each retreat listed in the row)."""
        timed = self._measure(step, device_batch)
        while timed is None and device_batch > 1:
            device_batch //= 2
            row.setdefault("retreats", []).append(device_batch)
            timed = self._measure(step, device_batch)
        return device_batch, timed


def _record_measurement(row: dict, torch, device, args: argparse.Namespace, flops_per_token_: float,
                        device_batch: int, elapsed_s: float, loss: float, peak_flops: float | None) -> None:
    """The timed run's throughput, MFU and peak memory into the row; a non-finite loss makes it an error."""
    tokens = args.steps * args.micro_batches * device_batch * args.seq
    tok_per_s = tokens / elapsed_s
    row.update(
        status="ok" if math.isfinite(loss) else "error",
        device_batch=device_batch,
        tok_per_s=tok_per_s,
        step_time_s=elapsed_s / args.steps,
        mfu=mfu(flops_per_token_, tok_per_s, peak_flops),
        loss=loss if math.isfinite(loss) else None,
    )
    if not math.isfinite(loss):
        row["error"] = f"non-finite loss {loss} at batch {device_batch}"
    if device.type == "cuda":
        row["peak_vram_bytes"] = int(torch.cuda.max_memory_allocated(device))
        row["peak_vram_reserved_bytes"] = int(torch.cuda.max_memory_reserved(device))
    else:  # no VRAM on a CPU; the process's high-water RSS (Linux ru_maxrss is in KiB) instead
        row["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def probe(args: argparse.Namespace) -> dict:
    """One config: build the model, find the largest batch that fits (on a CPU: until a doubling
    stops paying), time it, and say what happened in one row."""
    import torch

    from engine.runtime.model.gpt import GPT, GPTConfig
    from engine.runtime.train.device import device_name, match_hardware, peak_flops_for, resolve_device
    from engine.runtime.train.step import OptimConfig, TrainStep, build_optimizer, configure_backends, synchronize

    device = resolve_device(args.device)  # UserError -> exit 2
    name = device_name(device)
    spec = band_spec(args.depth, args.seq, args.head_dim, args.vocab)
    row = _first_row(args, name, match_hardware(name) if device.type == "cuda" else None)
    configure_backends(device)
    torch.manual_seed(args.seed)
    _limit_memory(torch, device, args.memory_cap, row)
    saturation = (args.saturation or None) if device.type == "cpu" else None  # 0: the largest batch that fits
    row["saturation"] = saturation

    try:
        model = GPT(GPTConfig.from_spec(spec)).to(device)
        optimizer = build_optimizer(model, OptimConfig(), device)
        eager = TrainStep(model, optimizer, device, grad_clip=1.0, compile=False)
    except Exception as exc:
        if not is_oom(exc):
            raise
        row.update(status="oom", error="the model and its optimizer do not fit: " + _one_line(exc), tried=[])
        return row
    run = _ConfigRun(torch, synchronize, args, device, optimizer, eager, saturation, OptimConfig().lr)

    device_batch, tried = search_batch(lambda b: run.or_oom(lambda: run.rate_tokens_per_s(b)), args.max_batch, saturation)
    row["tried"] = tried
    if device_batch is None:
        row.update(status="oom", error="batch 1 does not fit")
        return row

    step = TrainStep(model, optimizer, device, grad_clip=1.0, compile=True) if args.compile else eager
    device_batch, timed = run.timed(step, device_batch, row)
    if timed is None:
        row.update(status="oom", error="batch 1 fitted one step but not the timed run")
        return row
    _record_measurement(row, torch, device, args, flops_per_token(spec, args.seq), device_batch, *timed,
                        peak_flops_for(device))  # the matched profile's dense bf16 peak; None on CPU / unknown GPUs
    return row


def _malloc_trim() -> None:
    """Hand freed heap pages back to the OS (glibc malloc_trim(3)); under a CPU memory cap the
    address space an OOM'd step touched would otherwise stay counted against the limit."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim with
        pass


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.parent_pid is not None:
        die_with_parent(args.parent_pid)
    try:
        row = probe(args)
    except UserError as exc:
        print(f"lsdt: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the config failed; the sweep goes on with a row that says why
        traceback.print_exc()
        row = {
            "depth": args.depth, "seq_len": args.seq, "device_batch": None, "tok_per_s": None,
            "step_time_s": None, "peak_vram_bytes": None, "mfu": None, "status": "error", "error": _one_line(exc),
        }
    write_atomic(args.result, json.dumps(row, allow_nan=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
