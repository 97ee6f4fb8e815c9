"""The two-phase MoE run: its resolved configuration and its directory layout (torch-free).

    DIR/moe.toml                      the fully resolved MoETrainConfig (written once, atomically)
    DIR/trunk/                        phase 1, a run directory (config.toml, metrics.jsonl, events.jsonl,
                                      checkpoints/) as engine/runtime/train/rundir.py defines, so `lsdt monitor
                                      DIR/trunk` and the TUI watch it like any training run
    DIR/experts/<domain>/             phase 2, one run directory per expert
    DIR/router/                       phase 2, the router's run directory
    DIR/weights/trunk.s7l             each job's final FP32 weights, sealed (engine/runtime/seal/s7l.py):
    DIR/weights/expert-<domain>.s7l   no pickle, byte-for-byte deterministic, Merkle root in the header,
    DIR/weights/router.s7l            read-only; every expert/router file names the trunk root it was
                                      trained on
    DIR/quant/, DIR/model.s7l         phase 3 (engine/runtime/moe/pipeline.py)

Defaults are here with the reason for each; `--tiny` picks the CPU-sized ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from engine.config_check import config_from_dict
from engine.errors import UserError
from engine.specs import ModelSpec, model_from_dict, read_toml

CONFIG_FILE = "moe.toml"
WEIGHTS_DIR = "weights"
BUILTIN = "builtin"  # a domain's source when it uses the built-in slice (engine/runtime/moe/data.py)
# Switch Transformer's load-balancing coefficient alpha = 1e-2 (Fedus et al. 2022, sec. 2.2: "large enough
# to ensure load balancing while small enough to not overwhelm the primary cross-entropy objective").
AUX_ALPHA = 0.01

# Step budgets and batch: --tiny trains the ~0.5M-parameter model to a clearly specialised state in
# about a minute of 2 CPU cores per phase (docs/moe-training.md has the measured times); the full
# profile's values are a short GPU run, to be raised for real training.
TINY_DEFAULTS = dict(trunk_steps=300, expert_steps=200, router_steps=300, device_batch=8, lr=3e-3, warmup=20)
FULL_DEFAULTS = dict(trunk_steps=2000, expert_steps=1000, router_steps=1000, device_batch=8, lr=6e-4, warmup=100)
# 6e-4: GPT-3 Small (125M), Brown et al. 2020, Table 2.1; 3e-3 for the sub-1M tiny model (small models
# tolerate larger steps; nanoGPT's char-level configs use 1e-3 at 10M).


@dataclass
class MoETrainConfig:
    model: dict  # ModelSpec.to_dict() of the model trained (--tiny: the scaled-down spec)
    tiny: bool
    domains: dict  # name -> "builtin" or a path, in expert order
    mix: list  # phase-1 share of each domain
    trunk_steps: int
    expert_steps: int
    router_steps: int
    device_batch: int
    lr: float
    warmup: int
    min_lr_frac: float = 0.1  # GPT-3's decay floor (Brown et al. 2020, App. B)
    weight_decay: float = 0.1  # GPT-3 / nanoGPT
    grad_clip: float = 1.0
    aux_alpha: float = AUX_ALPHA
    seed: int = 1337
    device: str = "auto"
    val_fraction: float = 0.1
    data_cache: str = ""  # "" -> $LSDT_CACHE_DIR or ~/.cache/lsdt
    eval_every: int = 100
    eval_batches: int = 4
    ckpt_every: int = 100
    log_every: int = 10

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(**self.model)

    @property
    def domain_names(self) -> list[str]:
        return list(self.domains)

    def domain_sources(self) -> dict[str, str | None]:
        return {n: (None if s == BUILTIN else s) for n, s in self.domains.items()}

    def steps_for(self, job: str) -> int:
        return self.trunk_steps if job == "trunk" else self.router_steps if job == "router" else self.expert_steps

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict, where: str) -> "MoETrainConfig":
        cfg = config_from_dict(cls, raw, where, "MoE config",
                               prepare=lambda c: model_from_dict(c.model, where=f"{where} [model]"))
        if len(cfg.domains) != cfg.spec.n_experts:
            raise UserError(f"{where}: {len(cfg.domains)} domains for {cfg.spec.n_experts} experts")
        return cfg


def job_dir(root: str | Path, job: str) -> Path:
    """trunk -> DIR/trunk, expert:NAME -> DIR/experts/NAME, router -> DIR/router."""
    root = Path(root)
    if job.startswith("expert:"):
        return root / "experts" / job.split(":", 1)[1]
    return root / job


def weights_path(root: str | Path, job: str) -> Path:
    stem = f"expert-{job.split(':', 1)[1]}" if job.startswith("expert:") else job
    return Path(root) / WEIGHTS_DIR / f"{stem}.s7l"


def phase2_jobs(cfg: MoETrainConfig) -> list[str]:
    return [f"expert:{n}" for n in cfg.domain_names] + ["router"]


def write_config(root: str | Path, cfg: MoETrainConfig) -> Path:
    import tomli_w

    from engine.atomic import write_atomic

    return write_atomic(Path(root) / CONFIG_FILE, tomli_w.dumps(cfg.to_dict()))


def read_config(root: str | Path) -> MoETrainConfig:
    path = Path(root) / CONFIG_FILE
    if not path.exists():
        raise UserError(f"{path}: missing; accepted: a directory made by `lsdt moe train --phase trunk`")
    return MoETrainConfig.from_dict(read_toml(path), str(path))
