"""A trained GPT <-> its INT8 version: module swap, sealable tensors, rebuild, V6, perplexity.

`quantize_gpt` turns every nn.Linear (q, k, v, o, up, gate, down, lm_head) into an Int8Linear
and the token embedding into an Int8Embedding (engine/runtime/seal/quant.py has the formulas). The
embedding is quantized too: it is the largest tensor of a small model (the seed's 18.9M of
133M), the seed budgets INT8 inference for all parameters (~133 MB), and per-row scales are
per-token scales, which is what a lookup needs. A tied LM head shares the embedding's int8
rows and scales (stored once). The GPT has no other parameters (parameter-free RMSNorm, RoPE
tables are derived buffers); anything else a model carried would stay fp32 and be listed.

Sealed tensor names: MODULE.weight (I8 [out, in]), MODULE.weight_scale (F32 [out]) and, for
static activations, MODULE.act_scale (F32 []). Header metadata: kind = "lsdt-int8-gpt",
config (GPTConfig as canonical JSON), quant (method, act mode, module kinds, ties).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Iterable

import torch
from torch import nn

from engine.errors import UserError
from engine.runtime.seal.quant import (ACT_MODES, Int8Embedding, Int8Linear, TensorError, calibrate, intra_op_threads,
                                  quantize_rows, tensor_error)
from engine.runtime.seal.s7l import canonical_json

from engine.runtime.seal import GPT_KIND as KIND, MOE_KIND  # the kinds the seal package registers V6 checks for
METHOD = "per_row_absmax_int8"


def _embedding_types() -> tuple[type, ...]:
    from engine.runtime.model.embedding import TokenEmbedding

    return (nn.Embedding, TokenEmbedding)


@dataclass
class QuantResult:
    model: nn.Module  # the INT8 model (eval mode)
    tensors: dict[str, torch.Tensor]  # what gets sealed, by name
    metadata: dict[str, str]  # .s7l header metadata
    errors: list[TensorError]  # one per quantized weight (tied: once)
    act_absmax: dict[str, float] = field(default_factory=dict)  # calibrated input absmax per linear
    path: str = "weight-only"  # "w8a8" when every linear runs torch._int_mm

    def summary(self) -> dict:
        return {"method": METHOD, "path": self.path, "act_mode": json.loads(self.metadata["quant"])["act_mode"],
                "n_tensors": len(self.tensors), "errors": [e.to_json() for e in self.errors],
                "act_absmax": self.act_absmax}


@torch.no_grad()
def quantize_gpt(model: nn.Module, calib_batches: Iterable[torch.Tensor] | None = None, act_mode: str = "static",
                 allow_int_mm: bool = True) -> QuantResult:
    """The INT8 version of a trained GPT (the input is left untouched).

    act_mode "static" needs calib_batches (held-out idx tensors [B, T]); "dynamic" ignores them.
    """
    if act_mode not in ACT_MODES:
        raise UserError(f"activation mode {act_mode!r}; accepted: {', '.join(ACT_MODES)}")
    model = copy.deepcopy(model).float().eval()
    modules = dict(model.named_modules())
    linears = [n for n, m in modules.items() if isinstance(m, nn.Linear)]
    embeds = [n for n, m in modules.items() if isinstance(m, _embedding_types())]
    if any(modules[n].bias is not None for n in linears):
        raise UserError("model has linear biases; the INT8 path here covers bias-free linears (LSDT's GPT has none)")
    absmax = {}
    if act_mode == "static":
        if calib_batches is None:
            raise UserError("static activation scales need calibration batches (--calib N > 0), or use dynamic")
        absmax = calibrate(model, calib_batches, linears)
    with intra_op_threads(1):
        quantized = _quantize_modules(modules, embeds, linears, absmax, act_mode, allow_int_mm, model)
    tensors, errors, kinds, ties = quantized
    leftover = {n: p for n, p in model.named_parameters()}
    tensors.update({n: p.detach().float() for n, p in leftover.items()})  # stays fp32 (none in LSDT's GPT)
    quant = {"method": METHOD, "act_mode": act_mode, "modules": kinds, "ties": ties, "fp32": sorted(leftover)}
    metadata = {"kind": KIND, "config": canonical_json(model.config.to_dict()).decode(), "quant": canonical_json(quant).decode()}
    paths = {m.path for m in model.modules() if isinstance(m, Int8Linear)}
    return QuantResult(model, tensors, metadata, errors, absmax, "w8a8" if paths == {"w8a8"} else "weight-only")


def _quantize_modules(modules, embeds, linears, absmax, act_mode, allow_int_mm, model):
    """Swap each module for its INT8 version (in place in `model`); the tensors to seal."""
    owner: dict[int, str] = {}  # id(parameter) -> first module name that holds it (tied weights)
    done: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    tensors, errors, kinds, ties = {}, [], {}, {}
    for name in sorted(embeds + linears):
        mod = modules[name]
        w = mod.weight
        if id(w) not in done:
            q, s = quantize_rows(w)
            done[id(w)], owner[id(w)] = (q, s), name
            errors.append(tensor_error(f"{name}.weight", w, q, s))
            tensors[f"{name}.weight"], tensors[f"{name}.weight_scale"] = q, s
        else:
            ties[name] = owner[id(w)]  # module -> module whose int8 rows and scales it shares
        q, s = done[id(w)]
        if name in embeds:
            new, kinds[name] = Int8Embedding(q, s), "embedding"
        else:
            act = None
            if act_mode == "static":
                act = torch.tensor(absmax[name] / 127.0 if absmax[name] > 0 else 1.0, dtype=torch.float32)
                tensors[f"{name}.act_scale"] = act
            new, kinds[name] = Int8Linear(q, s, act, act_mode, allow_int_mm), "linear"
        _set_module(model, name, new)
    return tensors, errors, kinds, ties


def _set_module(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


def _gpt_classes():
    from engine.runtime.model import GPT, GPTConfig

    return GPT, GPTConfig


def _moe_classes():
    from engine.runtime.model.moe import MoE, MoEConfig

    return MoE, MoEConfig


# Sealed-model kinds this build can rebuild: header metadata "kind" -> (model class, config class),
# imported when a file of that kind is built.
MODEL_KINDS = {KIND: _gpt_classes, MOE_KIND: _moe_classes}


def build_int8(tensors: dict[str, torch.Tensor], metadata: dict[str, str], allow_int_mm: bool = True) -> nn.Module:
    """Rebuild an INT8 model (any kind in MODEL_KINDS) from sealed tensors + metadata (no pickle)."""
    kind = metadata.get("kind")
    if kind not in MODEL_KINDS:
        raise UserError(f"metadata kind {kind!r}; accepted: {', '.join(map(repr, MODEL_KINDS))}")
    model_class, config_class = MODEL_KINDS[kind]()
    try:
        config = config_class(**json.loads(metadata["config"]))
        quant = json.loads(metadata["quant"])
        kinds, ties, act_mode = dict(quant["modules"]), dict(quant["ties"]), quant["act_mode"]
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"model metadata (config/quant) unusable: {type(exc).__name__}: {exc}") from None
    with torch.device("meta"):
        model = model_class(config)
    model.to_empty(device="cpu")
    model.rotary.reset_tables()
    used = set()

    def get(key: str) -> torch.Tensor:
        if key not in tensors:
            raise UserError(f"sealed model lacks tensor {key!r}")
        used.add(key)
        return tensors[key]

    for name, kind in sorted(kinds.items()):
        src = ties.get(name, name)  # a tied LM head reads the embedding's rows and scales
        q, s = get(f"{src}.weight"), get(f"{src}.weight_scale")
        if kind == "embedding":
            new = Int8Embedding(q, s)
        elif kind == "linear":
            act = get(f"{name}.act_scale") if act_mode == "static" else None
            new = Int8Linear(q, s, act, act_mode, allow_int_mm)
        else:
            raise UserError(f"module {name}: kind {kind!r}; accepted: embedding, linear")
        _set_module(model, name, new)
    for n, p in model.named_parameters():
        p.data.copy_(get(n))
    unused = sorted(set(tensors) - used)
    if unused:
        raise UserError(f"sealed model has tensors the model does not use: {', '.join(unused[:3])}")
    return model.eval()


def build_int8_gpt(tensors: dict[str, torch.Tensor], metadata: dict[str, str], allow_int_mm: bool = True) -> nn.Module:
    """The dense GPT's rebuild (kind "lsdt-int8-gpt" only)."""
    if metadata.get("kind") != KIND:
        raise UserError(f"metadata kind {metadata.get('kind')!r}; accepted: {KIND!r}")
    return build_int8(tensors, metadata, allow_int_mm)


