"""Throughput + VRAM probes (the seed's "M0" map): depth x sequence length -> tok/s, step time, peak VRAM.

This module is the sweep's driver and is torch-free: every (depth, seq_len) config runs in a fresh
`python -m engine.runtime.probe.worker` subprocess, so an OOM, a CUDA error or a crash in one config
never poisons the next (the caching allocator, fragmentation and CUDA context all start clean),
and a probe killed mid-way leaves the driver (and the TUI that launched it) standing.

The worker builds the band model (engine.sizing.shapes.band_spec), finds the largest power-of-two
device batch that fits (`largest_fitting_batch`), warms up, and times steps of the shared training
step (engine.runtime.train.step.TrainStep) between two device synchronisations.

Output file (written atomically after every config, so it always holds the configs done so far):

    {"device": "NVIDIA H100 80GB HBM3", "hardware": "h100-sxm" | null,
     "results": [{"depth", "seq_len", "device_batch", "tok_per_s", "step_time_s",
                  "peak_vram_bytes", "mfu", "status": "ok"|"oom"|"error", ...extra keys}]}

Streaming (`lsdt probe --jsonl`, what the TUI reads): stdout carries one JSON object per line,
`{"event": "start", ...}`, then `{"event": "result", "index": i, "total": n, ...row}` per config as
it finishes, then `{"event": "done", ...}`. See docs/probe-telemetry.md.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine import inputs
from engine.atomic import write_atomic
from engine.errors import UserError
from engine.runtime.train.signals import StopFlag
from engine.sizing.counts import flops_per_token, param_counts
from engine.sizing.shapes import DEFAULT_HEAD_DIM, DEFAULT_VOCAB, band_spec

# nanochat's total batch: 2^19 = 524,288 tokens per optimizer step (karpathy/nanochat, base_train.py
# `total_batch_size`), reached with gradient accumulation when the device batch is smaller.
DEFAULT_BATCH_TOKENS = 2**19
DEFAULT_DEPTHS = (12, 14, 16, 18, 20)  # the seed's M0 grid
DEFAULT_SEQS = (512, 1024, 2048)
DEFAULT_TIMEOUT_S = 900.0  # per config; a d20 x 2048 probe takes well under a minute on an H100
# A doubled batch must be at least 5 % faster to be worth its memory on a CPU (search_batch); below
# that, timing noise between two short measurements is of the same order.
DEFAULT_SATURATION = 0.05
# Two flat doublings in a row, not one: on a busy machine one slow measurement is common, two are not.
SATURATION_PATIENCE = 2
STATUSES = ("ok", "oom", "error")
RESULT_KEYS = ("depth", "seq_len", "device_batch", "tok_per_s", "step_time_s", "peak_vram_bytes", "mfu", "status")


@dataclass(frozen=True)
class ProbeSettings:
    """What every config of a sweep shares."""

    head_dim: int = DEFAULT_HEAD_DIM
    vocab_size: int = DEFAULT_VOCAB
    steps: int = 30  # timed steps
    warmup: int = 5  # untimed steps first (allocator, cuDNN/cuBLAS heuristics, compile)
    device: str = "auto"
    batch_tokens: int = DEFAULT_BATCH_TOKENS  # target tokens per optimizer step (sets grad_accum)
    max_batch: int | None = None  # cap on the device batch search (default batch_tokens // seq_len)
    micro_batches: int = 1  # micro-batches per timed optimizer step
    compile: bool = False
    memory_cap_bytes: float | None = None  # probe as if the device had only this much memory
    # CPU only: stop doubling the batch once tokens/s rises by less than this (search_batch)
    saturation: float = DEFAULT_SATURATION
    timeout_s: float = DEFAULT_TIMEOUT_S
    seed: int = 0


# --------------------------------------------------------------------------- the batch search


def is_oom(exc: BaseException) -> bool:
    """An out-of-memory failure of any allocator: CUDA (torch.OutOfMemoryError), CPU (torch's
    DefaultCPUAllocator RuntimeError "can't allocate memory"), or Python's MemoryError."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text or "not enough memory" in text
    )


