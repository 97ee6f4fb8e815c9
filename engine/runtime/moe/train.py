"""Two-phase MoE training on the runtime's loop pieces: TrainStep, run directories, checkpoints, resume.

Jobs (each a run directory, engine/runtime/moe/config.py has the layout):

    trunk          phase 1: embedding + trunk blocks (+ the tied head) on every domain, rows drawn
                   with the data mix; forward = MoE.forward_trunk
    expert:NAME    phase 2: the trunk loaded from weights/trunk.s7l and frozen (requires_grad off, not
                   in the optimizer, so neither gradients nor weight decay touch it); only expert NAME
                   trains, on NAME's slice, through MoE.forward_expert
    router         phase 2: the frozen trunk; the router learns to send each token to its domain's
                   expert: cross-entropy against the row's domain + alpha x the Switch load-balancing
                   loss (engine/runtime/model/moe.py). It needs no expert, so it runs beside them.

Each job is a MoEJobRun on the shared RunLoop (engine/runtime/train/runloop.py, the loop `lsdt train`
runs too): AdamW over the trainable parameters, warm-up + cosine LR, metrics/events, checkpoints every
ckpt_every steps and at the end, a run-dir lock, `resume` from the newest good checkpoint (data
batches are seeded by step, so a resumed job sees the same batches). SIGINT/SIGTERM stop a job after
the current step with a checkpoint and an end event (reason "signal"), then raise Stopped (exit
128 + signal). The job ends by sealing its trained parameters into weights/<job>.s7l (FP32,
deterministic bytes).

Phase 2's jobs run as parallel processes where devices allow: one per GPU with several GPUs; on CPU,
two processes of one torch thread each (`workers`, default min(2, cores)); workers = 1 runs them one
after another in this process. A job always runs with the same thread count (1 on CPU), so its weight
file is byte-identical whichever way the jobs were scheduled (a test checks this).

`python -m engine.runtime.moe.train --run-dir DIR --job JOB [--threads N] [--resume]` runs one job
(what the parallel runner launches).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from engine.errors import UserError
from engine.runtime.train import rundir
from engine.runtime.moe.config import MoETrainConfig, job_dir, phase2_jobs, read_config, weights_path
from engine.runtime.train.runloop import Batch, Cadence, Ranks, RunLoop
from engine.runtime.train.signals import StopFlag, Stopped
from engine.sizing.counts import attention_params, flops_per_token, mlp_params

PART_KIND = "lsdt-moe-fp32-part"


# --------------------------------------------------------------------------- FLOPs (for MFU)


def job_flops_per_token(spec, job: str, seq_len: int) -> float:
    """Training FLOPs per token of a job's path (PaLM convention, engine.sizing.counts).

    trunk: the trunk_layers-deep dense LM (6 N + attention). Phase 2: the frozen trunk runs forward
    only, 2 N_trunk + 4 x its attention FLOPs (a third of the 12 x ... training term), then
    expert:   the expert stack and head, trained: 6 N + attention;
    router:   6 x d_model x n_experts (its backward stops at the frozen trunk).
    """
    T = spec.trunk_layers
    width = spec.n_head * spec.head_dim
    block = attention_params(spec) + mlp_params(spec)
    windows = spec.layer_windows()
    dense = spec.with_(n_experts=0, experts_per_token=0, trunk_layers=0)

    def attn_ctx(ws) -> float:  # sum over the layers of keys per query (non-causal, as flops_per_token)
        return sum(min(w, seq_len) for w in ws)

    if job == "trunk":
        return flops_per_token(dense.with_(n_layer=T), seq_len=seq_len)
    trunk_fwd = 2.0 * T * block + 4.0 * width * attn_ctx(windows[:T])
    if job == "router":
        return trunk_fwd + 6.0 * spec.d_model * spec.n_experts
    head = spec.vocab_size * spec.d_model
    return trunk_fwd + 6.0 * ((spec.n_layer - T) * block + head) + 12.0 * width * attn_ctx(windows[T:])


# --------------------------------------------------------------------------- weights files


def part_names(moe, job: str) -> dict:
    if job == "trunk":
        return moe.trunk_parameters()
    if job == "router":
        return moe.router_parameters()
    e = expert_index(moe, job)
    return moe.expert_parameters(e)


def expert_index(moe, job: str) -> int:
    return domain_index(job, moe.domain_names)


def domain_index(job: str, names: list[str]) -> int:
    """The expert number of job "expert:NAME" among the run's domains; a UserError for an unknown NAME."""
    name = job.split(":", 1)[1]
    if name not in names:
        raise UserError(f"job {job!r}: no such domain; accepted: {', '.join('expert:' + n for n in names)}")
    return names.index(name)


