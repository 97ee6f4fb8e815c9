"""Model sources of the sparsity lab, all offline: an LSDT training run (or one checkpoint file),
a two-phase MoE run directory, or a local Hugging Face directory (config.json + weights).

Every source becomes a `Source`: the model in eval mode, a `forward(idx) -> logits`, the MLP
layers in path order with the module whose *input* is the MLP activation (the down projection:
LSDT `mlp.down`, GPT-2 `mlp.c_proj`, GPT-NeoX `mlp.dense_4h_to_h`, Llama/Mistral/Qwen2
`mlp.down_proj`), a tokenizer, the SHA-256 of the weights and (where the sizing engine knows the
architecture) a ModelSpec for FLOP counts. Nothing is ever downloaded: Hugging Face directories
load with `local_files_only=True`.

MoE expert layers are labelled `expert<E>.<j>`. An expert stack runs over the whole sequence when
any token picks it, but only the tokens routed to it use its output; `token_mask` says which ones,
so the capture counts an expert neuron's activation only on the tokens that expert really serves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from engine.errors import UserError
from engine.specs import ModelSpec

# Hugging Face: the module under each decoder layer whose input is the MLP activation.
HF_DOWN_NAMES = ("mlp.c_proj", "mlp.dense_4h_to_h", "mlp.down_proj")
HF_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")


@dataclass
class Layer:
    label: str  # "3" (dense), "trunk1", "expert2.0" (MoE)
    down: nn.Module  # its input is the MLP activation [B, T, width]
    width: int
    token_mask: Callable[[], torch.Tensor | None] = lambda: None  # [B, T] bool of tokens that use this layer


@dataclass
class Source:
    kind: str  # lsdt | moe | hf
    name: str
    path: str
    model: nn.Module
    layers: list[Layer]
    seq_len: int
    vocab_size: int
    encode: Callable[[bytes], list[int]]
    tokenizer: str  # "bytes" or the HF tokenizer's class name
    weights_sha256: str
    spec: ModelSpec | None  # for FLOP counts; None where the sizing engine does not know the architecture
    forward: Callable[[torch.Tensor], torch.Tensor] = field(default=None)  # idx [B, T] -> logits [B, T, V]
    down_is_linear: bool = True  # nn.Linear down projections (gather mode needs them)

    def layer(self, label: str) -> Layer:
        for layer in self.layers:
            if layer.label == label:
                return layer
        raise UserError(f"layer {label!r}: not in {self.name}; accepted: {', '.join(l.label for l in self.layers)}")


def _sha256_files(paths: list[Path]) -> str:
    from engine.runtime.train.checkpoint import file_sha256

    if len(paths) == 1:
        return file_sha256(paths[0])
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode() + b"\0" + file_sha256(p).encode())
    return h.hexdigest()


def _byte_encode(data: bytes) -> list[int]:
    return list(data)


def load_source(path: str, device: str = "cpu") -> Source:
    """The model at `path` (see the module docstring); UserError naming the path when it is not usable."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"--model {path}: no such file or directory; accepted: an `lsdt train` run dir or step_*.pt, "
                        "an `lsdt moe train` run dir, or a Hugging Face directory with config.json + weights")
    if p.is_dir() and (p / "moe.toml").is_file():
        src = _load_moe(p)
    elif p.is_dir() and (p / "config.json").is_file():
        src = _load_hf(p)
    elif p.is_file() or (p / "checkpoints").is_dir():
        src = _load_lsdt(p)
    else:
        raise UserError(f"--model {path}: not a model; accepted: an `lsdt train` run dir or step_*.pt, an `lsdt moe train` "
                        "run dir (moe.toml), or a Hugging Face directory (config.json + weights)")
    src.model.to(device)
    return src


def _load_lsdt(p: Path) -> Source:
    from engine.runtime.seal.quantize_ckpt import load_checkpoint, model_from_checkpoint

    state, ckpt = load_checkpoint(p)
    model, cfg = model_from_checkpoint(state, str(ckpt))
    layers = [Layer(str(i), b.mlp.down, b.mlp.down.in_features) for i, b in enumerate(model.blocks)]
    spec = cfg.spec
    return Source("lsdt", spec.name, str(p), model, layers, model.config.seq_len, model.config.vocab_size, _byte_encode,
                  "bytes", _sha256_files([ckpt]), spec, forward=lambda idx: model(idx)[0])


def _load_moe(p: Path) -> Source:
    from engine.runtime.moe.config import WEIGHTS_DIR, read_config
    from engine.runtime.moe.train import assemble

    cfg = read_config(p)
    weights = sorted((p / WEIGHTS_DIR).glob("*.s7l"))
    if not weights:
        raise UserError(f"--model {p}: no {WEIGHTS_DIR}/*.s7l; accepted: an MoE run whose `lsdt moe train` finished all phases")
    try:
        moe = assemble(p, cfg)
    except FileNotFoundError as exc:
        raise UserError(f"--model {p}: {exc.filename} missing; accepted: an MoE run whose phases all finished") from None
    layers = [Layer(f"trunk{i}", b.mlp.down, b.mlp.down.in_features) for i, b in enumerate(moe.trunk)]
    for e, stack in enumerate(moe.experts):
        def mask(e=e):
            ids = moe.last_expert_ids  # set by MoE.forward before any expert runs
            return None if ids is None else (ids == e).any(dim=-1)

        layers += [Layer(f"expert{e}.{j}", b.mlp.down, b.mlp.down.in_features, mask) for j, b in enumerate(stack)]
    spec = cfg.spec
    return Source("moe", spec.name, str(p), moe, layers, moe.config.seq_len, moe.config.vocab_size, _byte_encode,
                  "bytes", _sha256_files(weights), spec, forward=lambda idx: moe(idx)[0])


