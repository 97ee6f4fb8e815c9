"""The training loop: `python -m engine.runtime.train.loop [lsdt train flags]`, alone or under torchrun.

One process per device. Under torchrun (RANK / WORLD_SIZE / LOCAL_RANK set) it joins a process group
(nccl on CUDA, gloo on CPU) and wraps the model in DistributedDataParallel; rank 0 alone writes the
run directory (engine/runtime/train/rundir.py: config.toml, metrics.jsonl, events.jsonl, checkpoints/).

Each step is engine.runtime.train.step.TrainStep (the code `lsdt probe` times). Around it: the LR schedule
and sequence-length curriculum (engine/runtime/train/schedule.py, functions of progress), periodic eval on
the val split, checkpoints every --ckpt-every steps, at the end and on SIGINT/SIGTERM, and --resume
from the newest good checkpoint with the same data order (engine/runtime/train/data.py seeds each batch by
its step) and LR schedule. A NaN/inf loss ends the run with an error event and writes no checkpoint,
so the last good one stays the newest.

MFU (engine.runtime.train.device.mfu) = flops_per_token(spec, seq) x tokens/s / (devices x peak FLOP/s),
with flops_per_token from engine.sizing.counts (PaLM convention, no recompute) and the peak from the
matched hardware profile; no match (CPU, unknown GPU) -> mfu null.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
from pathlib import Path

from engine import fmt
from engine.errors import UserError
from engine.runtime.train import rundir
from engine.runtime.train.schedule import lr_at, seq_len_at
from engine.runtime.train.signals import StopFlag
from engine.runtime.train.summary import end_summary
from engine.runtime.train.config import TrainConfig, add_arguments, resolve_config, resolve_grad_accum, resume_config

PROG = "python -m engine.runtime.train.loop"


class _Dist:
    """torchrun's environment: rank, world size, local rank (1 process when absent)."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.enabled = self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _progress(cfg: TrainConfig, step: int, elapsed_s: float) -> float:
    """Fraction of the run done: by steps, or by training wall-clock for --hours."""
    if cfg.hours is not None:
        return min(1.0, elapsed_s / (cfg.hours * 3600))
    return min(1.0, step / cfg.steps)


def _decay_progress(cfg: TrainConfig, step: int, progress: float) -> float:
    """Progress over the post-warm-up part (what the LR decay follows)."""
    if cfg.hours is not None:
        return progress
    return (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)


def _log_line(cfg, rec, eta_s) -> str:
    total = f"/{cfg.steps}" if cfg.steps else ""
    parts = [
        f"step {rec['step']}{total}",
        f"loss {rec['loss']:.4f}",
        f"lr {rec['lr']:.2e}",
        f"{rec['tok_per_s']:,.0f} tok/s",
        "mfu n/a" if rec["mfu"] is None else f"mfu {rec['mfu'] * 100:.1f}%",
        f"eta {fmt.duration(eta_s)}",
    ]
    if rec.get("val_loss") is not None:
        parts.insert(2, f"val {rec['val_loss']:.4f}")
    return " | ".join(parts)


def train(cfg: TrainConfig, resume: bool = False) -> int:
    """Run (or continue) the training `cfg` describes; returns the process exit code."""
    import torch
    import torch.distributed as dist

    from engine.runtime.train.device import resolve_device
    from engine.runtime.train.step import configure_backends

    d = _Dist()
    if cfg.fsdp and not d.enabled:
        raise UserError("--fsdp shards the model over torchrun's processes and this is a single process; "
                        "run `torchrun --nproc-per-node N -m engine.runtime.train.loop ... --fsdp`, or drop --fsdp")
    device = resolve_device(cfg.device)
    if d.enabled and device.type == "cuda":
        device = torch.device("cuda", d.local_rank)
        torch.cuda.set_device(device)
    if d.enabled:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    configure_backends(device)
    try:
        code = _run(cfg, resume, d, device)
        if d.enabled:
            # Leave together: a rank that tears gloo down while its peer still finishes its last
            # checkpoint/eval can abort in C++ ("terminate called without an active exception").
            dist.barrier()
        return code
    finally:
        if d.enabled and dist.is_initialized():
            dist.destroy_process_group()


# fp32 training on the CPU holds weights (4 B), gradients (4 B) and AdamW's m and v (4 + 4 B) per
# parameter (Rajbhandari et al. 2020, sec. 3.1, without the bf16 copies); the model is built in
# host memory first on every device, so its 4 B/param of weights must fit there too.
CPU_TRAIN_BYTES_PER_PARAM = 16
FP32_BYTES = 4