def seal_part(moe, job: str, cfg: MoETrainConfig, path: Path, trunk_root: str | None):
    from engine.runtime.seal.s7l import canonical_json, seal_tensors

    tensors = {n: p.detach().float().cpu() for n, p in part_names(moe, job).items()}
    meta = {"kind": PART_KIND, "part": job, "moe_config": canonical_json(moe.config.to_dict()).decode(),
            "train_config": canonical_json(cfg.to_dict()).decode()}
    if trunk_root:
        meta["trunk_merkle_root"] = trunk_root
    return seal_tensors(tensors, path, meta)


def load_part(moe, path: Path, job: str) -> tuple[str, dict]:
    """Copy a sealed part's tensors into `moe` (every hash verified first); (its Merkle root, metadata)."""
    from engine.runtime.seal.s7l import load_tensors, verify

    if not path.is_file():
        raise UserError(f"{path}: missing; run `lsdt moe train --phase {'trunk' if job == 'trunk' else 'experts'}` first")
    tensors, meta = load_tensors(path)
    if meta.get("kind") != PART_KIND or meta.get("part") != job:
        raise UserError(f"{path}: holds {meta.get('kind')!r} part {meta.get('part')!r}; accepted: the {job} weights of a MoE run")
    if json.loads(meta["moe_config"]) != moe.config.to_dict():
        raise UserError(f"{path}: trained for another model shape than this run's ({moe.config.n_layer} layers, "
                        f"d_model {moe.config.d_model}); accepted: weights from the same --model/--tiny")
    params = part_names(moe, job)
    if set(tensors) != set(params):
        raise UserError(f"{path}: tensors {sorted(set(tensors) ^ set(params))[:3]} do not match the {job} part")
    import torch

    with torch.no_grad():
        for n, p in params.items():
            p.copy_(tensors[n].to(p.device))
    return verify(path, determinism=False).merkle_root, meta


def build_moe(cfg: MoETrainConfig, device="cpu"):
    import torch

    from engine.runtime.model.moe import MoE, MoEConfig

    torch.manual_seed(cfg.seed)
    moe = MoE(MoEConfig.from_spec(cfg.spec)).to(device)
    moe.domain_names = cfg.domain_names
    return moe


def assemble(root: str | Path, cfg: MoETrainConfig | None = None):
    """The trained MoE from DIR/weights/*.s7l; every expert and the router must name the trunk's root."""
    cfg = cfg or read_config(root)
    moe = build_moe(cfg)
    trunk_root, _ = load_part(moe, weights_path(root, "trunk"), "trunk")
    for job in phase2_jobs(cfg):
        _, meta = load_part(moe, weights_path(root, job), job)
        if meta.get("trunk_merkle_root") != trunk_root:
            raise UserError(f"{weights_path(root, job)}: trained on trunk {str(meta.get('trunk_merkle_root'))[:16]}.., "
                            f"not on {weights_path(root, 'trunk')} ({trunk_root[:16]}..); rerun --phase experts")
    return moe.eval()


# --------------------------------------------------------------------------- one job


def _phase_model(moe, job: str, alpha: float):
    """An nn.Module whose forward(x, y) -> (logits, loss) is the job's objective (what TrainStep calls)."""
    import torch.nn.functional as F
    from torch import nn

    from engine.runtime.model.moe import load_balancing_loss

    class PhaseModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.moe = moe
            self.expert = expert_index(moe, job) if job.startswith("expert:") else None

        def forward(self, x, y):
            if job == "trunk":
                return self.moe.forward_trunk(x, y)
            if self.expert is not None:
                return self.moe.forward_expert(self.expert, x, y)
            # router: y holds each token's domain id
            _, logits, probs, _, top_i = self.moe.route(x)
            ce = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))
            aux = load_balancing_loss(probs.reshape(-1, probs.size(-1)), top_i.reshape(-1, top_i.size(-1)),
                                      self.moe.config.n_experts)
            return logits, ce + alpha * aux

    return PhaseModel()


