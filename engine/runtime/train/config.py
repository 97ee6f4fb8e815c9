"""`lsdt train` flags and their resolution into one TrainConfig (torch-free).

The CLI (engine/commands/train.py) and the trainer process (`python -m engine.runtime.train.loop`,
also under torchrun) share these flags, so a TUI-launched run and a typed one are the same run.
Precedence: flags > the run directory's config.toml (with --resume) > defaults. Every default is
here, with why: each TrainConfig field that is a flag declares its grammar (engine/inputs.py),
default and help once (`option(...)`); DEFAULTS, add_arguments and the Train tab's placeholders
read them. The resolved values are written to config.toml.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from engine import inputs
from engine.config_check import config_from_dict
from engine.errors import UserError
from engine.flags import flag_type
from engine.runtime.train.schedule import DECAYS
from engine.sizing.shapes import DEFAULT_HEAD_DIM, band_spec
from engine.specs import DEFAULT_WINDOW_PATTERN, FFN_KINDS, ModelSpec, load_model, model_from_dict

# The no-argument run: a ~0.9M-parameter byte-level model that trains on the stdlib corpus in
# about a minute on 2 CPU cores (docs/runtime.md has the measured figure).
TINY_MODEL = dict(name="tiny", n_layer=4, d_model=128, n_head=4, vocab_size=256, seq_len=256, ffn="relu2",
                  source="LSDT default CPU model (lsdt train with no --model/--depth)")

DEFAULT_STEPS = 200  # a --steps run's length when neither --steps nor --hours is given


def option(help: str, parse=None, default=None, *, group: str = "training", shown: str | None = None,
           in_file: bool = False, exclusive: str | None = None, choices=None):
    """A TrainConfig field that is also an `lsdt train` flag: its grammar (engine/inputs.py), default,
    help and help group in one place. `default` is what an absent flag means (None: resolved in
    resolve_config, described by `shown`); `in_file=True` keeps the field required in config.toml
    (a saved run states it). Flags in one `exclusive` group exclude each other."""
    meta = {"help": help, "parse": parse, "default": default, "group": group, "shown": shown,
            "exclusive": exclusive, "choices": choices}
    return field(metadata={"flag": meta}) if in_file else field(default=default, metadata={"flag": meta})


@dataclass
class TrainConfig:
    """A fully resolved training run (what config.toml holds). Each field that is a flag declares it
    here (option(...)); DEFAULTS, add_arguments and the Train tab's placeholders read them."""

    model: dict  # ModelSpec.to_dict() of the model trained (seq_len = the longest sequence)
    run_dir: str = option("where config, metrics, events and checkpoints go", inputs.path, group="run directory",
                          shown="runs/<time>-<model>", in_file=True)
    data: str = option("text file or folder of text, or 'stdlib'", inputs.path, "stdlib", group="data",
                       shown="the Python stdlib's sources", in_file=True)
    val_fraction: float = option("share of the corpus held out for eval", inputs.fraction, 0.1, group="data", in_file=True)
    device_batch: int = option("sequences per micro-batch at the longest sequence", inputs.positive_int, 4, in_file=True)
    # 0 until resolved (from batch_tokens and the world size) at start-up
    grad_accum: int = option("micro-batches per optimizer step", inputs.grad_accum, None, shown="1",
                             exclusive="accumulation", in_file=True)
    # peak LR; small models tolerate 1e-3 (nanoGPT's shakespeare-char config)
    lr: float = option("peak learning rate", inputs.positive_float, 1e-3, in_file=True)
    # GPT-3 decays to 10 % of the peak (Brown et al. 2020, App. B)
    min_lr_frac: float = option("final LR as a fraction of the peak", inputs.non_negative_float, 0.1, in_file=True)
    warmup: int = option("linear warm-up steps", inputs.non_negative_int, None, shown="20, at most steps/10", in_file=True)
    decay: str = option("LR decay after warm-up", None, "cosine", choices=DECAYS, in_file=True)
    weight_decay: float = option("AdamW weight decay on matrices", inputs.non_negative_float, 0.1, in_file=True)
    beta1: float = option("AdamW beta1", inputs.non_negative_float, 0.9, in_file=True)
    beta2: float = option("AdamW beta2", inputs.non_negative_float, 0.95, in_file=True)
    # GPT-3 / nanoGPT global-norm clip
    grad_clip: float = option("global gradient-norm clip, 0 = off", inputs.non_negative_float, 1.0, in_file=True)
    dropout: float = option("dropout on embeddings, attention and residual branches", inputs.non_negative_float, 0.0,
                            group="model", in_file=True)
    qk_norm: bool = option("parameter-free RMSNorm on queries and keys", None, False, group="model", in_file=True)
    # [[seq, fraction], ...]; one stage [[seq_len, 1.0]] without a curriculum
    curriculum: list = option("sequence-length stages SEQ[:FRACTION],..., e.g. 512:0.5,1024:0.3,2048:0.2 "
                              "(a bare list 512,1024,2048 = equal shares)", inputs.curriculum, None, shown="none",
                              in_file=True)
    # exactly one of steps / hours is set
    steps: int | None = option("optimizer steps", inputs.steps, None, shown=str(DEFAULT_STEPS), exclusive="budget")
    hours: float | None = option("train for this many hours of wall-clock (or with a unit: 90min, 2d) instead of --steps", inputs.hours, None,
                                 shown="none", exclusive="budget")
    batch_tokens: int | None = option("tokens per optimizer step, all devices (sets grad-accum)", inputs.positive_int,
                                      None, shown="none", exclusive="accumulation")
    data_cache: str | None = option("where token files are cached", inputs.path, None, group="data",
                                    shown="$LSDT_CACHE_DIR or ~/.cache/lsdt")
    compile: bool = option("torch.compile the model", None, False)
    device: str = option("auto | cuda | cpu", None, "auto")
    seed: int = option("seed of the weights and the data order", inputs.seed, 1337)
    eval_every: int = option("steps between val-loss evaluations", inputs.positive_int, 100, group="run directory")
    eval_batches: int = option("micro-batches per evaluation", inputs.positive_int, 8, group="run directory")
    ckpt_every: int = option("steps between checkpoints (always at the end)", inputs.positive_int, 100, group="run directory")
    log_every: int = option("steps between metrics lines", inputs.positive_int, 10, group="run directory")
    keep_checkpoints: int = option("checkpoints kept", inputs.positive_int, 3, group="run directory")
    # CPU: torch's default (one per core)
    threads: int | None = option("CPU threads for torch", inputs.threads, None, shown="torch's choice")
    fsdp: bool = option("under torchrun, shard weights, gradients and AdamW state (FSDP2) instead of replicating them (DDP)",
                        None, False)
    # FSDP2's default frees each block's gathered weights after its forward (ZeRO-3 memory); keeping
    # them to the backward is ZeRO-2's (what `lsdt export --to torchrun` launches for ZeRO 1/2).
    fsdp_keep_weights: bool = option("with --fsdp, keep each block's gathered weights from its forward to its backward "
                                     "instead of gathering them twice (ZeRO-2's memory: whole weights during the step, "
                                     "gradients and AdamW state sharded)", None, False)
    rope_base: float = option("RoPE frequency base", inputs.positive_float, 10000.0, group="model")  # Su et al. 2021
    init_std: float = option("std of the N(0, std) weight init", inputs.positive_float, 0.02, group="model")  # GPT-2 / nanoGPT

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