def _load_hf(p: Path) -> Source:
    try:
        import transformers
    except ImportError:
        raise UserError(f"--model {p}: a Hugging Face directory needs the `transformers` package; "
                        "accepted: pip install 'lsdt[hf]'") from None
    weights = [w for name in HF_WEIGHT_FILES for w in p.glob(name.replace(".index.json", "*"))
               if w.suffix in (".safetensors", ".bin")]
    if not weights:
        raise UserError(f"--model {p}: config.json but no weights; accepted: {' or '.join(HF_WEIGHT_FILES[:2])} (or sharded) beside it")
    transformers.logging.set_verbosity_error()
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(str(p), local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - a user's directory: any failure (bad header, bad shapes) is "cannot load"
        raise UserError(f"--model {p}: transformers cannot load it offline ({str(exc).splitlines()[0][:200]})") from None
    model.eval()
    layers = []
    for name, module in model.named_modules():
        for suffix in HF_DOWN_NAMES:
            if name.endswith(suffix) and name[: -len(suffix) - 1].rsplit(".", 1)[-1].isdigit():
                index = name[: -len(suffix) - 1].rsplit(".", 1)[-1]
                width = module.in_features if isinstance(module, nn.Linear) else module.weight.shape[0]  # GPT-2 Conv1D: [in, out]
                layers.append(Layer(index, module, int(width)))
    if not layers:
        raise UserError(f"--model {p}: no MLP down projection found (looked for {', '.join(HF_DOWN_NAMES)}); "
                        "accepted: GPT-2, GPT-NeoX/Pythia, Llama/Mistral/Qwen2 architectures")
    encode, tok_name = _byte_encode, "bytes"
    # Only the directory's own tokenizer files: AutoTokenizer would otherwise find one by model type elsewhere.
    if any((p / f).is_file() for f in HF_TOKENIZER_FILES):
        try:
            tok = transformers.AutoTokenizer.from_pretrained(str(p), local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - the user's files: any failure is "cannot load"
            raise UserError(f"--model {p}: its tokenizer files do not load ({str(exc).splitlines()[0][:160]})") from None
        encode, tok_name = (lambda data: tok(data.decode("utf-8", "replace"))["input_ids"]), type(tok).__name__
    elif model.config.vocab_size < 256:
        raise UserError(f"--model {p}: no tokenizer files and vocab_size {model.config.vocab_size} < 256 (byte tokens); "
                        f"accepted: a directory with {' / '.join(HF_TOKENIZER_FILES)}")
    spec = None
    try:
        from engine.specs import model_from_hf_config, read_json

        spec = model_from_hf_config(read_json(p / "config.json"), where=str(p / "config.json"))
    except UserError:
        spec = None  # e.g. GPT-NeoX keys the sizing engine does not map: FLOP reduction is then n/a
    seq = int(getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", 1024))
    return Source("hf", p.name, str(p), model, layers, seq, int(model.config.vocab_size), encode, tok_name,
                  _sha256_files(weights), spec, forward=lambda idx: model(input_ids=idx).logits,
                  down_is_linear=all(isinstance(l.down, nn.Linear) for l in layers))


def select_layers(src: Source, text: str) -> list[Layer]:
    """`auto` (relative depths 0.25, 0.5, 0.75 of the dense path, plus every MoE expert layer),
    `rel:0.25,0.5`, `all`, or explicit labels/indices `0,2` (`trunk1,expert0.1` on an MoE)."""
    text = (text or "auto").strip()
    dense = [l for l in src.layers if not l.label.startswith("expert")]
    if text == "all":
        return list(src.layers)
    if text == "auto" or text.startswith("rel:"):
        rels = [0.25, 0.5, 0.75] if text == "auto" else _rels(text)
        chosen = [dense[i] for i in relative_indices(rels, len(dense))]
        if text == "auto":
            chosen += [l for l in src.layers if l.label.startswith("expert")]
        return chosen
    labels = [t.strip() for t in text.split(",") if t.strip()]
    if not labels:
        raise UserError(f"--layers {text!r}: empty; accepted: auto, all, rel:0.25,0.5 or labels such as 0,2")
    for lab in labels:
        if lab not in {l.label for l in src.layers}:
            raise UserError(f"--layers: layer {lab!r} is not in {src.name}; accepted: auto, all, rel:R,..., "
                            f"or labels among {', '.join(l.label for l in src.layers)}")
    return [src.layer(lab) for lab in dict.fromkeys(labels)]  # in the order given, each once


def relative_indices(rels: list[float], n_layers: int) -> list[int]:
    """Layer indices at relative depths: floor(r * n + 0.5) clamped to [0, n - 1], each once, sorted.
    The seed's scaling table: 6 layers -> 2, 3, 5; 24 -> 6, 12, 18; 32 -> 8, 16, 24 (half rounds up,
    where Python's round() would give 4 for 4.5)."""
    import math

    return sorted({min(n_layers - 1, max(0, math.floor(r * n_layers + 0.5))) for r in rels})


def _rels(text: str) -> list[float]:
    try:
        rels = [float(x) for x in text[4:].split(",") if x.strip()]
    except ValueError:
        rels = []
    if not rels or not all(0.0 <= r <= 1.0 for r in rels):
        raise UserError(f"--layers {text!r}: accepted: rel: followed by relative depths in [0, 1], e.g. rel:0.25,0.5,0.75")
    return rels