def _batch(domains, job: str, e: int | None, split: str, B: int, T: int, seed: int, step: int):
    if job == "trunk":
        x, y, _ = domains.mixed_batch(split, B, T, seed=seed, step=step)
        return x, y
    if job == "router":
        x, _, d = domains.mixed_batch(split, B, T, seed=seed, step=step)
        return x, d.unsqueeze(1).expand(-1, T).contiguous()
    return domains.data[e].batch(split, B, T, seed=seed, step=step)


@dataclass
class JobOutcome:
    path: Path  # the sealed weights file
    merkle_root: str
    moe: object  # the MoE as trained (on its device): trunk, this job's part, the rest as initialised


class MoEJobRun(RunLoop):
    """One MoE job on the shared RunLoop: the job's trainable part, its batches, eval and sealing."""

    prog = "lsdt moe"

    def __init__(self, cfg: MoETrainConfig, root: Path, job: str, device, out):
        from engine.runtime.moe.data import DomainSet
        from engine.runtime.train.device import device_name, peak_flops_for
        from engine.runtime.train.step import OptimConfig, TrainStep, build_optimizer

        steps = cfg.steps_for(job)
        super().__init__(job_dir(root, job), Cadence(
            steps=steps, warmup=min(cfg.warmup, steps - 1), lr=cfg.lr, min_lr_frac=cfg.min_lr_frac, decay="cosine",
            log_every=cfg.log_every, eval_every=cfg.eval_every, ckpt_every=cfg.ckpt_every), device, Ranks.single(), out)
        self.cfg, self.root, self.job = cfg, root, job
        self.spec = cfg.spec
        self.domains = DomainSet.load(cfg.domain_sources(), cfg.data_cache or None, cfg.val_fraction, cfg.mix)
        self.T = self.spec.seq_len
        self.domains.check_seq_len(self.T)
        self.moe = build_moe(cfg, device)
        self.trunk_root = None
        if job != "trunk":
            self.trunk_root, _ = load_part(self.moe, weights_path(root, "trunk"), "trunk")
        self.trainable = part_names(self.moe, job)
        for p in self.moe.parameters():
            p.requires_grad_(False)
        for p in self.trainable.values():
            p.requires_grad_(True)
        self.model = _phase_model(self.moe, job, cfg.aux_alpha)
        self.expert = self.model.expert
        self.optimizer = build_optimizer(self.model, OptimConfig(cfg.lr, cfg.weight_decay), device)
        self.step_fn = TrainStep(self.model, self.optimizer, device, grad_clip=cfg.grad_clip)
        self.step_fn.stop_requested = self.stop_requested
        self.device_label = device_name(device)
        self.peak_flops = peak_flops_for(device)
        self.n_train = sum(p.numel() for p in self.trainable.values())
        self.fpt = job_flops_per_token(self.spec, job, self.T)
        self.sealed: JobOutcome | None = None

    def prepare(self, state: dict | None) -> None:
        import torch

        if state is not None:
            with torch.no_grad():
                for n, p in self.trainable.items():
                    p.copy_(state["model"][n].to(self.device))
            self.optimizer.load_state_dict(state["optimizer"])
        self.model.train()

    def config_record(self) -> dict:
        import torch

        return {**self.cfg.to_dict(), "job": self.job, "env": {
            "device": self.device_label, "device_type": self.device.type, "peak_flops": self.peak_flops,
            "params_total": self.moe.num_params(), "params_trained": self.n_train, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "trunk_merkle_root": self.trunk_root}}

    def start_fields(self) -> dict:
        print(f"lsdt moe: {self.job}: {self.n_train:,} of {self.moe.num_params():,} params trained on {self.device_label}; "
              f"{self.cadence.steps} steps of {self.cfg.device_batch} x {self.T}"
              + (f"; resumed at step {self.step}" if self.step else ""), file=self.out, flush=True)
        return {"job": self.job, "params": self.n_train, "device": self.device_label, "data": self.domains.describe()}

    def model_state(self) -> dict:
        return {"job": self.job, "model": {n: p.detach() for n, p in self.trainable.items()},
                "optimizer": self.optimizer.state_dict(), "config": self.cfg.to_dict()}

    def fetch(self, step: int, progress: float) -> Batch:
        x, y = _batch(self.domains, self.job, self.expert, "train", self.cfg.device_batch, self.T, self.cfg.seed, step)
        return Batch([(x.to(self.device), y.to(self.device))], self.T, self.cfg.device_batch)

    def train_step(self, batch: Batch, lr: float):
        return self.step_fn(batch.micro, lr)

    def evaluate(self, batch: Batch) -> float:
        import torch

        from engine.runtime.train.data import VAL_SEED
        from engine.runtime.train.step import autocast

        self.model.eval()
        total = 0.0
        with torch.no_grad(), autocast(self.device):
            for i in range(self.cfg.eval_batches):
                x, y = _batch(self.domains, self.job, self.expert, "val", batch.device_batch, self.T, VAL_SEED, i)
                total += self.model(x.to(self.device), y.to(self.device))[1].item()
        self.model.train()
        return total / self.cfg.eval_batches

    def flops_per_token(self, batch: Batch) -> float:
        return self.fpt

    def extra_fields(self, batch: Batch, out) -> dict:
        return {"job": self.job}

    def log_line(self, rec: dict) -> str:
        val = f" | val {rec['val_loss']:.4f}" if "val_loss" in rec else ""
        return (f"{self.job} step {rec['step']}/{self.cadence.steps} | loss {rec['loss']:.4f}{val} | "
                f"lr {rec['lr']:.2e} | {rec['tok_per_s']:,.0f} tok/s")

    def on_completed(self) -> dict:
        """Seal the trained part (FP32, deterministic bytes); the end event names the file and its root."""
        info = seal_part(self.moe, self.job, self.cfg, weights_path(self.root, self.job), self.trunk_root)
        print(f"{self.job}: weights {info.path} merkle_root {info.merkle_root}", file=self.out, flush=True)
        self.sealed = JobOutcome(info.path, info.merkle_root, self.moe)
        return {"weights": str(info.path), "merkle_root": info.merkle_root}