def search_batch(measure: Callable[[int], float | None], max_batch: int,
                 saturation: float | None = None) -> tuple[int | None, list[dict]]:
    """The device batch to probe at: powers of two from 1 up to max_batch.

    `measure(batch)` runs real training steps at that batch and returns their tokens/s, or None on
    OOM (after freeing the memory); any other exception propagates (the config is then an error, not
    an OOM). Memory grows with the batch, so the first OOM ends the search.

    saturation None: the largest batch that fits (a GPU: its memory is a hard wall that fails fast
    and cleanly, and the seed's M0 map asks for the largest batch).
    saturation s: also stop once SATURATION_PATIENCE doublings in a row have not raised tokens/s by
    at least a fraction s over the best so far, and keep that best batch (a CPU: past the point where its cores are busy a bigger
    batch only costs memory, and Linux overcommit never fails an allocation, so "largest that fits"
    would mean "until the OOM killer ends something").

    Returns (None, tried) when even batch 1 does not fit; `tried` is [{"batch", "fits"
    (, "tok_per_s")}, ...] in order.
    """
    if max_batch < 1:
        raise ValueError(f"max_batch = {max_batch}; accepted: >= 1")
    best, best_rate, tried, batch, flat = None, 0.0, [], 1, 0
    while batch <= max_batch:
        rate = measure(batch)
        entry = {"batch": batch, "fits": rate is not None}
        if saturation is not None and rate is not None:
            entry["tok_per_s"] = rate
        tried.append(entry)
        if rate is None:
            break
        if saturation is None or best is None or rate >= best_rate * (1 + saturation):
            best, best_rate, flat = batch, rate, 0
        else:
            flat += 1
            if flat >= SATURATION_PATIENCE:
                break  # saturated: the smaller batch is as fast and uses less memory
        batch *= 2
    return best, tried


def largest_fitting_batch(fits: Callable[[int], bool], max_batch: int) -> tuple[int | None, list[dict]]:
    """Largest power-of-two batch <= max_batch for which `fits(batch)` is True (search_batch without
    a saturation rule)."""
    return search_batch(lambda b: 1.0 if fits(b) else None, max_batch)


def grad_accum_for(batch_tokens: int, device_batch: int, seq_len: int) -> int:
    """Micro-batches per optimizer step to reach at least `batch_tokens` tokens."""
    return max(1, math.ceil(batch_tokens / (device_batch * seq_len)))


