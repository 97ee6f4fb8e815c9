"""The training loop: `python -m engine.runtime.train.loop [lsdt train flags]`, alone or under torchrun.

One process per device. Under torchrun (RANK / WORLD_SIZE / LOCAL_RANK set) it joins a process group
(nccl on CUDA, gloo on CPU) and wraps the model in DistributedDataParallel; rank 0 alone writes the
run directory (engine/runtime/train/rundir.py: config.toml, metrics.jsonl, events.jsonl, checkpoints/).

GPTRun is the GPT on the shared RunLoop (engine/runtime/train/runloop.py, also under every `lsdt moe`
job): the loop owns the run-dir lock, resume, LR schedule, log/eval/checkpoint cadence, the stop flag
and the end event; this file supplies the data, the model (DDP / FSDP), the sequence-length curriculum
(engine/runtime/train/schedule.py) and the eval. Each step is engine.runtime.train.step.TrainStep (the
code `lsdt probe` times). --resume continues from the newest good checkpoint with the same data order
(engine/runtime/train/data.py seeds each batch by its step). Exit codes: 0 done, 2 user error (incl.
a run dir in use, a full disk), 3 NaN loss, 130 / 143 stopped by SIGINT / SIGTERM after a checkpoint.

MFU (engine.runtime.train.device.mfu) = flops_per_token(spec, seq) x tokens/s / (devices x peak FLOP/s),
with flops_per_token from engine.sizing.counts (PaLM convention, no recompute) and the peak from the
matched hardware profile; no match (CPU, unknown GPU) -> mfu null.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from engine import fmt
from engine.errors import UserError
from engine.runtime.train import rundir
from engine.runtime.train.runlock import in_use
from engine.runtime.train.runloop import Batch, Cadence, Ranks, RunLoop, exit_code
from engine.runtime.train.schedule import seq_len_at
from engine.runtime.train.summary import end_summary
from engine.runtime.train.config import TrainConfig, add_arguments, resolve_config, resolve_grad_accum, resume_config

PROG = "python -m engine.runtime.train.loop"


def _log_line(cfg, rec) -> str:
    total = f"/{cfg.steps}" if cfg.steps else ""
    parts = [
        f"step {rec['step']}{total}",
        f"loss {rec['loss']:.4f}",
        f"lr {rec['lr']:.2e}",
        f"{rec['tok_per_s']:,.0f} tok/s",
        "mfu n/a" if rec["mfu"] is None else f"mfu {rec['mfu'] * 100:.1f}%",
        f"eta {fmt.duration(rec['eta_s'])}",
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

    d = Ranks()
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
        outcome = GPTRun(cfg, d, device).run(resume)
        if outcome.reason == "nan_loss" and d.is_main:
            print(f"lsdt train: error: {outcome.message}", file=sys.stderr)
        code = exit_code(outcome)
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


class GPTRun(RunLoop):
    """`lsdt train` on the shared RunLoop: the data, the GPT (DDP / FSDP), its step and its eval."""

    def __init__(self, cfg: TrainConfig, ranks: Ranks, device):
        import torch
        import torch.distributed as dist

        from engine.runtime.model import GPT, GPTConfig
        from engine.runtime.train.data import load_tokens
        from engine.runtime.train.device import device_name, match_hardware, peak_flops_for
        from engine.sizing.counts import param_counts

        super().__init__(cfg.run_dir, Cadence(
            steps=cfg.steps, hours=cfg.hours, warmup=cfg.warmup, lr=cfg.lr, min_lr_frac=cfg.min_lr_frac,
            decay=cfg.decay, log_every=cfg.log_every, eval_every=cfg.eval_every, ckpt_every=cfg.ckpt_every,
            keep_checkpoints=cfg.keep_checkpoints), device, ranks)
        self.cfg = cfg
        # Data: rank 0 tokenizes into the cache first, the others then map it.
        if ranks.enabled and not ranks.is_main:
            dist.barrier()
        self.data = load_tokens(cfg.data, cfg.data_cache, cfg.val_fraction)
        if ranks.enabled and ranks.is_main:
            dist.barrier()
        self.data.check_seq_len(cfg.max_seq)
        cfg.grad_accum = resolve_grad_accum(cfg, ranks.world)
        self.spec = cfg.spec
        check_host_memory(self.spec, device)
        torch.manual_seed(cfg.seed)
        self.model = GPT(GPTConfig.from_spec(self.spec, dropout=cfg.dropout, **cfg.model_options())).to(device)
        self.n_params = self.model.num_params()
        assert self.n_params == param_counts(self.spec).total, "runtime model and sizing formula disagree"
        # Only in run(), with the inputs checked and the model built, does the run directory appear (a
        # bad flag or a model that cannot be built leaves nothing behind).
        self.device_label = device_name(device)
        self.hardware = match_hardware(self.device_label) if device.type == "cuda" else None
        self.peak_flops = peak_flops_for(device)
        self.state_is_collective = cfg.fsdp
        self.curriculum = tuple(map(tuple, cfg.curriculum))
        self.optimizer = self.step_fn = None
        self._shape = (cfg.max_seq, cfg.device_batch)  # named by the OOM message even if the first fetch fails

    def prepare(self, state: dict | None) -> None:
        import torch

        from engine.runtime.train.step import OptimConfig, TrainStep, build_optimizer

        cfg, model = self.cfg, self.model
        if state is not None:
            model.load_state_dict(state["model"])  # full weights, before any sharding
        if cfg.fsdp:
            from torch.distributed.fsdp import fully_shard

            # One all-gather unit per block, then the rest (embedding, head). Keeping the gathered weights
            # until backward (--fsdp-keep-weights) is ZeRO-2's memory; resharding after forward is ZeRO-3's.
            reshard = not cfg.fsdp_keep_weights
            for block in model.blocks:
                fully_shard(block, reshard_after_forward=reshard)
            fully_shard(model, reshard_after_forward=reshard)
        self.optimizer = build_optimizer(model, OptimConfig(cfg.lr, cfg.weight_decay, cfg.beta1, cfg.beta2), self.device)
        if state is not None:
            if cfg.fsdp:
                from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

                set_optimizer_state_dict(model, self.optimizer, state["optimizer"],
                                         options=StateDictOptions(full_state_dict=True))
            else:
                self.optimizer.load_state_dict(state["optimizer"])
        wrapped = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[self.device.index] if self.device.type == "cuda" else None
        ) if self.ranks.enabled and not cfg.fsdp else model
        self.step_fn = TrainStep(wrapped, self.optimizer, self.device, grad_clip=cfg.grad_clip, compile=cfg.compile)
        self.step_fn.stop_requested = self.stop_requested

    def summary_lines(self, reason: str) -> list[str]:
        """`lsdt train`'s closing lines: how it ended, losses, tokens, elapsed, checkpoints (summary.py)."""
        return end_summary(self.cfg.run_dir, reason, self.step, self.tokens, self.elapsed_s)

    def config_record(self) -> dict:
        import torch

        resolved = self.cfg.to_dict()
        resolved["env"] = {
            "device": self.device_label, "device_type": self.device.type, "hardware": self.hardware,
            "peak_flops": self.peak_flops, "world_size": self.ranks.world, "params": self.n_params,
            "torch": torch.__version__, "threads": torch.get_num_threads(), "tokenizer": "bytes",
            "data_tokens_train": len(self.data.train), "data_tokens_val": len(self.data.val),
        }
        return resolved

    def start_fields(self) -> dict:
        if self.ranks.is_main:
            print(f"lsdt train: {self.spec.name} ({fmt.count(self.n_params)} params) on {self.device_label} "
                  f"x{self.ranks.world}; {self.data.describe()}; run dir {self.cfg.run_dir}"
                  + (f"; resumed at step {self.step}" if self.step else ""), flush=True)
        return {"params": self.n_params, "device": self.device_label, "hardware": self.hardware,
                "world_size": self.ranks.world, "data": self.data.describe()}

    def model_state(self) -> dict:
        """Under FSDP every rank must call this (it gathers the shards to rank 0)."""
        if self.cfg.fsdp:
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions, get_model_state_dict, get_optimizer_state_dict)

            opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
            weights = get_model_state_dict(self.model, options=opts)
            optim = get_optimizer_state_dict(self.model, self.optimizer, options=opts)
        else:
            weights, optim = self.model.state_dict(), self.optimizer.state_dict()
        return {"model": weights, "optimizer": optim, "config": self.cfg.to_dict()}

    def fetch(self, step: int, progress: float) -> Batch:
        """Step `step`'s micro-batches on the device; pinned + non_blocking on CUDA, so the
        host-to-device copy queues behind the running step instead of waiting for it."""
        cfg = self.cfg
        T = seq_len_at(self.curriculum, progress)
        B = max(1, cfg.device_batch * cfg.max_seq // T)  # constant tokens per micro-batch across stages
        self._shape = (T, B)
        micro = []
        for i in range(cfg.grad_accum):
            x, y = self.data.batch("train", B, T, seed=cfg.seed, step=step, rank=self.ranks.rank, micro=i)
            if self.device.type == "cuda":
                x, y = x.pin_memory(), y.pin_memory()
            micro.append((x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)))
        return Batch(micro, T, B)

    def train_step(self, batch: Batch, lr: float):
        self._shape = (batch.seq_len, batch.device_batch)
        return self.step_fn(batch.micro, lr)

    def evaluate(self, batch: Batch) -> float:
        import torch
        import torch.distributed as dist

        from engine.runtime.train.data import VAL_SEED
        from engine.runtime.train.step import autocast

        cfg, ranks, device, model = self.cfg, self.ranks, self.device, self.model
        T, B = batch.seq_len, batch.device_batch
        model.eval()
        losses = torch.zeros(2, device=device)  # sum, count over this rank's share
        with torch.no_grad(), autocast(device):
            # Every rank runs the same number of forwards (FSDP's all-gathers must pair up); a rank
            # whose index runs past eval_batches computes one more but does not count it.
            for k in range(-(-cfg.eval_batches // ranks.world)):
                i = k * ranks.world + ranks.rank
                x, y = self.data.batch("val", B, T, seed=VAL_SEED, step=min(i, cfg.eval_batches - 1))
                _, loss = model(x.to(device), y.to(device))
                if i < cfg.eval_batches:
                    losses += torch.stack((loss.float(), torch.ones((), device=device)))
        if ranks.enabled:
            dist.all_reduce(losses)
        model.train()
        return (losses[0] / losses[1].clamp(min=1)).item()

    def flops_per_token(self, batch: Batch) -> float:
        from engine.sizing.counts import flops_per_token

        return flops_per_token(self.spec, seq_len=batch.seq_len)

    def log_line(self, record: dict) -> str:
        return _log_line(self.cfg, record)

    def oom_message(self) -> str:
        T, B = self._shape
        return (f"out of memory at device batch {B} x seq {T} on {self.device_label}; "
                f"lower --device-batch (now {self.cfg.device_batch}) and raise --grad-accum, or lower --seq")


def main(argv: list[str] | None = None) -> int:
    from engine.flags import OneLineParser

    parser = OneLineParser(prog=PROG, description="Train a GPT and write a run directory (see docs/runtime.md).")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except UserError as exc:
        print(f"lsdt train: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C / the TUI's stop before the loop's own handler was installed
        print("lsdt train: interrupted before training started", file=sys.stderr)
        return 130


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
            status = rundir.run_status(cfg.run_dir)
            if status.state == "running":
                raise UserError(in_use(cfg.run_dir, status.pid))
            raise UserError(f"--run-dir {cfg.run_dir} already holds a run; add --resume to continue it, or pick another --run-dir")
    return train(cfg, resume=args.resume)


def _exit_rank(code: int) -> None:
    """A torchrun rank leaves by os._exit once its files are closed and the process group is gone.

    Gloo's C++ worker threads can still hold async work whose tensors need the GIL when the
    interpreter is finalized, and a rank dying there aborts ("terminate called without an active
    exception", SIGABRT) after a run that succeeded; torchrun then kills its peers and fails the job
    (pytorch/pytorch#190489, and #179291 on the finalization race). Everything the run writes is
    flushed and fsync'd by then (rundir, checkpoint), so skipping finalization loses nothing."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    code = main()
    if Ranks().enabled:
        _exit_rank(code)
    sys.exit(code)
