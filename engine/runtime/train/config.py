"""`lsdt train` flags and their resolution into one TrainConfig (torch-free).

The CLI (engine/commands/train.py) and the trainer process (`python -m engine.runtime.train.loop`,
also under torchrun) share these flags, so a TUI-launched run and a typed one are the same run.
Precedence: flags > the run directory's config.toml (with --resume) > defaults. Every default is
here, with why, and the resolved values are written to config.toml.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.commands.common import (
    fraction, hours, non_negative_float, non_negative_int, path_arg, positive_float, positive_int, seed,
)
from engine.config_check import config_from_dict
from engine.errors import UserError
from engine.runtime.train.schedule import DECAYS, parse_curriculum
from engine.sizing.shapes import DEFAULT_HEAD_DIM, band_spec
from engine.specs import DEFAULT_WINDOW_PATTERN, FFN_KINDS, ModelSpec, load_model, model_from_dict

# The no-argument run: a ~0.9M-parameter byte-level model that trains on the stdlib corpus in
# about a minute on 2 CPU cores (docs/runtime.md has the measured figure).
TINY_MODEL = dict(name="tiny", n_layer=4, d_model=128, n_head=4, vocab_size=256, seq_len=256, ffn="relu2",
                  source="LSDT default CPU model (lsdt train with no --model/--depth)")

DEFAULTS = dict(
    data="stdlib",
    data_cache=None,
    val_fraction=0.1,
    device_batch=4,
    grad_accum=None,  # resolved: from --batch-tokens, else 1
    batch_tokens=None,
    steps=None,  # resolved: 200 unless --hours
    hours=None,
    lr=1e-3,  # peak LR; small models tolerate 1e-3 (nanoGPT's shakespeare-char config)
    min_lr_frac=0.1,  # GPT-3 decays to 10 % of the peak (Brown et al. 2020, App. B)
    warmup=None,  # resolved: 20 steps, at most a tenth of a --steps run
    decay="cosine",
    weight_decay=0.1,
    beta1=0.9,
    beta2=0.95,
    grad_clip=1.0,  # GPT-3 / nanoGPT global-norm clip
    dropout=0.0,
    curriculum=None,
    compile=False,
    device="auto",
    seed=1337,
    eval_every=100,
    eval_batches=8,
    ckpt_every=100,
    log_every=10,
    keep_checkpoints=3,
    threads=None,  # CPU: torch's default (one per core)
    qk_norm=False,
    rope_base=10000.0,  # Su et al. 2021
    init_std=0.02,  # GPT-2 / nanoGPT
    fsdp=False,
)
DEFAULT_STEPS = 200

# Flags a --resume may change: how long and how the run is watched, not what it trains.
RESUME_MAY_CHANGE = {"steps", "hours", "eval_every", "eval_batches", "ckpt_every", "log_every", "device", "compile", "threads"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Every `lsdt train` flag. Defaults are None here and resolved in resolve_config (see DEFAULTS)."""
    m = p.add_argument_group("model")
    src = m.add_mutually_exclusive_group()
    src.add_argument("--model", type=path_arg, help="built-in model profile, `tiny`, a model TOML or an HF config.json (default: tiny, a 4-layer byte-level model)")
    src.add_argument("--depth", type=positive_int, help="nanochat-style band model of this depth (d_model = 64 x depth)")
    m.add_argument("--head-dim", type=positive_int, help="head dimension of a --depth model (default 128)")
    m.add_argument("--kv-heads", type=positive_int, help="key/value heads of a --depth model (GQA; default = heads)")
    m.add_argument("--ffn", choices=FFN_KINDS, help="MLP of a --depth model (default relu2)")
    m.add_argument("--window-pattern", help="S/L attention window pattern of a --depth model, e.g. SSSL (default L)")
    m.add_argument("--vocab", type=positive_int, help="vocabulary size (default: 256 = the byte tokenizer, or the --model's)")
    m.add_argument("--dropout", type=non_negative_float, help="dropout on embeddings, attention and residual branches (default 0)")
    m.add_argument("--qk-norm", action="store_true", default=None, help="parameter-free RMSNorm on queries and keys")
    m.add_argument("--rope-base", type=positive_float, help="RoPE frequency base (default 10000)")
    m.add_argument("--init-std", type=positive_float, help="std of the N(0, std) weight init (default 0.02)")

    d = p.add_argument_group("data")
    d.add_argument("--data", type=path_arg, help="text file or folder of text, or 'stdlib' (default: the Python stdlib's sources)")
    d.add_argument("--data-cache", type=path_arg, help="where token files are cached (default: $LSDT_CACHE_DIR or ~/.cache/lsdt)")
    d.add_argument("--val-fraction", type=fraction, help="share of the corpus held out for eval (default 0.1)")

    t = p.add_argument_group("training")
    t.add_argument("--seq", type=positive_int, help="sequence length (default: the model's; 512 for --depth, 256 for the tiny model)")
    t.add_argument("--device-batch", type=positive_int, help="sequences per micro-batch at the longest sequence (default 4)")
    acc = t.add_mutually_exclusive_group()
    acc.add_argument("--batch-tokens", type=positive_int, help="tokens per optimizer step, all devices (sets grad-accum)")
    acc.add_argument("--grad-accum", type=positive_int, help="micro-batches per optimizer step (default 1)")
    budget = t.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=positive_int, help=f"optimizer steps (default {DEFAULT_STEPS})")
    budget.add_argument("--hours", type=hours, help="train for this many hours of wall-clock instead of --steps")
    t.add_argument("--lr", type=positive_float, help="peak learning rate (default 1e-3)")
    t.add_argument("--min-lr-frac", type=non_negative_float, help="final LR as a fraction of the peak (default 0.1)")
    t.add_argument("--warmup", type=non_negative_int, help="linear warm-up steps (default 20, at most steps/10)")
    t.add_argument("--decay", choices=DECAYS, help="LR decay after warm-up (default cosine)")
    t.add_argument("--weight-decay", type=non_negative_float, help="AdamW weight decay on matrices (default 0.1)")
    t.add_argument("--beta1", type=non_negative_float, help="AdamW beta1 (default 0.9)")
    t.add_argument("--beta2", type=non_negative_float, help="AdamW beta2 (default 0.95)")
    t.add_argument("--grad-clip", type=non_negative_float, help="global gradient-norm clip, 0 = off (default 1.0)")
    t.add_argument("--curriculum", help="sequence-length stages SEQ:FRACTION,..., e.g. 512:0.5,1024:0.3,2048:0.2")
    t.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    t.add_argument("--fsdp", action="store_true", default=None,
                   help="under torchrun, shard weights, gradients and AdamW state (FSDP2) instead of replicating them (DDP)")
    t.add_argument("--device", help="auto | cuda | cpu (default auto)")
    t.add_argument("--seed", type=seed, help="seed of the weights and the data order (default 1337)")
    t.add_argument("--threads", type=positive_int, help="CPU threads for torch (default: torch's choice)")

    r = p.add_argument_group("run directory")
    r.add_argument("--run-dir", type=path_arg, help="where config, metrics, events and checkpoints go (default runs/<time>-<model>)")
    r.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last good checkpoint")
    r.add_argument("--eval-every", type=positive_int, help="steps between val-loss evaluations (default 100)")
    r.add_argument("--eval-batches", type=positive_int, help="micro-batches per evaluation (default 8)")
    r.add_argument("--ckpt-every", type=positive_int, help="steps between checkpoints (default 100; always at the end)")
    r.add_argument("--log-every", type=positive_int, help="steps between metrics lines (default 10)")
    r.add_argument("--keep-checkpoints", type=positive_int, help="checkpoints kept (default 3)")


