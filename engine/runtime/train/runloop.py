"""One training loop for every LSDT trainer: `lsdt train` (GPT) and each `lsdt moe` job.

RunLoop owns everything a run does around its steps, so the two trainers cannot drift apart:

    open      the run-dir lock (one writer), stale temp files swept, the newest valid checkpoint
              loaded (corrupt or unverifiable ones moved aside with an event)
    start     config.toml and the start / resume events
    steps     LR schedule (engine/runtime/train/schedule.py), the step, the loss summed on the device,
              the stop flag (SIGINT/SIGTERM, also checked between micro-batches)
    cadence   at log / eval / checkpoint / last steps only: sync, NaN check, metrics line, eval,
              checkpoint (written in the background, engine/runtime/train/checkpoint.py)
    end       the end event (completed | time_limit | signal | nan_loss | error) and metrics.csv

A trainer subclasses it and supplies what differs: `prepare` (model and optimizer from a checkpoint
or fresh), `fetch` (a step's batch), `train_step`, `evaluate`, `model_state`, `flops_per_token`,
`extra_fields` and `log_line`. `run()` returns an Outcome; the caller turns it into an exit code.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import UserError
from engine.runtime.train import rundir
from engine.runtime.train.runlock import RunDirLock
from engine.runtime.train.schedule import lr_at
from engine.runtime.train.signals import StopFlag


class Ranks:
    """torchrun's environment: rank, world size, local rank (1 process when absent)."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.enabled = self.world > 1

    @classmethod
    def single(cls) -> "Ranks":
        """One process whatever the environment says (an `lsdt moe` job)."""
        ranks = cls()
        ranks.world, ranks.rank, ranks.local_rank, ranks.enabled = 1, 0, 0, False
        return ranks

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()


@dataclass
class Cadence:
    """How long a run lasts and when it logs, evaluates and checkpoints (steps unless `hours`)."""

    steps: int | None
    warmup: int
    lr: float
    min_lr_frac: float
    decay: str
    log_every: int
    eval_every: int
    ckpt_every: int
    hours: float | None = None  # a wall-clock budget instead of `steps`
    keep_checkpoints: int = 3


@dataclass
class Batch:
    """One step's input: the micro-batches on the device and their shape."""

    micro: list
    seq_len: int
    device_batch: int

    @property
    def tokens(self) -> int:  # on this rank
        return self.device_batch * self.seq_len * len(self.micro)


@dataclass
class Outcome:
    reason: str  # one of rundir.END_REASONS
    step: int
    message: str | None = None
    signum: int | None = None
    end_fields: dict = field(default_factory=dict)