def tensor_bytes(t: torch.Tensor) -> bytearray:
    """A tensor's raw bytes without numpy (torch copies into a bytearray it views)."""
    flat = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
    buf = bytearray(flat.numel())
    if buf:
        torch.frombuffer(buf, dtype=torch.uint8).copy_(flat)
    return buf


def probe_tokens(vocab_size: int, seq_len: int, batch: int = 2, length: int = 32) -> torch.Tensor:
    """A fixed token batch for V6: t[b, i] = (7919 * (b * T + i) + 13) mod vocab (no RNG)."""
    T = min(seq_len, length)
    return (torch.arange(batch * T, dtype=torch.int64) * 7919 + 13).remainder(vocab_size).view(batch, T)


@torch.no_grad()
def determinism_check(path, metadata: dict[str, str]) -> dict:
    """V6: two independent loads of the file, the same tokens, bitwise-identical logits."""
    from engine.runtime.seal.s7l import load_tensors

    check = "V6_determinism"
    if metadata.get("kind") not in MODEL_KINDS:
        return {"check": check, "ok": None, "detail": f"n/a: metadata kind {metadata.get('kind')!r} is not a model this build runs"}
    digests, path_used = [], None
    try:
        for _ in range(2):
            tensors, meta = load_tensors(path)
            model = build_int8(tensors, meta)
            cfg = model.config
            logits, _ = model(probe_tokens(cfg.vocab_size, cfg.seq_len))
            digests.append(hashlib.sha256(tensor_bytes(logits.float())).hexdigest())
            paths = {m.path for m in model.modules() if isinstance(m, Int8Linear)}
            path_used = "w8a8" if paths == {"w8a8"} else "weight-only"
    except UserError as exc:
        return {"check": check, "ok": False, "detail": f"V6_determinism: model cannot be built: {exc}"}
    if digests[0] != digests[1]:
        return {"check": check, "ok": False, "detail": f"V6_determinism: logits differ between two loads ({digests[0][:12]} vs {digests[1][:12]})"}
    return {"check": check, "ok": True, "detail": f"two loads give bitwise-identical logits (path {path_used}, sha256 {digests[0][:16]}..)"}


@torch.no_grad()
def perplexity(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """exp(token-weighted mean cross-entropy) over (x, y) batches."""
    was = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for x, y in batches:
            _, loss = model(x, y)
            n = int((y != -1).sum())
            total += loss.item() * n
            count += n
    finally:
        model.train(was)
    if not count:
        raise UserError("perplexity needs at least one evaluation batch")
    return math.exp(total / count)