@dataclass
class TrainConfig:
    """A fully resolved training run (what config.toml holds)."""

    model: dict  # ModelSpec.to_dict() of the model trained (seq_len = the longest sequence)
    run_dir: str
    data: str
    val_fraction: float
    device_batch: int
    grad_accum: int  # 0 until resolved (from batch_tokens and the world size) at start-up
    lr: float
    min_lr_frac: float
    warmup: int
    decay: str
    weight_decay: float
    beta1: float
    beta2: float
    grad_clip: float
    dropout: float
    qk_norm: bool
    curriculum: list  # [[seq, fraction], ...]; one stage [[seq_len, 1.0]] without a curriculum
    steps: int | None = None  # exactly one of steps / hours is set
    hours: float | None = None
    batch_tokens: int | None = None
    data_cache: str | None = None
    compile: bool = False
    device: str = "auto"
    seed: int = 1337
    eval_every: int = 100
    eval_batches: int = 8
    ckpt_every: int = 100
    log_every: int = 10
    keep_checkpoints: int = 3
    threads: int | None = None
    fsdp: bool = False
    rope_base: float = 10000.0
    init_std: float = 0.02

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(**self.model)

    @property
    def max_seq(self) -> int:
        return max(s for s, _ in self.curriculum)

    def model_options(self) -> dict:
        """The model hyper-parameters a run sets beyond its ModelSpec (GPTConfig.from_spec keywords):
        the trainer and everything that rebuilds its model from a checkpoint pass these, so a
        checkpoint is always read back into the architecture it was trained as."""
        return {"qk_norm": self.qk_norm, "rope_base": self.rope_base, "init_std": self.init_std}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict, where: str) -> "TrainConfig":
        def model_back(cfg: "TrainConfig") -> None:
            model = cfg.model if isinstance(cfg.model, dict) else {}
            cfg.model = model_from_dict({k: v for k, v in model.items() if v != ""}, where=f"{where} [model]").to_dict()

        return config_from_dict(cls, raw, where, "training config", prepare=model_back)