class RunLoop:
    """The loop; subclasses fill in the hooks below (see the module docstring)."""

    prog = "lsdt train"  # names the trainer in printed lines

    def __init__(self, run_dir: str | os.PathLike, cadence: Cadence, device, ranks: Ranks | None = None, out=None):
        self.run_dir = Path(run_dir)
        self.cadence = cadence
        self.device = device
        self.ranks = ranks or Ranks()
        self.out = out or sys.stdout
        self.step, self.tokens, self.elapsed_s = 0, 0, 0.0
        self.resumed_from: str | None = None
        self.writer: rundir.RunWriter | None = None
        self.ckpt = None
        self.stop: StopFlag | None = None
        self._lock: RunDirLock | None = None
        self._started = False  # the start event is written
        self.state_is_collective = False  # FSDP: every rank must call model_state (a gather)
        self.peak_flops: float | None = None  # the device's peak FLOP/s for MFU (None: unknown, mfu null)

    # ------------------------------------------------------------------ hooks

    def prepare(self, state: dict | None) -> None:
        """Load weights and optimizer state from `state` (None: a fresh run)."""
        raise NotImplementedError

    def model_state(self) -> dict:
        """What a checkpoint holds besides step, tokens, clock and RNG (weights, optimizer, config)."""
        raise NotImplementedError

    def fetch(self, step: int, progress: float) -> Batch:
        raise NotImplementedError

    def train_step(self, batch: Batch, lr: float):
        """A StepOutput, or None when the stop flag abandoned the step between micro-batches."""
        raise NotImplementedError

    def evaluate(self, batch: Batch) -> float:
        raise NotImplementedError

    def flops_per_token(self, batch: Batch) -> float:
        raise NotImplementedError

    def config_record(self) -> dict:
        """config.toml's content."""
        raise NotImplementedError

    def start_fields(self) -> dict:
        return {}

    def extra_fields(self, batch: Batch, out) -> dict:
        """Trainer-specific keys of a metrics line."""
        return {}

    def log_line(self, record: dict) -> str:
        raise NotImplementedError

    def on_completed(self) -> dict:
        """Work after the last checkpoint of a finished run (sealing); extra end-event fields."""
        return {}

    # ------------------------------------------------------------------ the run

    def run(self, resume: bool) -> Outcome:
        """Open the run directory, (re)start, train to the budget; always ends with an end event."""
        import torch

        try:
            state = self._open(resume)
            self.prepare(state)
            if state is not None:
                self._restore_counters(state)
            self._start(resume)
            return self._loop()
        except torch.cuda.OutOfMemoryError:  # (alias of torch.OutOfMemoryError on torch >= 2.5)
            message = self.oom_message()
            self._failed("oom", message)
            raise UserError(message) from None
        except UserError as exc:
            self._failed("user_error", str(exc))
            raise
        except Exception as exc:
            self._failed("exception", f"{type(exc).__name__}: {exc}")
            raise
        finally:
            self._close()

    def _failed(self, cause: str, message: str) -> None:
        """Error and end events, once the run has started: a failure before its start event (a refused
        lock, a checkpoint that does not fit the model) leaves no events, so a corrected command is not
        told the directory "already holds a run"."""
        if self._started:
            self._event("error", step=self.step, message=message, cause=cause)
            self._end("error", message)

    def oom_message(self) -> str:
        return f"out of memory at step {self.step}"

    def _open(self, resume: bool) -> dict | None:
        """Rank 0 takes the lock, sweeps temp files and loads (quarantining bad checkpoints) first; then
        the others load what is left, so every rank resumes from the same file."""
        from engine.runtime.train.checkpoint import load_latest, sweep_stale_tmp

        state = None
        if self.ranks.is_main:
            self._lock = RunDirLock(self.run_dir)
            self._lock.acquire()
            if not resume and rundir.is_run_dir(self.run_dir):  # another run finished here meanwhile
                raise UserError(f"--run-dir {self.run_dir} already holds a run; add --resume to continue it, "
                                "or pick another --run-dir")
            self.writer = rundir.RunWriter(self.run_dir)
            for path in sweep_stale_tmp(self.run_dir):
                self.writer.event("stale_tmp_removed", path=str(path))
            if resume:
                state, path, skipped = load_latest(self.run_dir, quarantine_bad=True)
                self._report_skipped(skipped)
                self.resumed_from = str(path) if path else None
        self.ranks.barrier()
        if resume and not self.ranks.is_main:
            state, path, _ = load_latest(self.run_dir)
            self.resumed_from = str(path) if path else None
        return state

    def _report_skipped(self, skipped) -> None:
        for bad in skipped:
            self.writer.event("checkpoint_skipped", path=str(bad.path), reason=bad.reason,
                              moved_to=str(bad.moved_to) if bad.moved_to else None)
            where = f"; moved to {bad.moved_to.name}" if bad.moved_to else ""
            print(f"{self.prog}: skipping checkpoint {bad.path.name}: {bad.reason}{where}", file=sys.stderr)

    def _restore_counters(self, state: dict) -> None:
        self.step, self.tokens, self.elapsed_s = state["step"], state["tokens"], state["elapsed_s"]
        cuda = state.get("rng_cuda") if self.device.type == "cuda" else None
        self._set_rng_state((state["rng_cpu"], cuda))

    def _start(self, resume: bool) -> None:
        from engine.runtime.train.checkpoint import CheckpointWriter

        if self.writer:
            self.writer.write_config(self.config_record())
            self.writer.event("start", step=self.step, resumed_from=self.resumed_from, **self.start_fields())
            if resume:
                self.writer.resume_event(self.step, self.resumed_from)
            self._started = True
            self.ckpt = CheckpointWriter(self.run_dir, keep=self.cadence.keep_checkpoints)
        self.stop = StopFlag()  # SIGINT/SIGTERM: stop after the current step (or micro-batch), checkpoint, end

    def stop_requested(self) -> bool:
        """For TrainStep between micro-batches: single-process only (a rank that left a step alone
        would leave its peers waiting in the gradient all-reduce)."""
        return not self.ranks.enabled and self.stop is not None and self.stop.signum is not None

    def _rng_state(self) -> tuple:
        import torch

        return torch.get_rng_state(), torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None

    def _set_rng_state(self, rng: tuple) -> None:
        import torch

        torch.set_rng_state(rng[0])
        if rng[1] is not None:
            torch.cuda.set_rng_state(rng[1], self.device)

    def checkpoint_state(self) -> dict:
        rng_cpu, rng_cuda = self._rng_state()
        return {"step": self.step, "tokens": self.tokens, "elapsed_s": self.elapsed_s, **self.model_state(),
                "rng_cpu": rng_cpu, "rng_cuda": rng_cuda}

    def _checkpoint(self, wait: bool) -> None:
        if self.ckpt:
            self.ckpt.save(self.step, self.checkpoint_state(), wait=wait)
            self.writer.checkpoint_events(self.ckpt.completed())
        elif self.state_is_collective:
            self.checkpoint_state()  # the other ranks' half of the gather

    # ------------------------------------------------------------------ progress

    def progress(self) -> float:
        """Fraction of the run done: by steps, or by training wall-clock for --hours."""
        c = self.cadence
        if c.hours is not None:
            return min(1.0, self.elapsed_s / (c.hours * 3600))
        return min(1.0, self.step / c.steps)

    def _budget_left(self, progress: float) -> bool:
        if self.cadence.hours is not None:  # progress is agreed between ranks (at sync points under DDP)
            return progress < 1.0
        return self.step < self.cadence.steps

    def _lr(self, progress: float) -> float:
        c = self.cadence
        decay_progress = progress if c.hours is not None else (self.step - c.warmup) / max(1, c.steps - c.warmup)
        return lr_at(self.step, decay_progress, c.lr, c.warmup, c.min_lr_frac, c.decay)

    def _eta_s(self, seconds_per_step: float) -> float:
        c = self.cadence
        if c.steps:
            return (c.steps - self.step) * seconds_per_step
        return max(0.0, c.hours * 3600 - self.elapsed_s)

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> Outcome:  # noqa: C901 - the cadence reads best in one piece
        import torch

        from engine.runtime.train.device import mfu, vram_bytes
        from engine.runtime.train.step import synchronize

        c, ranks, device = self.cadence, self.ranks, self.device
        # The step losses add up on the device (float64: the same sums as Python floats), so a step
        # does not wait for the device just to log; the host reads the sum at sync steps only.
        loss_acc = torch.zeros((), dtype=torch.float64, device=device)
        n_acc = 0
        t_last, tokens_last, step_last = time.perf_counter(), self.tokens, self.step
        progress = self.progress()
        loop_t0, elapsed_at_start = time.perf_counter(), self.elapsed_s
        pending = self.fetch(self.step, progress)
        while self._budget_left(progress):
            batch = pending
            lr = self._lr(progress)
            rng = None if ranks.enabled else self._rng_state()
            out = self.train_step(batch, lr)
            if out is None:  # stopped between micro-batches: the weights are still the last step's
                self._set_rng_state(rng)  # and so is the RNG (dropout draws of the abandoned step undone)
                return self._stopped()
            loss_acc += out.loss.double()
            n_acc += 1
            self.step += 1
            self.tokens += batch.tokens * ranks.world
            self.elapsed_s = elapsed_at_start + time.perf_counter() - loop_t0  # wall-clock: what --hours budgets
            if not ranks.enabled:
                progress = self.progress()
            if self._budget_left(progress):
                pending = self.fetch(self.step, progress)  # the host prepares the next batch while the device runs

            eval_now = self.step % c.eval_every == 0
            ckpt_now = self.step % c.ckpt_every == 0
            stop_seen = self.stop.signum is not None and not ranks.enabled
            if not (self.step % c.log_every == 0 or eval_now or ckpt_now or not self._budget_left(progress) or stop_seen):
                continue
            synchronize(device)
            mean_loss = loss_acc / n_acc
            flags = torch.tensor([1.0 if self.stop.signum else 0.0, self.elapsed_s], device=device)
            if ranks.enabled:  # every rank agrees on the loss, on stopping and on the clock
                import torch.distributed as dist

                dist.all_reduce(mean_loss)
                mean_loss /= ranks.world
                dist.all_reduce(flags, op=dist.ReduceOp.MAX)
                self.elapsed_s = flags[1].item()
                elapsed_at_start, loop_t0 = self.elapsed_s, time.perf_counter()
                progress = self.progress()
            loss = mean_loss.item()
            loss_acc.zero_()
            n_acc = 0
            now = time.perf_counter()
            tok_per_s = (self.tokens - tokens_last) / max(now - t_last, 1e-9)
            if not math.isfinite(loss):
                message = (f"loss is {loss} at step {self.step}; the newest checkpoint is the last good state "
                           "(lower --lr?)")
                self._event("error", step=self.step, message=message, cause="nan_loss")
                self._end("nan_loss", message)
                return Outcome("nan_loss", self.step, message)
            last = not self._budget_left(progress)
            val_loss = self.evaluate(batch) if eval_now or last else None
            record = {
                "step": self.step, "time": time.time(), "loss": loss, "lr": lr, "tokens": self.tokens,
                "tok_per_s": tok_per_s, "mfu": mfu(self.flops_per_token(batch), tok_per_s, self.peak_flops, n_devices=ranks.world),
                **vram_bytes(device),
                "seq_len": batch.seq_len, "device_batch": batch.device_batch,
                "grad_norm": out.grad_norm.item() if out.grad_norm is not None else None,
                "elapsed_s": self.elapsed_s, "eta_s": self._eta_s((now - t_last) / max(self.step - step_last, 1)),
                **self.extra_fields(batch, out),
            }
            if val_loss is not None:
                record["val_loss"] = val_loss
            if self.writer:
                self.writer.metric(record)
                if val_loss is not None:
                    self.writer.event("eval", step=self.step, val_loss=val_loss, seq_len=batch.seq_len)
                print(self.log_line(record), file=self.out, flush=True)
            t_last, tokens_last, step_last = time.perf_counter(), self.tokens, self.step
            stopping = bool(flags[0].item())
            if ckpt_now or last or stopping:
                self._checkpoint(wait=stopping or last)
            if stopping:
                return self._stopped(checkpointed=True)
        if self.ckpt:
            self.ckpt.wait()
            self.writer.checkpoint_events(self.ckpt.completed())
        reason = "completed" if c.hours is None else "time_limit"
        fields = self.on_completed()
        self._end(reason, None, **fields)
        return Outcome(reason, self.step, end_fields=fields)

    def _stopped(self, checkpointed: bool = False) -> Outcome:
        if not checkpointed:
            self._checkpoint(wait=True)
        signum = self.stop.signum or signal.SIGINT
        message = f"stopped by {signal.Signals(signum).name} at step {self.step}"
        if self.ranks.is_main:
            # How to continue is said by whoever shows the stop: the CLI's flag here, the TUI its
            # resume key (the end event, which both read, says only what happened).
            print(f"{self.prog}: {message}; --resume continues", file=sys.stderr, flush=True)
        self._end("signal", message)
        return Outcome("signal", self.step, message, signum=signum)

    # ------------------------------------------------------------------ ending

    def _event(self, kind: str, **fields: Any) -> None:
        """An event on a path that is already failing: a full disk must not turn it into a traceback."""
        if self.writer:
            try:
                self.writer.event(kind, **fields)
            except (OSError, UserError):
                pass

    def summary_lines(self, reason: str) -> list[str]:
        """What the main rank prints once the run has ended (its end event written); none by default."""
        return []

    def _end(self, reason: str, message: str | None, **fields: Any) -> None:
        if self.ckpt:
            try:
                self.ckpt.wait()
            except Exception as exc:  # the write that failed is already the error being reported
                message = message or str(exc)
            for step, path in self.ckpt.completed():
                self._event("checkpoint", step=step, path=str(path))
            self.ckpt = None
        if self.writer:
            self._event("end", reason=reason, step=self.step, tokens=self.tokens, elapsed_s=self.elapsed_s,
                        message=message, **fields)
            if (self.run_dir / rundir.METRICS_FILE).exists():  # a run that ended before its first log line has none
                try:
                    rundir.export_csv(self.run_dir)
                except UserError:
                    pass
            self.writer = None
            for line in self.summary_lines(reason):
                print(line, flush=True)

    def _close(self) -> None:
        if self.stop:
            self.stop.restore()
            self.stop = None
        if self._lock:
            self._lock.release()
            self._lock = None


def exit_code(outcome: Outcome) -> int:
    """The process exit code of an outcome: 0 done, 3 NaN loss, 128 + N stopped by signal N (130 SIGINT,
    143 SIGTERM), as a shell reports a process killed by that signal."""
    if outcome.reason == "signal":
        return 128 + int(outcome.signum or signal.SIGINT)
    return 3 if outcome.reason == "nan_loss" else 0
