"""ModelSpec, HardwareSpec and Goal: the inputs of every computation, and their loading.

Files use exactly the keys and SI units of the README ("Profile formats"): FLOP/s, bytes,
bytes/s, seconds. Tools outside LSDT write these files, so a key is never renamed.

Loading is strict: an unknown key, a missing required key, a wrong type, a zero/negative/NaN/inf
number or an inconsistent shape raises `UserError` naming the file, the key and what is accepted.
"""

from __future__ import annotations

import json
import math
import sys
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.errors import UserError

PROFILES_DIR = Path(__file__).resolve().parent.parent / "profiles"
FFN_KINDS = ("gelu", "swiglu", "relu2")
# The deepest model LSDT sizes. Published dense models stop near 128 layers (Llama 3 405B: 126,
# Dubey et al. 2024, Table 3; Megatron-LM's 1T: 128, Narayanan et al. 2021, Table 1); 10,000 is 80x
# that. Per-layer lists and the pipeline-depth search walk n_layer, so a typo like --depths 1e12
# took 24 GB of memory before the OOM killer ended it.
MAX_LAYERS = 10_000
# The largest size of any one dimension (d_model, d_ff, heads, head_dim, vocab, seq_len, experts).
# Real shapes stay below ~10^7 (Llama 3 405B: d_ff 53,248, vocab 128,256; million-token contexts);
# 2^31 is a signed 32-bit index, the per-dimension limit of common GPU kernels. Beyond it, counts
# such as --head-dim 1e308 overflowed the float FLOP arithmetic (a traceback).
MAX_DIM = 2**31
_DIM_FIELDS = ("d_model", "n_head", "n_kv_head", "head_dim", "d_ff", "vocab_size", "seq_len", "short_window", "n_experts",
               "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "n_shared_experts", "dense_d_ff")


# --------------------------------------------------------------------------- field validation


def _check_number(where: str, key: str, value: Any, *, integer: bool, minimum: float, allow_zero: bool) -> Any:
    kind = "an integer" if integer else "a number"
    bound = f">= {minimum:g}" if allow_zero or minimum > 0 else "> 0"
    accepted = f"accepted: {kind} {bound}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{where}: key '{key}' = {value!r} is not {kind}; {accepted}")
    if integer and not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise UserError(f"{where}: key '{key}' = {value!r} is not {kind}; {accepted}")
    if not math.isfinite(value):
        raise UserError(f"{where}: key '{key}' = {value!r}; accepted: a finite number")
    if value < minimum or (value == 0 and not allow_zero and minimum <= 0):
        raise UserError(f"{where}: key '{key}' = {value!r}; {accepted}")
    return value


@dataclass(frozen=True)
class _Field:
    kind: str  # "int" | "float" | "str" | "bool"
    required: bool = True
    minimum: float = 0.0
    allow_zero: bool = False
    choices: tuple[str, ...] = ()


def _validate(where: str, raw: dict, schema: dict[str, _Field]) -> dict:
    unknown = sorted(set(raw) - set(schema))
    if unknown:
        raise UserError(f"{where}: unknown key '{unknown[0]}'; accepted keys: {', '.join(schema)}")
    out: dict[str, Any] = {}
    for key, f in schema.items():
        if key not in raw:
            if f.required:
                raise UserError(f"{where}: missing required key '{key}'")
            continue
        value = raw[key]
        if f.kind in ("int", "float"):
            out[key] = _check_number(where, key, value, integer=f.kind == "int", minimum=f.minimum, allow_zero=f.allow_zero)
            if f.kind == "float":
                out[key] = float(out[key])
        elif f.kind == "bool":
            if not isinstance(value, bool):
                raise UserError(f"{where}: key '{key}' = {value!r}; accepted: true or false")
            out[key] = value
        else:
            if not isinstance(value, str) or not value:
                raise UserError(f"{where}: key '{key}' = {value!r}; accepted: a non-empty string")
            if f.choices and value not in f.choices:
                raise UserError(f"{where}: key '{key}' = {value!r}; accepted: {' | '.join(f.choices)}")
            out[key] = value
    return out


# --------------------------------------------------------------------------- ModelSpec