def _check(name: str, value, ok: bool, accepted: str) -> None:
    if not ok:
        raise UserError(f"--{name.replace('_', '-')} {value}; accepted: {accepted}")


def _model_spec(args: argparse.Namespace, seq: int | None) -> ModelSpec:
    if args.depth:
        spec = band_spec(
            args.depth, seq_len=seq or 512, head_dim=args.head_dim or DEFAULT_HEAD_DIM, vocab_size=args.vocab or 256,
            n_kv_head=args.kv_heads, window_pattern=args.window_pattern or DEFAULT_WINDOW_PATTERN, ffn=args.ffn or "relu2",
        )
        return spec
    for flag in ("head_dim", "kv_heads", "ffn", "window_pattern"):
        if getattr(args, flag) is not None:
            raise UserError(f"--{flag.replace('_', '-')} shapes a --depth model; with --model, edit the model file instead")
    # "tiny" is the name the default model shows under (banner, run dir, the Train tab's field), so
    # it is accepted as a --model value too.
    spec = load_model(args.model) if args.model and args.model != TINY_MODEL["name"] else ModelSpec(**TINY_MODEL)
    changes = {}
    if seq:
        changes["seq_len"] = seq
    if args.vocab:
        changes["vocab_size"] = args.vocab
    return spec.with_(**changes) if changes else spec


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig the flags describe (fresh run); see resume_config for --resume."""
    v = {k: (getattr(args, k, None) if getattr(args, k, None) is not None else d) for k, d in DEFAULTS.items()}
    if args.curriculum:
        curriculum = [list(s) for s in parse_curriculum(args.curriculum)]
        if args.seq and args.seq != max(s for s, _ in curriculum):
            raise UserError(f"--seq {args.seq} disagrees with --curriculum {args.curriculum} (longest stage "
                            f"{max(s for s, _ in curriculum)}); give one or make --seq the longest stage")
        seq = max(s for s, _ in curriculum)
    else:
        seq = args.seq
    spec = _model_spec(args, seq)
    if spec.is_moe:
        raise UserError(f"--model {spec.name}: a MoE model (n_experts = {spec.n_experts}); `lsdt train` trains dense models")
    from engine.runtime.train.data import BYTE_VOCAB  # numpy: only once a run is being configured

    if spec.vocab_size < BYTE_VOCAB:
        # the byte tokenizer emits ids 0..255: a smaller embedding fails inside the first step
        given = f"--vocab {args.vocab}" if args.vocab else f"--model {args.model}: vocab_size = {spec.vocab_size}"
        raise UserError(f"{given}: the byte tokenizer's ids run 0..{BYTE_VOCAB - 1}; accepted: a vocabulary of at least {BYTE_VOCAB}")
    if not args.curriculum:
        curriculum = [[spec.seq_len, 1.0]]
    _check("dropout", v["dropout"], 0 <= v["dropout"] < 1, "0 <= dropout < 1")
    _check("min_lr_frac", v["min_lr_frac"], 0 <= v["min_lr_frac"] <= 1, "a number in [0, 1]")
    steps = v["steps"] if v["steps"] or v["hours"] else DEFAULT_STEPS
    if v["warmup"] is None:
        v["warmup"] = 20 if v["hours"] else min(20, steps // 10)
    _check("warmup", v["warmup"], v["warmup"] >= 0, "an integer >= 0")
    _check("weight_decay", v["weight_decay"], v["weight_decay"] >= 0, "a number >= 0")
    _check("beta1", v["beta1"], 0 <= v["beta1"] < 1, "a number in [0, 1)")
    _check("beta2", v["beta2"], 0 <= v["beta2"] < 1, "a number in [0, 1)")
    _check("grad_clip", v["grad_clip"], v["grad_clip"] >= 0, "a number >= 0 (0 = off)")
    if v["hours"] is None and v["warmup"] >= steps:
        raise UserError(f"--warmup {v['warmup']} is not shorter than --steps {steps}; accepted: warmup < steps")
    run_dir = args.run_dir or str(Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{spec.name}")
    return TrainConfig(
        model=spec.to_dict(), run_dir=run_dir, data=v["data"], data_cache=v["data_cache"], val_fraction=v["val_fraction"],
        device_batch=v["device_batch"], grad_accum=v["grad_accum"] or 0, batch_tokens=v["batch_tokens"], steps=steps if v["hours"] is None else None,
        hours=v["hours"], lr=v["lr"], min_lr_frac=v["min_lr_frac"], warmup=v["warmup"], decay=v["decay"],
        weight_decay=v["weight_decay"], beta1=v["beta1"], beta2=v["beta2"], grad_clip=v["grad_clip"],
        dropout=v["dropout"], qk_norm=bool(v["qk_norm"]), curriculum=curriculum, compile=bool(v["compile"]),
        device=v["device"], seed=v["seed"], eval_every=v["eval_every"], eval_batches=v["eval_batches"],
        ckpt_every=v["ckpt_every"], log_every=v["log_every"], keep_checkpoints=v["keep_checkpoints"], threads=v["threads"],
        fsdp=bool(v["fsdp"]), rope_base=v["rope_base"], init_std=v["init_std"],
    )


def resolve_grad_accum(cfg: TrainConfig, world_size: int) -> int:
    """--grad-accum, or --batch-tokens / (device_batch x longest seq x devices), which must divide exactly."""
    if cfg.grad_accum:
        return cfg.grad_accum
    batch_tokens = cfg.batch_tokens
    if not batch_tokens:
        return 1
    per_micro = cfg.device_batch * cfg.max_seq * world_size
    if batch_tokens % per_micro:
        raise UserError(
            f"--batch-tokens {batch_tokens} is not a multiple of device-batch x seq x devices = "
            f"{cfg.device_batch} x {cfg.max_seq} x {world_size} = {per_micro}; accepted: a multiple of {per_micro}"
        )
    return batch_tokens // per_micro


MODEL_FLAGS = {"model", "depth", "head_dim", "kv_heads", "ffn", "window_pattern", "vocab", "seq"}


def resume_config(args: argparse.Namespace, saved: dict, where: str) -> TrainConfig:
    """The saved config, with the few flags a resume may change applied.

    Any other flag may be repeated (re-running the original command with --resume works) but not
    changed: a value that differs from the saved run's is a UserError naming the flag.
    """
    cfg = TrainConfig.from_dict(saved, where)
    given = {n for n, v in vars(args).items() if v is not None and v is not False and n not in ("run_dir", "resume", "command")}
    for name in sorted(given & RESUME_MAY_CHANGE):
        setattr(cfg, name, getattr(args, name))
        if name == "steps":
            cfg.hours = None
        if name == "hours":
            cfg.steps = None
    fixed = given - RESUME_MAY_CHANGE
    if fixed:
        fresh = resolve_config(args)
        for name in sorted(fixed):
            attr = "model" if name in MODEL_FLAGS else name
            if getattr(fresh, attr) != getattr(cfg, attr):
                raise UserError(
                    f"--{name.replace('_', '-')} cannot change on --resume: {where} fixes it; drop the flag "
                    f"(a resume may change only --{', --'.join(sorted(n.replace('_', '-') for n in RESUME_MAY_CHANGE))})"
                )
    return cfg