def search_cap(settings: ProbeSettings, seq_len: int) -> int:
    """The device batch never needs to exceed one optimizer step's sequences (grad_accum 1)."""
    cap = max(1, settings.batch_tokens // seq_len)
    return min(cap, settings.max_batch) if settings.max_batch else cap


# --------------------------------------------------------------------------- the sweep


def parse_int_list(text: str, flag: str) -> tuple[int, ...]:
    """'12,14,16' -> (12, 14, 16) (the input grammar's list); a UserError naming the flag otherwise."""
    return tuple(dict.fromkeys(inputs.int_list(text, flag)))  # drop repeats, keep order


def config_extras(depth: int, seq_len: int, s: ProbeSettings) -> dict:
    """The model facts of a config (from the sizing engine, no torch)."""
    spec = band_spec(depth, seq_len, s.head_dim, s.vocab_size)
    return {
        "d_model": spec.d_model,
        "n_head": spec.n_head,
        "head_dim": spec.head_dim,
        "vocab_size": spec.vocab_size,
        "params": param_counts(spec).total,
        "flops_per_token": flops_per_token(spec, seq_len),
    }


def _worker_command(depth: int, seq_len: int, s: ProbeSettings, max_batch: int, result_path: Path) -> list[str]:
    cmd = [
        sys.executable, "-m", "engine.runtime.probe.worker",
        "--depth", str(depth), "--seq", str(seq_len), "--head-dim", str(s.head_dim), "--vocab", str(s.vocab_size),
        "--steps", str(s.steps), "--warmup", str(s.warmup), "--device", s.device, "--max-batch", str(max_batch),
        "--micro-batches", str(s.micro_batches), "--seed", str(s.seed), "--result", str(result_path),
        "--saturation", repr(float(s.saturation)), "--parent-pid", str(os.getpid()),
    ]
    if s.compile:
        cmd.append("--compile")
    if s.memory_cap_bytes:
        cmd += ["--memory-cap", repr(float(s.memory_cap_bytes))]
    return cmd


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


def _start_worker(cmd: list[str]) -> subprocess.Popen:
    """Popen with SIGINT/SIGTERM only recorded while the worker is forked and exec'd. Raised inside
    Popen, an interrupt would leave a running worker that no one kills (the caller has no handle to
    it yet); recorded, it kills the new worker here and is raised as the interrupt it was."""
    stop = StopFlag()
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    finally:
        stop.restore()
    if stop.signum is not None:
        proc.kill()
        proc.wait()
        signal.raise_signal(stop.signum)  # the restored handler turns it into its exception (SIGTERM: 143)
        raise KeyboardInterrupt  # a handler that returned (ignored signal): still stop here
    return proc


def run_config(depth: int, seq_len: int, s: ProbeSettings, max_batch: int) -> dict:
    """Run one config in a fresh worker process; always returns a row (never raises for the config's
    own failures), except a UserError the worker reports (e.g. --device cuda without a GPU)."""
    with tempfile.TemporaryDirectory(prefix="lsdt-probe-") as tmp:
        result_path = Path(tmp) / "result.json"
        t0 = time.monotonic()
        proc = _start_worker(_worker_command(depth, seq_len, s, max_batch, result_path))
        try:
            _, stderr = proc.communicate(timeout=s.timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return _failed(depth, seq_len, f"timed out after {s.timeout_s:g} s", time.monotonic() - t0)
        finally:
            if proc.poll() is None:  # interrupted (Ctrl-C / SIGTERM): the worker goes with us
                proc.kill()
                proc.wait()
        wall_s = time.monotonic() - t0
        if proc.returncode == 2:
            raise UserError(_last_line(stderr).removeprefix("lsdt: error: ") or "probe worker rejected its arguments")
        if result_path.is_file():
            row = json.loads(result_path.read_text(encoding="utf-8"))
            row["wall_s"] = wall_s
            return row
    if proc.returncode < 0:
        why = f"worker killed by signal {-proc.returncode}"
        if proc.returncode == -signal.SIGKILL:
            why += " (the OS out-of-memory killer?)"
    else:
        why = f"worker exited with code {proc.returncode}"
    detail = _last_line(stderr)
    return _failed(depth, seq_len, f"{why}: {detail}" if detail else why, wall_s)


def _failed(depth: int, seq_len: int, error: str, wall_s: float) -> dict:
    return {
        "depth": depth, "seq_len": seq_len, "device_batch": None, "tok_per_s": None, "step_time_s": None,
        "peak_vram_bytes": None, "mfu": None, "status": "error", "error": error, "wall_s": wall_s,
    }


@dataclass
class Sweep:
    """A probe sweep over depths x seqs; `run()` streams rows to `on_result` and to `out` (atomically)."""

    depths: tuple[int, ...] = DEFAULT_DEPTHS
    seqs: tuple[int, ...] = DEFAULT_SEQS
    settings: ProbeSettings = field(default_factory=ProbeSettings)
    out: Path | None = None
    results: list[dict] = field(default_factory=list)
    device: str | None = None
    hardware: str | None = None

    def configs(self) -> list[tuple[int, int]]:
        return [(d, s) for d in self.depths for s in self.seqs]

    def validate(self) -> None:
        """Every shape must be buildable before any subprocess starts."""
        for depth, seq_len in self.configs():
            band_spec(depth, seq_len, self.settings.head_dim, self.settings.vocab_size)
        if self.settings.head_dim % 2:
            raise UserError(f"--head-dim {self.settings.head_dim}; accepted: an even integer (RoPE rotates pairs)")

    def _upper_bound(self, depth: int, seq_len: int) -> int:
        """The search cap, tightened by configs already done: a deeper model or a longer sequence
        never fits more sequences than a shallower / shorter one did (memory grows with both)."""
        cap = search_cap(self.settings, seq_len)
        for row in self.results:
            if row["status"] == "ok" and row["depth"] <= depth and row["seq_len"] <= seq_len:
                cap = min(cap, row["device_batch"])
        return cap

    def document(self) -> dict:
        return {
            "device": self.device or self.settings.device,
            "hardware": self.hardware,
            "results": list(self.results),
        }

    def run(self, on_result: Callable[[dict, int, int], None] | None = None) -> dict:
        self.validate()
        configs = self.configs()
        for i, (depth, seq_len) in enumerate(configs):
            row = run_config(depth, seq_len, self.settings, self._upper_bound(depth, seq_len))
            row = {**row, **{k: v for k, v in config_extras(depth, seq_len, self.settings).items() if k not in row}}
            if row["status"] == "ok":
                row["grad_accum"] = grad_accum_for(self.settings.batch_tokens, row["device_batch"], seq_len)
            row["batch_tokens"] = self.settings.batch_tokens
            if self.device is None and row.get("device"):
                self.device, self.hardware = row["device"], row.get("hardware")
            self.results.append(row)
            if self.out is not None:
                write_atomic(self.out, json.dumps(self.document(), indent=2, allow_nan=False) + "\n")
            if on_result is not None:
                on_result(row, i, len(configs))
        return self.document()