_MODEL_SCHEMA: dict[str, _Field] = {
    "name": _Field("str"),
    "n_layer": _Field("int", minimum=1),
    "d_model": _Field("int", minimum=1),
    "n_head": _Field("int", minimum=1),
    "n_kv_head": _Field("int", required=False, minimum=1),
    "head_dim": _Field("int", required=False, minimum=1),
    "d_ff": _Field("int", required=False, minimum=1),
    "ffn": _Field("str", required=False, choices=FFN_KINDS),
    "vocab_size": _Field("int", minimum=1),
    "seq_len": _Field("int", minimum=1),
    "tie_embeddings": _Field("bool", required=False),
    "window_pattern": _Field("str", required=False),
    "short_window": _Field("int", required=False, minimum=1),
    "n_experts": _Field("int", required=False, allow_zero=True),
    "experts_per_token": _Field("int", required=False, allow_zero=True),
    "trunk_layers": _Field("int", required=False, allow_zero=True),
    "q_lora_rank": _Field("int", required=False, allow_zero=True),
    "kv_lora_rank": _Field("int", required=False, allow_zero=True),
    "qk_nope_head_dim": _Field("int", required=False, allow_zero=True),
    "qk_rope_head_dim": _Field("int", required=False, allow_zero=True),
    "v_head_dim": _Field("int", required=False, allow_zero=True),
    "n_shared_experts": _Field("int", required=False, allow_zero=True),
    "dense_layers": _Field("int", required=False, allow_zero=True),
    "dense_d_ff": _Field("int", required=False, allow_zero=True),
    "mtp_layers": _Field("int", required=False, allow_zero=True),
    "source": _Field("str", required=False),
}


# Attention window per layer, repeated over the depth: L = the full context, S = a short window
# (nanochat's SSSL alternates them); L everywhere is plain causal attention.
DEFAULT_WINDOW_PATTERN = "L"


def shape_defaults(where: str, d_model: int, n_head: int, n_kv_head: int, head_dim: int, d_ff: int) -> tuple[int, int, int]:
    """The 0 shape fields of a model -> their defaults, and the head split checked: no GQA
    (n_kv_head = n_head), head_dim = d_model // n_head, d_ff = 4 d_model (GPT-2/GPT-3). The one
    place for these rules: ModelSpec and the runtime's GPTConfig / MoEConfig all fill through it."""
    n_kv_head = n_kv_head or n_head
    if not head_dim:
        if d_model % n_head:
            raise UserError(f"{where}: d_model = {d_model} is not divisible by n_head = {n_head}; "
                            "give head_dim explicitly or pick n_head dividing d_model")
        head_dim = d_model // n_head
    if n_head % n_kv_head:
        raise UserError(f"{where}: n_kv_head = {n_kv_head} does not divide n_head = {n_head}; accepted: a divisor of n_head",
                        field="n_kv_head")
    return n_kv_head, head_dim, d_ff or 4 * d_model