# The flags TrainConfig declares (name -> option metadata), and what each absent flag means.
# run_dir's absence is resolved apart (a fresh directory name), so it is not among the defaults.
TRAIN_FLAGS = {f.name: f.metadata["flag"] for f in fields(TrainConfig) if "flag" in f.metadata}
DEFAULTS = {name: meta["default"] for name, meta in TRAIN_FLAGS.items() if name != "run_dir"}

# Flags that shape the model rather than set a TrainConfig field (they resolve into `model`):
# name -> (grammar, help, default as shown).
MODEL_SHAPE_FLAGS = {
    "head_dim": (inputs.positive_int, "head dimension of a --depth model", str(DEFAULT_HEAD_DIM)),
    "kv_heads": (inputs.positive_int, "key/value heads of a --depth model (GQA)", "heads"),
    "vocab": (inputs.positive_int, "vocabulary size", "256 = the byte tokenizer, or the --model's"),
}
SEQ_HELP = "sequence length (default: the model's; 512 for --depth, 256 for the tiny model)"

# Flags a --resume may change: how long and how the run is watched, not what it trains.
RESUME_MAY_CHANGE = {"steps", "hours", "eval_every", "eval_batches", "ckpt_every", "log_every", "device", "compile", "threads"}


def shown_default(name: str) -> str:
    """A flag's default as its help and the Train tab's placeholder show it ('' = none)."""
    if name == "model":
        return TINY_MODEL["name"]
    meta = TRAIN_FLAGS.get(name)
    if meta is None:
        return ""
    text = meta["shown"] if meta["shown"] is not None else meta["default"]
    return "" if text in (None, "none") else f"{text:g}" if isinstance(text, float) else str(text)


