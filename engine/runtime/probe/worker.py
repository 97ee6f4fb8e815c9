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


def probe(args: argparse.Namespace) -> dict:
    import torch

    from engine.runtime.train.device import device_name, match_hardware, peak_flops_for, resolve_device
    from engine.runtime.model.gpt import GPT, GPTConfig
    from engine.runtime.train.step import OptimConfig, TrainStep, build_optimizer, configure_backends, synchronize

    device = resolve_device(args.device)  # UserError -> exit 2
    name = device_name(device)
    hardware = match_hardware(name) if device.type == "cuda" else None
    spec = band_spec(args.depth, args.seq, args.head_dim, args.vocab)
    fpt = flops_per_token(spec, args.seq)
    row: dict = {
        "depth": args.depth, "seq_len": args.seq, "device_batch": None, "tok_per_s": None, "step_time_s": None,
        "peak_vram_bytes": None, "mfu": None, "status": "error",
        "device": name, "hardware": hardware, "steps": args.steps, "warmup": args.warmup,
        "micro_batches": args.micro_batches, "compile": args.compile, "memory_cap_bytes": args.memory_cap,
    }
    configure_backends(device)
    torch.manual_seed(args.seed)
    cap = args.memory_cap
    if cap is None and device.type == "cpu":
        cap = default_cpu_memory_cap()
        row.update(memory_cap_bytes=cap, memory_cap_source=f"default: {CPU_DEFAULT_MEMORY_SHARE:.0%} of available RAM")
    if cap:
        _cap_memory(torch, device, cap)
    saturation = (args.saturation or None) if device.type == "cpu" else None  # 0: the largest batch that fits
    row["saturation"] = saturation

    def free() -> None:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        else:
            _malloc_trim()

    try:
        model = GPT(GPTConfig.from_spec(spec)).to(device)
        optimizer = build_optimizer(model, OptimConfig(), device)
        eager = TrainStep(model, optimizer, device, grad_clip=1.0, compile=False)
    except Exception as exc:
        if not is_oom(exc):
            raise
        row.update(status="oom", error="the model and its optimizer do not fit: " + _one_line(exc), tried=[])
        return row

    def batches(b: int):
        x = torch.randint(0, args.vocab, (b, args.seq), device=device)
        y = torch.randint(0, args.vocab, (b, args.seq), device=device)
        return [(x, y)] * args.micro_batches

    lr = OptimConfig().lr

    def or_oom(run):
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
            optimizer.zero_grad(set_to_none=True)
            free()
        return None

    def rate(b: int) -> float:
        """tokens/s of the eager step at batch b (its first step is the warm-up)."""
        work = batches(b)
        eager(work, lr)
        synchronize(device)
        if saturation is None:  # the GPU search only asks whether it fits
            return 1.0
        # the fastest of several steps: what the batch can do, not what a busy machine let it do
        fastest_s, t_start = math.inf, time.perf_counter()
        for _ in range(RATE_MAX_STEPS):
            t0 = time.perf_counter()
            eager(work, lr)
            synchronize(device)
            fastest_s = min(fastest_s, time.perf_counter() - t0)
            if time.perf_counter() - t_start >= RATE_MIN_S:
                break
        return args.micro_batches * b * args.seq / fastest_s

    device_batch, tried = search_batch(lambda b: or_oom(lambda: rate(b)), args.max_batch, saturation)
    row["tried"] = tried
    if device_batch is None:
        row.update(status="oom", error="batch 1 does not fit")
        return row

    step = TrainStep(model, optimizer, device, grad_clip=1.0, compile=True) if args.compile else eager

    def timed_run(b: int) -> tuple[float, float]:
        """(elapsed seconds of the timed steps, last loss) at batch b."""
        work = batches(b)
        for _ in range(args.warmup):
            step(work, lr)
        synchronize(device)
        t0 = time.perf_counter()
        for _ in range(args.steps):
            out = step(work, lr)
        synchronize(device)
        return time.perf_counter() - t0, float(out.loss)

    def measure(b: int) -> tuple[float, float] | None:
        free()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        return or_oom(lambda: timed_run(b))

    # The batch that fitted one step can still fail over many (fragmentation, compile's buffers):
    # halve until the timed run completes.
    timed = measure(device_batch)
    while timed is None and device_batch > 1:
        device_batch //= 2
        row.setdefault("retreats", []).append(device_batch)
        timed = measure(device_batch)
    if timed is None:
        row.update(status="oom", error="batch 1 fitted one step but not the timed run")
        return row
    elapsed_s, loss = timed

    tokens = args.steps * args.micro_batches * device_batch * args.seq
    tok_per_s = tokens / elapsed_s
    peak_flops = peak_flops_for(device)  # the matched profile's dense bf16 peak; None on CPU / unknown GPUs
    row.update(
        status="ok" if math.isfinite(loss) else "error",
        device_batch=device_batch,
        tok_per_s=tok_per_s,
        step_time_s=elapsed_s / args.steps,
        mfu=mfu(fpt, tok_per_s, peak_flops),
        loss=loss if math.isfinite(loss) else None,
    )
    if not math.isfinite(loss):
        row["error"] = f"non-finite loss {loss} at batch {device_batch}"
    if device.type == "cuda":
        row["peak_vram_bytes"] = int(torch.cuda.max_memory_allocated(device))
        row["peak_vram_reserved_bytes"] = int(torch.cuda.max_memory_reserved(device))
    else:  # no VRAM on a CPU; the process's high-water RSS (Linux ru_maxrss is in KiB) instead
        row["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
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