@dataclass(frozen=True)
class ModelSpec:
    """A decoder-only transformer's shape.

    n_kv_head < n_head is grouped-query attention. window_pattern is nanochat's string of S (short,
    sliding window of `short_window` tokens) and L (full context) tiled over the layers; the last
    layer is always L, as in nanochat. MoE: `n_experts` experts with `experts_per_token` active.
    With trunk_layers == 0 every layer's MLP is an expert set (Mixtral style); with trunk_layers > 0
    the first `trunk_layers` blocks are a shared trunk and each expert is a stack of the remaining
    n_layer - trunk_layers full blocks (the S7 two-phase design), with a router of d_model x n_experts.

    DeepSeek-V2/V3 shapes: kv_lora_rank > 0 is multi-head latent attention (MLA; DeepSeek-AI 2024,
    DeepSeek-V2 sec. 2.1): q through a q_lora_rank latent (0: a plain q projection), k and v through
    a kv_lora_rank latent, per-head q/k width qk_nope_head_dim + qk_rope_head_dim, v width
    v_head_dim. n_shared_experts always-active experts of d_ff join the routed ones on MoE layers;
    the first `dense_layers` layers are dense MLPs of dense_d_ff (0 -> d_ff). `mtp_layers`
    multi-token-prediction modules (DeepSeek-V3 sec. 2.2) each add one block and a 2h x h projection.
    """

    name: str
    n_layer: int
    d_model: int
    n_head: int
    vocab_size: int
    seq_len: int
    n_kv_head: int = 0  # 0 -> n_head
    head_dim: int = 0  # 0 -> d_model // n_head
    d_ff: int = 0  # 0 -> 4 * d_model (GPT-2/GPT-3 convention)
    ffn: str = "gelu"
    tie_embeddings: bool = False
    window_pattern: str = DEFAULT_WINDOW_PATTERN
    short_window: int = 0  # 0 -> seq_len // 2 (nanochat's default short window)
    n_experts: int = 0
    experts_per_token: int = 0
    trunk_layers: int = 0
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    n_shared_experts: int = 0
    dense_layers: int = 0
    dense_d_ff: int = 0  # 0 -> d_ff
    mtp_layers: int = 0
    source: str = ""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if self.n_layer > MAX_LAYERS:
            raise UserError(f"model {self.name}: n_layer = {self.n_layer}; accepted: 1..{MAX_LAYERS:,} layers")
        if self.kv_lora_rank:
            for key in ("qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
                if not getattr(self, key):
                    raise UserError(f"model {self.name}: kv_lora_rank = {self.kv_lora_rank} (MLA) needs {key} > 0")
            if (self.n_kv_head or self.n_head) != self.n_head:
                raise UserError(f"model {self.name}: MLA (kv_lora_rank > 0) has one k/v head per query head; accepted: n_kv_head = n_head")
            if not self.head_dim:
                set_(self, "head_dim", self.qk_nope_head_dim + self.qk_rope_head_dim)
        elif self.q_lora_rank:
            raise UserError(f"model {self.name}: q_lora_rank = {self.q_lora_rank} needs kv_lora_rank > 0 (MLA)")
        if (self.n_shared_experts or self.dense_layers) and (not self.n_experts or self.trunk_layers):
            raise UserError(f"model {self.name}: n_shared_experts / dense_layers need a Mixtral-style MoE (n_experts > 0, trunk_layers = 0)")
        if self.dense_layers >= self.n_layer:
            raise UserError(f"model {self.name}: dense_layers = {self.dense_layers}; accepted: 0..n_layer-1 ({self.n_layer - 1})")
        n_kv_head, head_dim, d_ff = shape_defaults(f"model {self.name}", self.d_model, self.n_head, self.n_kv_head,
                                                   self.head_dim, self.d_ff)
        set_(self, "n_kv_head", n_kv_head)
        set_(self, "head_dim", head_dim)
        set_(self, "d_ff", d_ff)
        if not self.dense_d_ff:
            set_(self, "dense_d_ff", self.d_ff)
        if not self.short_window:
            set_(self, "short_window", max(1, self.seq_len // 2))
        for key in _DIM_FIELDS:
            if getattr(self, key) > MAX_DIM:
                value = getattr(self, key)
                raise UserError(f"model {self.name}: {key} = {value if value < 1e15 else f'{value:.3g}'}; accepted: at most 2^31 = {MAX_DIM:,}")
        if self.ffn not in FFN_KINDS:
            raise UserError(f"model {self.name}: ffn = {self.ffn!r}; accepted: {' | '.join(FFN_KINDS)}")
        if not self.window_pattern or set(self.window_pattern.upper()) - {"S", "L"}:
            raise UserError(
                f"model {self.name}: window_pattern = {self.window_pattern!r}; accepted: a string of S and L, e.g. L or SSSL",
                field="window_pattern",
            )
        set_(self, "window_pattern", self.window_pattern.upper())
        if self.n_experts:
            if not 1 <= self.experts_per_token <= self.n_experts:
                raise UserError(
                    f"model {self.name}: experts_per_token = {self.experts_per_token}; accepted: 1..n_experts ({self.n_experts})"
                )
        elif self.experts_per_token:
            raise UserError(f"model {self.name}: experts_per_token = {self.experts_per_token} needs n_experts > 0")
        if self.trunk_layers and (not self.n_experts or self.trunk_layers >= self.n_layer):
            raise UserError(
                f"model {self.name}: trunk_layers = {self.trunk_layers}; accepted: 0, or 1..n_layer-1 with n_experts > 0"
            )

    @property
    def is_moe(self) -> bool:
        return self.n_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def qk_head_dim(self) -> int:
        """Per-head width of q and k (the QK^T contraction)."""
        return self.qk_nope_head_dim + self.qk_rope_head_dim if self.is_mla else self.head_dim

    @property
    def v_dim(self) -> int:
        """Per-head width of v (the AV product and the output projection's input)."""
        return self.v_head_dim if self.is_mla else self.head_dim

    def layer_windows(self) -> list[int]:
        """Attention window (tokens) of each layer: the pattern tiled, the last layer always full."""
        pattern = self.window_pattern
        windows = [
            self.short_window if pattern[i % len(pattern)] == "S" else self.seq_len for i in range(self.n_layer)
        ]
        windows[-1] = self.seq_len
        return [min(w, self.seq_len) for w in windows]

    def to_dict(self) -> dict:
        """All keys, defaults resolved: what a saved plan stores."""
        return asdict(self)

    def with_(self, **changes: Any) -> "ModelSpec":
        data = self.to_dict()
        data.update(changes)
        return ModelSpec(**data)


def model_from_dict(raw: dict, where: str = "model") -> ModelSpec:
    return ModelSpec(**_validate(where, raw, _MODEL_SCHEMA))


# --------------------------------------------------------------------------- HardwareSpec

_HARDWARE_SCHEMA: dict[str, _Field] = {
    "name": _Field("str"),
    "label": _Field("str", required=False),
    "peak_flops": _Field("float"),
    "memory_bytes": _Field("float"),
    "memory_bw": _Field("float", required=False),
    "gpus_per_node": _Field("int", minimum=1),
    "intra_node_bw": _Field("float"),
    "inter_node_bw": _Field("float", required=False),
    "host_link_bw": _Field("float", required=False),
    "peak_flops_fp8": _Field("float", required=False),
    "matmul_flops": _Field("float", required=False),
    "matmul_source": _Field("str", required=False),
    "price_per_hour": _Field("float", required=False),
    "price_source": _Field("str", required=False),
    "source": _Field("str", required=False),
}


@dataclass(frozen=True)
class HardwareSpec:
    """One accelerator and its node. Bandwidths are per GPU, per direction.

    `inter_node_bw` is None when no standard network comes with the part (e.g. workstation cards):
    such a profile plans one node only rather than guess a network. `memory_bw` and
    `price_per_hour` may be None (unknown is "n/a", never a guess). `host_link_bw` is the GPU's
    link to host memory (PCIe or NVLink-C2C), per direction: what offload to host is timed by;
    None means offload cannot be planned. `peak_flops_fp8` is the dense FP8 tensor peak (None: the
    part has no FP8 tensor cores, or no datasheet figure). `matmul_flops` is the measured maximum
    achievable bf16 matmul FLOP/s (the best large GEMM, e.g. Bekman's mamf-finder), with where it
    was measured in `matmul_source`; None: not measured (engine/sizing/efficiency.py says what
    stands in for it).
    """

    name: str
    peak_flops: float
    memory_bytes: float
    gpus_per_node: int
    intra_node_bw: float
    label: str = ""
    memory_bw: float | None = None
    inter_node_bw: float | None = None
    host_link_bw: float | None = None
    peak_flops_fp8: float | None = None
    matmul_flops: float | None = None  # measured max achievable bf16 matmul FLOP/s (<= peak_flops)
    matmul_source: str = ""
    price_per_hour: float | None = None  # $ per GPU-hour, public on-demand list price
    source: str = ""
    price_source: str = ""  # where and when price_per_hour was read

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def with_(self, **changes: Any) -> "HardwareSpec":
        data = asdict(self)
        data.update(changes)
        return HardwareSpec(**data)


def hardware_from_dict(raw: dict, where: str = "hardware") -> HardwareSpec:
    data = _validate(where, raw, _HARDWARE_SCHEMA)
    mamf = data.get("matmul_flops")
    if mamf is not None and not 0 < mamf <= data["peak_flops"]:
        raise UserError(f"{where}: matmul_flops = {mamf:g}; accepted: a measured FLOP/s in (0, peak_flops = {data['peak_flops']:g}]",
                        field="matmul_flops")
    return HardwareSpec(**data)


# --------------------------------------------------------------------------- Goal

GOAL_DEFAULTS = {
    # Chinchilla compute-optimal: ~20 tokens per parameter (Hoffmann et al. 2022, Table 3).
    "tokens_per_param": 20.0,
    "deadline_s": 30 * 86400.0,
    # 4M-token global batch (2^22): the GPT-3/LLaMA scale of batch for 7B-175B models.
    "global_batch_tokens": 4 * 1024 * 1024,
}
PRECISIONS = ("bf16", "bf16-fp32grad", "fp8")

_GOAL_SCHEMA: dict[str, _Field] = {
    "tokens": _Field("float"),
    "deadline_s": _Field("float"),
    "global_batch_tokens": _Field("int", minimum=1),
    "precision": _Field("str", required=False, choices=PRECISIONS),
}


@dataclass(frozen=True)
class Goal:
    """What to train: `tokens` in total within `deadline_s`, in steps of `global_batch_tokens`.

    precision "bf16" is bf16 mixed precision with Adam (16 B/param of state);
    "bf16-fp32grad" keeps an fp32 gradient buffer too (18 B/param); "fp8" runs the layers' GEMMs
    in FP8 (Transformer Engine / DeepSeek-V3 style) with bf16 weights and gradients and fp32
    master weights and Adam state (16 B/param).
    """

    tokens: float
    deadline_s: float
    global_batch_tokens: int
    precision: str = "bf16"

    def to_dict(self) -> dict:
        return asdict(self)


def goal_from_dict(raw: dict, where: str = "goal") -> Goal:
    return Goal(**_validate(where, raw, _GOAL_SCHEMA))


# --------------------------------------------------------------------------- files


def read_text(path: Path, expected: str, errors: str = "strict") -> str:
    """A file's UTF-8 text, every failure a one-line UserError naming the file; `expected` says what
    the file should be ("a TOML file"). errors="replace" reads on past bad bytes (a log being written)."""
    try:
        return Path(path).read_bytes().decode("utf-8", errors)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected {expected}") from None
    except PermissionError:
        raise UserError(f"{path}: permission denied") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None


def read_toml(path: Path) -> dict:
    """Parse a TOML file, turning every failure into a one-line UserError naming the file."""
    text = read_text(path, "a TOML file")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise UserError(too_deep(path, "TOML")) from None


def read_json(path: Path) -> Any:
    """Parse a JSON file, turning every failure into a one-line UserError naming the file."""
    text = read_text(path, "a JSON file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise UserError(too_deep(path, "JSON")) from None


def too_deep(path, kind: str) -> str:
    """The one-line refusal of a file nested past Python's recursion limit (~1,000 levels): the parsers
    raise RecursionError, which printed a traceback thousands of lines long."""
    return f"{path}: {kind} nested too deeply to read (over ~{sys.getrecursionlimit():,} levels); accepted: a {kind} file of ordinary depth"


def builtin_names(kind: str) -> list[str]:
    """Names of the shipped profiles of `kind` ("hardware" or "models")."""
    return sorted(p.stem for p in (PROFILES_DIR / kind).glob("*.toml"))


def _resolve(kind: str, name_or_path: str) -> Path:
    path = PROFILES_DIR / kind / f"{name_or_path}.toml"
    if path.is_file():
        return path
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix in (".toml", ".json") or candidate.exists() or "/" in name_or_path:
        if not candidate.exists():
            raise UserError(f"{name_or_path}: no such file")
        return candidate
    label = "hardware" if kind == "hardware" else "model"
    raise UserError(
        f"unknown {label} profile '{name_or_path}'; known: {', '.join(builtin_names(kind))} (or a path to a file)"
    )


def load_hardware(name_or_path: str) -> HardwareSpec:
    """A built-in hardware profile by name, or a TOML file by path."""
    path = _resolve("hardware", name_or_path)
    return hardware_from_dict(read_toml(path), where=str(path))


def load_model(name_or_path: str, mtp: bool = False) -> ModelSpec:
    """A built-in model profile by name, a TOML file, or a Hugging Face config.json (mtp: count
    its multi-token-prediction module, see model_from_hf_config)."""
    path = _resolve("models", name_or_path)
    if path.suffix == ".json":
        return model_from_hf_config(read_json(path), where=str(path), mtp=mtp)
    return model_from_dict(read_toml(path), where=str(path))


# --------------------------------------------------------------------------- Hugging Face config.json

# The first key present wins: llama/mistral/qwen2/mixtral names, then GPT-2's.
_HF_KEYS = {
    "n_layer": ("num_hidden_layers", "n_layer"),
    "d_model": ("hidden_size", "n_embd"),
    "n_head": ("num_attention_heads", "n_head"),
    "n_kv_head": ("num_key_value_heads",),
    "head_dim": ("head_dim",),
    "d_ff": ("intermediate_size", "n_inner"),
    "vocab_size": ("vocab_size",),
    "seq_len": ("max_position_embeddings", "n_positions", "n_ctx"),
    "tie_embeddings": ("tie_word_embeddings",),
    "n_experts": ("num_local_experts", "num_experts", "n_routed_experts"),
    "experts_per_token": ("num_experts_per_tok",),
    "q_lora_rank": ("q_lora_rank",),
    "kv_lora_rank": ("kv_lora_rank",),
    "qk_nope_head_dim": ("qk_nope_head_dim",),
    "qk_rope_head_dim": ("qk_rope_head_dim",),
    "v_head_dim": ("v_head_dim",),
    "n_shared_experts": ("n_shared_experts",),
}
# Keys that change a model's size in ways LSDT does not model, with the value(s) that change
# nothing: any other value is refused, naming the key, rather than mis-sized in silence.
_HF_UNMODELED = {
    "decoder_sparse_step": (1,),  # Qwen2/3-MoE: an MoE layer only every n-th layer
    "mlp_only_layers": ([],),  # Qwen2/3-MoE: listed layers dense
    "moe_layer_freq": (1,),  # DeepSeek: an MoE layer only every n-th layer
    "shared_expert_intermediate_size": (0,),  # Qwen2-MoE's shared expert of its own width
    "attention_bias": (False,),  # q/k/v/o biases
    "mlp_bias": (False,),
    "cross_attention_layers": ([],),  # Llama 3.2 vision
}
# The sequence length an HF config.json is planned at when it gives a longer maximum (see below).
HF_TRAINING_SEQ = 8192
_HF_ACT_TO_FFN = {"silu": "swiglu", "swiglu": "swiglu", "gelu": "gelu", "gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "relu2": "relu2"}


def _check_hf_value(where: str, hf_key: str, value: Any, f: _Field) -> Any:
    """One config.json value, validated as its ModelSpec field but named by its key in the file."""
    if f.kind == "bool":
        if not isinstance(value, bool):
            raise UserError(f"{where}: key '{hf_key}' = {value!r}; accepted: true or false")
        return value
    return _check_number(where, hf_key, value, integer=f.kind == "int", minimum=f.minimum, allow_zero=f.allow_zero)


def model_from_hf_config(cfg: Any, where: str = "config.json", mtp: bool = False) -> ModelSpec:
    """A ModelSpec from a Hugging Face config.json (llama, mistral, qwen2/3, mixtral, qwen3-moe,
    deepseek-v2/v3, gpt2 styles).

    GPT-2 configs tie embeddings and use GELU unless they say otherwise; llama-family configs
    (hidden_act silu) are SwiGLU. A `sliding_window` below the context becomes an all-S pattern
    (Mistral). MoE fields (num_local_experts / num_experts, num_experts_per_tok) map to
    n_experts / experts_per_token; `moe_intermediate_size`, where given, is the expert d_ff.
    DeepSeek: MLA keys (q_lora_rank, kv_lora_rank, qk_*_head_dim, v_head_dim), n_shared_experts,
    first_k_dense_replace dense layers of intermediate_size; its multi-token-prediction module
    (num_nextn_predict_layers) is counted only with mtp=True (the published 671B excludes it).
    A size-changing key LSDT does not model (_HF_UNMODELED) is refused, naming it.
    """
    if not isinstance(cfg, dict):
        raise UserError(f"{where}: expected a JSON object (a Hugging Face config.json)")
    for key, neutral in _HF_UNMODELED.items():
        if key in cfg and cfg[key] is not None and cfg[key] not in neutral:
            raise UserError(f"{where}: key '{key}' = {cfg[key]!r} changes the model's size in a way LSDT does not model; "
                            f"accepted: {' or '.join(repr(v) for v in neutral)} (or leave it out)")
    raw: dict[str, Any] = {}
    for key, names in _HF_KEYS.items():
        for hf in names:
            if cfg.get(hf) is not None:
                # Checked under the file's own key name: an error naming 'n_layer' sent the user
                # looking for a key their config.json does not have.
                raw[key] = _check_hf_value(where, hf, cfg[hf], _MODEL_SCHEMA[key])
                break
    for required in ("n_layer", "d_model", "n_head", "vocab_size"):
        if required not in raw:
            raise UserError(f"{where}: missing '{_HF_KEYS[required][0]}' (a Hugging Face config.json needs it)")
    max_positions = raw.get("seq_len")
    # Plan at a context people pre-train at, not the maximum position (131,072 for Llama 3.1 and
    # Qwen2 planned 609 GB per device): Llama 3's main pre-training ran at 8,192 tokens (Dubey et
    # al. 2024, "The Llama 3 Herd of Models", sec. 3.4.1); long context comes in a later, short stage.
    raw["seq_len"] = min(max_positions or HF_TRAINING_SEQ, HF_TRAINING_SEQ)
    is_gpt2 = cfg.get("model_type") == "gpt2" or "n_embd" in cfg
    act = str(cfg.get("hidden_act") or cfg.get("activation_function") or ("gelu" if is_gpt2 else "silu"))
    if act not in _HF_ACT_TO_FFN:
        raise UserError(f"{where}: hidden_act = {act!r}; accepted: {', '.join(_HF_ACT_TO_FFN)}")
    raw["ffn"] = _HF_ACT_TO_FFN[act]
    if is_gpt2:
        raw.setdefault("tie_embeddings", True)
    if raw.get("n_experts") and cfg.get("moe_intermediate_size"):
        raw["d_ff"] = _check_hf_value(where, "moe_intermediate_size", cfg["moe_intermediate_size"], _MODEL_SCHEMA["d_ff"])
        if "intermediate_size" in cfg:  # the dense MLP width (DeepSeek's first_k_dense_replace layers)
            raw["dense_d_ff"] = _check_hf_value(where, "intermediate_size", cfg["intermediate_size"], _MODEL_SCHEMA["d_ff"])
    if not raw.get("n_experts"):
        raw.pop("n_experts", None)
        raw.pop("experts_per_token", None)
        raw.pop("n_shared_experts", None)
    elif cfg.get("first_k_dense_replace"):
        raw["dense_layers"] = _check_hf_value(where, "first_k_dense_replace", cfg["first_k_dense_replace"], _MODEL_SCHEMA["dense_layers"])
    if mtp and cfg.get("num_nextn_predict_layers"):
        raw["mtp_layers"] = _check_hf_value(where, "num_nextn_predict_layers", cfg["num_nextn_predict_layers"], _MODEL_SCHEMA["mtp_layers"])
    if raw.get("kv_lora_rank"):
        raw.setdefault("n_kv_head", raw["n_head"])  # MLA: one k/v head per query head
        raw.pop("head_dim", None)  # DeepSeek's head_dim key is the rope width; MLA widths are explicit
    else:
        for key in ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
            raw.pop(key, None)
    window = cfg.get("sliding_window")
    if isinstance(window, int) and not isinstance(window, bool) and 0 < window < raw["seq_len"] and cfg.get("use_sliding_window", True):
        raw["window_pattern"] = "S"
        raw["short_window"] = window
    # Named after the model (its hub id or its directory), not its architecture ("llama").
    raw["name"] = str(cfg.get("_name_or_path") or Path(where).parent.name or cfg.get("model_type") or "hf-model")
    raw["source"] = (f"Hugging Face config {where}; seq_len {raw['seq_len']:,} (training context default, "
                     f"max_position_embeddings {max_positions:,}; --seq to change)" if max_positions else
                     f"Hugging Face config {where}; seq_len {raw['seq_len']:,} (training context default; --seq to change)")
    return model_from_dict(raw, where=where)


__all__ = [
    "FFN_KINDS",
    "GOAL_DEFAULTS",
    "Goal",
    "HardwareSpec",
    "ModelSpec",
    "PROFILES_DIR",
    "builtin_names",
    "goal_from_dict",
    "hardware_from_dict",
    "load_hardware",
    "load_model",
    "model_from_dict",
    "model_from_hf_config",
    "read_json",
    "read_toml",
]
