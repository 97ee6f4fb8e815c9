"""Phase 3 of the MoE: INT8 per-row PTQ with per-domain calibration, per-domain perplexity, V6.

The quantizer is the runtime's (engine/runtime/quant_infer.quantize_gpt, formulas in quant.py): it
swaps every nn.Linear (trunk, every expert, the router's gate, the tied head) for an Int8Linear and
the embedding for an Int8Embedding, on any module tree; only the rebuild needs to know the model's
class, so quant_infer.MODEL_KINDS registers the MoE and this module marks the sealed header kind
"lsdt-int8-moe"; `lsdt verify` then runs V6 on MoE files too.

Calibration: held-out windows from every domain's val split (first half, engine/runtime/
quantize_ckpt.held_out_windows), so each expert's linears see the activations of the domain routed
to it (seed 002 sec. 5: "representative samples from each domain (held-out)"). Perplexity: the second
half of each domain's val split, FP32 vs INT8, both through the router (routing included).
"""

from __future__ import annotations

import json

import torch
from torch import nn

from engine.errors import UserError
from engine.runtime.seal import MOE_KIND as KIND  # the kind the seal package registers a V6 check for
from engine.runtime.seal.quant_infer import build_int8, perplexity, quantize_gpt


def domain_windows(domains, seq_len: int, n_calib: int, n_eval: int):
    """{domain: (calib idx [n, T], eval x, eval y)} from each domain's val split."""
    from engine.runtime.seal.quantize_ckpt import held_out_windows

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


def build_int8_moe(tensors: dict[str, torch.Tensor], metadata: dict[str, str], allow_int_mm: bool = True) -> nn.Module:
    """Rebuild the INT8 MoE from sealed tensors + metadata (quant_infer.build_int8's rules)."""
    if metadata.get("kind") != KIND:
        raise UserError(f"metadata kind {metadata.get('kind')!r}; accepted: {KIND!r}")
    return build_int8(tensors, metadata, allow_int_mm)


def verify_moe(path) -> dict:
    """Every check of engine.runtime.seal.s7l.verify, V6 included (quant_infer rebuilds the MoE): {ok, checks, ...}."""
    from engine.runtime.seal.s7l import verify

    report = verify(path)
    return {"ok": report.ok, "checks": report.checks, "merkle_root": report.merkle_root, "file_bytes": report.file_bytes,
            "n_tensors": report.n_tensors, "failure": report.failure}