def run_job(cfg: MoETrainConfig, root: str | Path, job: str, resume: bool = False, threads: int | None = None,
            out=None) -> JobOutcome:
    """Train one job to its step budget (or continue it); returns its sealed weights file and the model.
    A signal ends it with a checkpoint and raises Stopped (nothing sealed); a NaN loss is a UserError."""
    import torch

    from engine.runtime.train.device import resolve_device
    from engine.runtime.train.step import configure_backends

    root = Path(root)
    jdir = job_dir(root, job)
    if job.startswith("expert:"):
        domain_index(job, cfg.domain_names)  # an unknown domain fails before any data is read
    if rundir.is_run_dir(jdir) and not resume:
        raise UserError(f"{jdir} already holds a run; add --resume to continue it, or pick another --run-dir")
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        device = resolve_device(cfg.device)
        configure_backends(device)
        loop = MoEJobRun(cfg, root, job, device, out or sys.stdout)
        outcome = loop.run(resume)
        if outcome.reason == "signal":
            raise Stopped(outcome.signum)
        if outcome.reason == "nan_loss":
            raise UserError(f"{job}: {outcome.message}")
        return loop.sealed
    finally:
        torch.set_num_threads(old_threads)


# --------------------------------------------------------------------------- phase 2: jobs in parallel


def job_done(root: Path, job: str) -> bool:
    """The job's sealed weights exist and verify (a finished job is not rerun on --resume)."""
    from engine.runtime.seal.s7l import verify

    path = weights_path(root, job)
    if not path.is_file():
        return False
    try:
        return verify(path, determinism=False).ok
    except UserError:
        return False


def default_workers(device: str) -> int:
    """One process per GPU; on CPU two (or one on a single core)."""
    if device != "cpu":
        try:
            import torch

            if torch.cuda.is_available():
                return max(1, torch.cuda.device_count())
        except ImportError:
            pass
        if device == "cuda":
            return 1
    return max(1, min(2, os.cpu_count() or 1))


