"""Phase 3 of the MoE: INT8 per-row PTQ with per-domain calibration, per-domain perplexity, V6.

The quantizer is the runtime's (engine/runtime/quant_infer.quantize_gpt, formulas in quant.py): it
swaps every nn.Linear (trunk, every expert, the router's gate, the tied head) for an Int8Linear and
the embedding for an Int8Embedding, on any module tree; only the rebuild needs to know the model's
class, so this module adds `build_int8_moe` and marks the sealed header kind "lsdt-int8-moe".

Calibration: held-out windows from every domain's val split (first half, engine/runtime/
quantize_ckpt.held_out_windows), so each expert's linears see the activations of the domain routed
to it (seed 002 sec. 5: "representative samples from each domain (held-out)"). Perplexity: the second
half of each domain's val split, FP32 vs INT8, both through the router (routing included).
"""

from __future__ import annotations

import hashlib
import json

import torch
from torch import nn

from engine.errors import UserError
from engine.runtime.quant import Int8Embedding, Int8Linear
from engine.runtime.quant_infer import perplexity, probe_tokens, quantize_gpt, tensor_bytes

KIND = "lsdt-int8-moe"


def domain_windows(domains, seq_len: int, n_calib: int, n_eval: int):
    """{domain: (calib idx [n, T], eval x, eval y)} from each domain's val split."""
    from engine.runtime.quantize_ckpt import held_out_windows

    return {n: held_out_windows(d.val, seq_len, n_calib, n_eval) for n, d in zip(domains.names, domains.data)}


@torch.no_grad()
def quantize_moe(moe: nn.Module, windows: dict, batch: int = 8, act_mode: str = "static"):
    """(QuantResult, {domain: {fp32, int8, delta_pct}}) of a trained MoE in eval mode."""
    moe = moe.eval()
    calib = [b for c, _, _ in windows.values() for b in c.split(batch)]
    result = quantize_gpt(moe, calib if act_mode == "static" else None, act_mode)
    result.metadata["kind"] = KIND
    result.metadata["domains"] = json.dumps(list(windows), separators=(",", ":"))
    ppl = {}
    for name, (_, ex, ey) in windows.items():
        ev = list(zip(ex.split(batch), ey.split(batch)))
        fp32, int8 = perplexity(moe, ev), perplexity(result.model, ev)
        ppl[name] = {"fp32": fp32, "int8": int8, "delta_pct": 100.0 * (int8 / fp32 - 1.0), "tokens": int(ex.numel())}
    return result, ppl


def _set_module(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


def build_int8_moe(tensors: dict[str, torch.Tensor], metadata: dict[str, str], allow_int_mm: bool = True) -> nn.Module:
    """Rebuild the INT8 MoE from sealed tensors + metadata (the same rules as quant_infer.build_int8_gpt)."""
    from engine.runtime.model.moe import MoE, MoEConfig

    if metadata.get("kind") != KIND:
        raise UserError(f"metadata kind {metadata.get('kind')!r}; accepted: {KIND!r}")
    try:
        config = MoEConfig(**json.loads(metadata["config"]))
        quant = json.loads(metadata["quant"])
        kinds, ties, act_mode = dict(quant["modules"]), dict(quant["ties"]), quant["act_mode"]
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"MoE metadata (config/quant) unusable: {type(exc).__name__}: {exc}") from None
    with torch.device("meta"):
        model = MoE(config)
    model.to_empty(device="cpu")
    model.rotary.reset_tables()
    used = set()

    def get(key: str) -> torch.Tensor:
        if key not in tensors:
            raise UserError(f"sealed MoE lacks tensor {key!r}")
        used.add(key)
        return tensors[key]

    for name, kind in sorted(kinds.items()):
        src = ties.get(name, name)
        q, s = get(f"{src}.weight"), get(f"{src}.weight_scale")
        if kind == "embedding":
            new = Int8Embedding(q, s)
        elif kind == "linear":
            new = Int8Linear(q, s, get(f"{name}.act_scale") if act_mode == "static" else None, act_mode, allow_int_mm)
        else:
            raise UserError(f"module {name}: kind {kind!r}; accepted: embedding, linear")
        _set_module(model, name, new)
    for n, p in model.named_parameters():
        p.data.copy_(get(n))
    unused = sorted(set(tensors) - used)
    if unused:
        raise UserError(f"sealed MoE has tensors the model does not use: {', '.join(unused[:3])}")
    return model.eval()


@torch.no_grad()
def determinism_check(path) -> dict:
    """V6 for a sealed MoE: two independent loads, the same tokens, bitwise-identical logits."""
    from engine.runtime.s7l import load_tensors

    check, digests = "V6_determinism", []
    try:
        for _ in range(2):
            tensors, meta = load_tensors(path)
            model = build_int8_moe(tensors, meta)
            logits, _ = model(probe_tokens(model.config.vocab_size, model.config.seq_len))
            digests.append(hashlib.sha256(tensor_bytes(logits.float())).hexdigest())
    except UserError as exc:
        return {"check": check, "ok": False, "detail": f"V6_determinism: MoE cannot be built: {exc}"}
    if digests[0] != digests[1]:
        return {"check": check, "ok": False, "detail": f"V6_determinism: logits differ between two loads ({digests[0][:12]} vs {digests[1][:12]})"}
    return {"check": check, "ok": True, "detail": f"two loads give bitwise-identical logits (sha256 {digests[0][:16]}..)"}


def verify_moe(path) -> dict:
    """Every format check of engine.runtime.s7l.verify, then V6 through the MoE rebuild: {ok, checks, ...}."""
    from engine.runtime.s7l import verify

    report = verify(path, determinism=False)
    checks = [c for c in report.checks if c["check"] != "V6_determinism"]
    ok = report.ok
    if ok:
        v6 = determinism_check(path)
        checks.append(v6)
        ok = bool(v6["ok"])
    failed = next((c for c in checks if c["ok"] is False), None)
    return {"ok": ok, "checks": checks, "merkle_root": report.merkle_root, "file_bytes": report.file_bytes,
            "n_tensors": report.n_tensors, "failure": failed["detail"] if failed else None}