def grammar(name: str):
    """The grammar parser (engine/inputs.py) of a typed flag: the CLI's type and the Train tab's check."""
    if name in TRAIN_FLAGS and TRAIN_FLAGS[name]["parse"] is not None:
        return TRAIN_FLAGS[name]["parse"]
    if name in MODEL_SHAPE_FLAGS:
        return MODEL_SHAPE_FLAGS[name][0]
    return {"depth": inputs.positive_int, "seq": inputs.positive_int, "model": inputs.path}[name]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Every `lsdt train` flag: the model's source and shape here, the rest from TrainConfig's fields.
    Defaults are None here and resolved in resolve_config (see DEFAULTS)."""
    groups = {name: p.add_argument_group(name) for name in ("model", "data", "training", "run directory")}
    m = groups["model"]
    src = m.add_mutually_exclusive_group()
    src.add_argument("--model", type=flag_type(inputs.path),
                     help="built-in model profile, `tiny`, a model TOML or an HF config.json (default: tiny, a 4-layer byte-level model)")
    src.add_argument("--depth", type=flag_type(inputs.positive_int), help="nanochat-style band model of this depth (d_model = 64 x depth)")
    m.add_argument("--ffn", choices=FFN_KINDS, help="MLP of a --depth model (default relu2)")
    m.add_argument("--window-pattern", help="S/L attention window pattern of a --depth model, e.g. SSSL (default L)")
    for name, (parse, help_text, default) in MODEL_SHAPE_FLAGS.items():
        m.add_argument(_flag(name), type=flag_type(parse), help=f"{help_text} (default {default})")
    groups["training"].add_argument("--seq", type=flag_type(inputs.positive_int), help=SEQ_HELP)
    added: set[str] = set()
    for name, meta in TRAIN_FLAGS.items():
        if name in added:
            continue
        if meta["exclusive"]:  # its members added together: argparse's usage line needs them adjacent
            group = groups[meta["group"]].add_mutually_exclusive_group()
            members = [n for n, m in TRAIN_FLAGS.items() if m["exclusive"] == meta["exclusive"]]
        else:
            group, members = groups[meta["group"]], [name]
        for member in members:
            _add_flag(group, member, TRAIN_FLAGS[member])
            added.add(member)
    groups["run directory"].add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last good checkpoint")


def _add_flag(group, name: str, meta: dict) -> None:
    default = shown_default(name)
    help_text = f"{meta['help']} (default {default})" if default else meta["help"]
    if isinstance(meta["default"], bool):
        group.add_argument(_flag(name), action="store_true", default=None, help=meta["help"])
    elif meta["parse"] is None:
        group.add_argument(_flag(name), choices=meta["choices"], help=help_text)
    else:
        group.add_argument(_flag(name), type=flag_type(meta["parse"]), help=help_text)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


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
        curriculum = [list(s) for s in args.curriculum]  # parsed by its flag type (inputs.curriculum)
        if args.seq and args.seq != max(s for s, _ in curriculum):
            stages = ",".join(f"{s}:{f:g}" for s, f in curriculum)
            raise UserError(f"--seq {args.seq} disagrees with --curriculum {stages} (longest stage "
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
    if v["fsdp_keep_weights"] and not v["fsdp"]:
        raise UserError("--fsdp-keep-weights keeps FSDP's gathered weights and this run does not shard; add --fsdp, or drop --fsdp-keep-weights")
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
        fsdp=bool(v["fsdp"]), fsdp_keep_weights=bool(v["fsdp_keep_weights"]), rope_base=v["rope_base"], init_std=v["init_std"],
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
    accum = batch_tokens // per_micro
    if accum > inputs.MAX_GRAD_ACCUM:
        raise UserError(
            f"--batch-tokens {batch_tokens} means {accum:,} micro-batches per step (device-batch x seq x devices = "
            f"{per_micro}); accepted: at most {inputs.MAX_GRAD_ACCUM:,} micro-batches per step (raise --device-batch or lower --batch-tokens)"
        )
    return accum


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