def run_phase2(cfg: MoETrainConfig, root: str | Path, workers: int, resume: bool = False, out=None) -> list[Path]:
    """Train every expert and the router (frozen trunk): in this process if workers == 1, else a pool."""
    out = out or sys.stdout
    root = Path(root)
    jobs = [j for j in phase2_jobs(cfg) if not (resume and job_done(root, j))]
    cpu_threads = 1  # one torch thread per job on CPU: the same arithmetic whatever the scheduling
    uses_cuda = _uses_cuda(cfg.device)
    print(f"lsdt moe: phase 2: {len(jobs)} job(s) ({', '.join(jobs) or 'all done'}) on "
          f"{workers} {'process' if workers == 1 else 'parallel processes'}", file=out, flush=True)
    if workers <= 1:
        for job in jobs:
            run_job(cfg, root, job, resume=resume, threads=None if uses_cuda else cpu_threads, out=out)
        return [weights_path(root, j) for j in phase2_jobs(cfg)]
    pending = list(jobs)
    running: dict[str, tuple[subprocess.Popen, threading.Thread, list[str], int]] = {}
    free_slots = list(range(workers))
    failures = []
    lock = threading.Lock()

    def pump(job: str, proc: subprocess.Popen, tail: list[str]) -> None:
        for line in proc.stdout:
            tail.append(line.rstrip())
            del tail[:-20]
            with lock:
                print(f"[{job}] {line.rstrip()}", file=out, flush=True)

    stop = StopFlag()  # forwarded to the children: each checkpoints and ends with reason "signal"
    try:
        _pool_loop(pending, running, free_slots, failures, stop, root, resume, uses_cuda, cpu_threads, pump)
    finally:
        stop.restore()
    if stop.signum is not None:
        raise Stopped(stop.signum)
    if failures:
        raise UserError("phase 2 failed: " + "; ".join(failures) + f" (logs: {root}/experts/*/events.jsonl; --resume continues)")
    return [weights_path(root, j) for j in phase2_jobs(cfg)]


def _pool_loop(pending, running, free_slots, failures, stop, root, resume, uses_cuda, cpu_threads, pump) -> None:
    forwarded = False
    while pending or running:
        if stop.signum is not None:
            pending.clear()  # start nothing new
            if not forwarded:
                for proc, *_ in running.values():
                    proc.send_signal(stop.signum)
                forwarded = True
        while pending and free_slots:
            job, slot = pending.pop(0), free_slots.pop(0)
            env = dict(os.environ)
            if uses_cuda:
                env["CUDA_VISIBLE_DEVICES"] = str(slot)
            cmd = [sys.executable, "-m", "engine.runtime.moe.train", "--run-dir", str(root), "--job", job]
            if not uses_cuda:
                cmd += ["--threads", str(cpu_threads)]
            if resume:
                cmd.append("--resume")
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                    cwd=str(Path(__file__).resolve().parents[3]))
            tail: list[str] = []
            t = threading.Thread(target=pump, args=(job, proc, tail), daemon=True)
            t.start()
            running[job] = (proc, t, tail, slot)
        time.sleep(0.1)
        for job in list(running):
            proc, t, tail, slot = running[job]
            if proc.poll() is None:
                continue
            t.join()
            del running[job]
            free_slots.append(slot)
            if proc.returncode != 0 and stop.signum is None:
                failures.append(f"{job} exited {proc.returncode}: {tail[-1] if tail else 'no output'}")


def _uses_cuda(device: str) -> bool:
    if device == "cpu":
        return False
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def main(argv: list[str] | None = None) -> int:
    from engine.flags import OneLineParser, threads

    p = OneLineParser(prog="python -m engine.runtime.moe.train", description="run one job of a two-phase MoE run")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--job", required=True, help="trunk | expert:NAME | router")
    p.add_argument("--threads", type=threads)
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    try:
        cfg = read_config(args.run_dir)
        run_job(cfg, args.run_dir, args.job, resume=args.resume, threads=args.threads)
    except UserError as exc:
        print(f"lsdt moe: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Stopped (after a checkpoint) carries the signal; else Ctrl-C
        return 128 + getattr(exc, "signum", signal.SIGINT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