def check_host_memory(spec, device) -> None:
    """UserError before allocating when the model cannot fit in this machine's free memory: an
    oversized --depth raised a torch allocator traceback (or, just under the limit, swapped)."""
    import psutil

    from engine.sizing.counts import param_counts

    params = param_counts(spec).total
    need = params * (CPU_TRAIN_BYTES_PER_PARAM if device.type == "cpu" else FP32_BYTES)
    free = psutil.virtual_memory().available
    if need > free:
        what = "weights, gradients and AdamW state in fp32" if device.type == "cpu" else "fp32 weights, built on the host"
        raise UserError(
            f"model {spec.name}: {params:,} parameters need {need / 1e9:,.1f} GB ({what}) but this machine has "
            f"{free / 1e9:,.1f} GB free; accepted: a smaller --depth / --model"
        )


def _run(cfg: TrainConfig, resume: bool, d: _Dist, device) -> int:  # noqa: C901 - the loop reads best in one piece
    import torch
    import torch.distributed as dist

    from engine.runtime.train.checkpoint import CheckpointWriter, load_latest
    from engine.runtime.train.data import VAL_SEED, load_tokens
    from engine.runtime.train.device import device_name, match_hardware, mfu, peak_flops_for, vram_bytes
    from engine.runtime.model import GPT, GPTConfig
    from engine.runtime.train.step import OptimConfig, TrainStep, autocast, build_optimizer, synchronize
    from engine.sizing.counts import flops_per_token, param_counts

    # Data: rank 0 tokenizes into the cache first, the others then map it.
    if d.enabled and not d.is_main:
        dist.barrier()
    data = load_tokens(cfg.data, cfg.data_cache, cfg.val_fraction)
    if d.enabled and d.is_main:
        dist.barrier()
    data.check_seq_len(cfg.max_seq)
    cfg.grad_accum = resolve_grad_accum(cfg, d.world)

    spec = cfg.spec
    check_host_memory(spec, device)
    torch.manual_seed(cfg.seed)
    model = GPT(GPTConfig.from_spec(spec, dropout=cfg.dropout, **cfg.model_options())).to(device)
    n_params = model.num_params()
    assert n_params == param_counts(spec).total, "runtime model and sizing formula disagree"
    # Only now, with the inputs checked and the model built, does the run directory appear (a bad
    # flag or a model that cannot be built leaves nothing behind).
    writer = rundir.RunWriter(cfg.run_dir) if d.is_main else None

    step, tokens, elapsed_s = 0, 0, 0.0
    resumed_from = None
    state = None
    if resume:
        state, path, skipped = load_latest(cfg.run_dir)
        for bad, reason in skipped:
            if writer:
                writer.event("checkpoint_skipped", path=str(bad), reason=reason)
            print(f"lsdt train: skipping checkpoint {bad.name}: {reason}", file=sys.stderr)
        if state is not None:
            model.load_state_dict(state["model"])  # full weights, before any sharding
    if cfg.fsdp:
        from torch.distributed.fsdp import fully_shard

        for block in model.blocks:  # one all-gather unit per block, then the rest (embedding, head)
            fully_shard(block)
        fully_shard(model)
    optimizer = build_optimizer(model, OptimConfig(cfg.lr, cfg.weight_decay, cfg.beta1, cfg.beta2), device)
    if state is not None:
        if cfg.fsdp:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

            set_optimizer_state_dict(model, optimizer, state["optimizer"], options=StateDictOptions(full_state_dict=True))
        else:
            optimizer.load_state_dict(state["optimizer"])
        step, tokens, elapsed_s = state["step"], state["tokens"], state["elapsed_s"]
        torch.set_rng_state(state["rng_cpu"])
        if device.type == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"], device)
        resumed_from = str(path)

    name = device_name(device)
    hardware = match_hardware(name) if device.type == "cuda" else None
    peak = peak_flops_for(device)

    if writer:
        resolved = cfg.to_dict()
        resolved["env"] = {
            "device": name, "device_type": device.type, "hardware": hardware, "peak_flops": peak,
            "world_size": d.world, "params": n_params, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "tokenizer": "bytes", "data_tokens_train": len(data.train), "data_tokens_val": len(data.val),
        }
        writer.write_config(resolved)
        writer.event("start", step=step, params=n_params, device=name, hardware=hardware, world_size=d.world,
                     resumed_from=resumed_from, data=data.describe())
        if resume:
            writer.resume_event(step, resumed_from)

    ddp_model = torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None) if d.enabled and not cfg.fsdp else model
    train_step = TrainStep(ddp_model, optimizer, device, grad_clip=cfg.grad_clip, compile=cfg.compile)
    ckpt = CheckpointWriter(cfg.run_dir, keep=cfg.keep_checkpoints) if d.is_main else None
    stop = StopFlag()  # SIGINT/SIGTERM: stop after the current step, checkpoint, write an end event

    def checkpoint_state() -> dict:
        """The state to save. Under FSDP every rank must call this (it gathers the shards to rank 0)."""
        if cfg.fsdp:
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions, get_model_state_dict, get_optimizer_state_dict)

            opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
            weights, optim = get_model_state_dict(model, options=opts), get_optimizer_state_dict(model, optimizer, options=opts)
        else:
            weights, optim = model.state_dict(), optimizer.state_dict()
        return {
            "step": step, "tokens": tokens, "elapsed_s": elapsed_s, "model": weights,
            "optimizer": optim, "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
            "config": cfg.to_dict(),
        }

    def end(reason: str, code: int, message: str | None = None) -> int:
        if ckpt:
            ckpt.wait()
            writer.checkpoint_events(ckpt.completed())
        if writer:
            writer.event("end", reason=reason, step=step, tokens=tokens, elapsed_s=elapsed_s, message=message)
            if (Path(cfg.run_dir) / rundir.METRICS_FILE).exists():  # a run that ended before its first log line has none
                rundir.export_csv(cfg.run_dir)
            print("\n".join(end_summary(cfg.run_dir, reason, step, tokens, elapsed_s)), flush=True)
        stop.restore()
        return code

    def evaluate(T: int, B: int) -> float:
        model.eval()
        losses = torch.zeros(2, device=device)  # sum, count over this rank's share
        with torch.no_grad(), autocast(device):
            # Every rank runs the same number of forwards (FSDP's all-gathers must pair up); a rank
            # whose index runs past eval_batches computes one more but does not count it.
            for k in range(-(-cfg.eval_batches // d.world)):
                i = k * d.world + d.rank
                x, y = data.batch("val", B, T, seed=VAL_SEED, step=min(i, cfg.eval_batches - 1))
                _, loss = model(x.to(device), y.to(device))
                if i < cfg.eval_batches:
                    losses += torch.stack((loss.float(), torch.ones((), device=device)))
        if d.enabled:
            dist.all_reduce(losses)
        model.train()
        return (losses[0] / losses[1].clamp(min=1)).item()

    def budget_left() -> bool:
        if cfg.hours is not None:  # progress is agreed between ranks (updated at sync points under DDP)
            return progress < 1.0
        return step < cfg.steps

    curriculum = tuple(map(tuple, cfg.curriculum))

    def fetch(at_step: int, at_progress: float):
        """(T, B, micro-batches on the device) of step `at_step`; pinned + non_blocking on CUDA, so the
        host-to-device copy queues behind the running step instead of waiting for it."""
        T = seq_len_at(curriculum, at_progress)
        B = max(1, cfg.device_batch * cfg.max_seq // T)  # constant tokens per micro-batch across stages
        micro = []
        for i in range(cfg.grad_accum):
            x, y = data.batch("train", B, T, seed=cfg.seed, step=at_step, rank=d.rank, micro=i)
            if device.type == "cuda":
                x, y = x.pin_memory(), y.pin_memory()
            micro.append((x.to(device, non_blocking=True), y.to(device, non_blocking=True)))
        return T, B, micro

    loss_acc = torch.zeros((), device=device)
    n_acc = 0
    t_last, tokens_last, step_last = time.perf_counter(), tokens, step
    progress = _progress(cfg, step, elapsed_s)
    if d.is_main:
        print(f"lsdt train: {spec.name} ({fmt.count(n_params)} params) on {name} x{d.world}; {data.describe()}; "
              f"run dir {cfg.run_dir}" + (f"; resumed at step {step}" if step else ""), flush=True)
    loop_t0, elapsed_at_start = time.perf_counter(), elapsed_s
    try:
        T, B = cfg.max_seq, cfg.device_batch  # named by the OOM message even if the first fetch fails
        pending = fetch(step, progress)
        while budget_left():
            T, B, micro = pending
            lr = lr_at(step, _decay_progress(cfg, step, progress), cfg.lr, cfg.warmup, cfg.min_lr_frac, cfg.decay)
            out = train_step(micro, lr)
            loss_acc += out.loss
            n_acc += 1
            step += 1
            tokens += B * T * cfg.grad_accum * d.world
            elapsed_s = elapsed_at_start + time.perf_counter() - loop_t0  # wall-clock: what --hours budgets
            if not d.enabled:
                progress = _progress(cfg, step, elapsed_s)
            if budget_left():
                pending = fetch(step, progress)  # the CPU prepares the next batch while the GPU runs this step

            eval_now = step % cfg.eval_every == 0
            ckpt_now = step % cfg.ckpt_every == 0
            sync_now = step % cfg.log_every == 0 or eval_now or ckpt_now or not budget_left() or (stop.signum and not d.enabled)
            if not sync_now:
                continue
            synchronize(device)
            mean_loss = (loss_acc / n_acc).detach()
            flags = torch.tensor([1.0 if stop.signum else 0.0, elapsed_s], device=device)
            if d.enabled:  # every rank agrees on the loss, on stopping and on the clock
                dist.all_reduce(mean_loss)
                mean_loss /= d.world
                dist.all_reduce(flags, op=dist.ReduceOp.MAX)
                elapsed_s = flags[1].item()
                elapsed_at_start, loop_t0 = elapsed_s, time.perf_counter()
                progress = _progress(cfg, step, elapsed_s)
            loss_value = mean_loss.item()
            loss_acc.zero_()
            n_acc = 0
            now = time.perf_counter()
            tok_per_s = (tokens - tokens_last) / max(now - t_last, 1e-9)
            if not math.isfinite(loss_value):
                message = f"loss is {loss_value} at step {step}; the newest checkpoint is the last good state (lower --lr?)"
                if writer:
                    writer.event("error", step=step, message=message, cause="nan_loss")
                print(f"lsdt train: error: {message}", file=sys.stderr)
                return end("nan_loss", 3, message)
            val_loss = evaluate(T, B) if eval_now or not budget_left() else None
            rate = (now - t_last) / max(step - step_last, 1)
            eta = (cfg.steps - step) * rate if cfg.steps else max(0.0, cfg.hours * 3600 - elapsed_s)
            fpt = flops_per_token(spec, seq_len=T)
            record = {
                "step": step, "time": time.time(), "loss": loss_value, "lr": lr, "tokens": tokens,
                "tok_per_s": tok_per_s, "mfu": mfu(fpt, tok_per_s, peak, n_devices=d.world),
                **vram_bytes(device),
                "seq_len": T, "device_batch": B, "grad_norm": out.grad_norm.item() if out.grad_norm is not None else None,
                "elapsed_s": elapsed_s, "eta_s": eta,
            }
            if val_loss is not None:
                record["val_loss"] = val_loss
            if writer:
                writer.metric(record)
                if val_loss is not None:
                    writer.event("eval", step=step, val_loss=val_loss, seq_len=T)
                print(_log_line(cfg, record, eta), flush=True)
            t_last, tokens_last, step_last = time.perf_counter(), tokens, step
            stopping = bool(flags[0].item())
            if ckpt_now or not budget_left() or stopping:
                if ckpt:
                    ckpt.save(step, checkpoint_state(), wait=stopping or not budget_left())
                    writer.checkpoint_events(ckpt.completed())
                elif cfg.fsdp:
                    checkpoint_state()  # the other ranks' half of the gather
            if stopping:
                sig = signal.Signals(stop.signum).name if stop.signum else "signal"
                return end("signal", 0, f"stopped by {sig} at step {step}")
        return end("completed" if cfg.hours is None else "time_limit", 0)
    except torch.cuda.OutOfMemoryError:  # (alias of torch.OutOfMemoryError on torch >= 2.5)
        message = (f"out of memory at device batch {B} x seq {T} on {name}; "
                   f"lower --device-batch (now {cfg.device_batch}) and raise --grad-accum, or lower --seq")
        if writer:
            writer.event("error", step=step, message=message, cause="oom")
        end("error", 2, message)
        raise UserError(message) from None
    except Exception as exc:
        if writer:
            writer.event("error", step=step, message=f"{type(exc).__name__}: {exc}", cause="exception")
        end("error", 1, f"{type(exc).__name__}: {exc}")
        raise


def main(argv: list[str] | None = None) -> int:
    from engine.cli import OneLineParser

    parser = OneLineParser(prog=PROG, description="Train a GPT and write a run directory (see docs/runtime.md).")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except UserError as exc:
        print(f"lsdt train: error: {exc}", file=sys.stderr)
        return 2


def run_from_args(args: argparse.Namespace) -> int:
    """Resolve the flags (fresh run or --resume) and train."""
    if args.resume:
        if not args.run_dir:
            raise UserError("--resume needs --run-dir DIR (the run to continue)")
        saved = rundir.read_config(args.run_dir)
        saved.pop("env", None)  # facts about the last process, not settings
        cfg = resume_config(args, saved, str(Path(args.run_dir) / rundir.CONFIG_FILE))
        cfg.run_dir = args.run_dir
    else:
        cfg = resolve_config(args)
        if rundir.is_run_dir(cfg.run_dir):
            raise UserError(f"--run-dir {cfg.run_dir} already holds a run; add --resume to continue it, or pick another --run-dir")
    return train(cfg, resume=args.resume)


if __name__ == "__main__":
    sys.exit(main())
