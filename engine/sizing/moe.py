"""MoE cluster sizing for the two-phase trunk + experts design (seed 002, S7-LLM-MOE-140M).

    size_moe(model, hardware, price_per_gpu_hour=None, ...) -> dict      (the `lsdt moe --json` object)

The design: `trunk_layers` shared blocks, then `n_experts` stacks of (n_layer - trunk_layers) blocks,
a router of d_model x n_experts, a (tied) embedding. Training runs in phases:
  Phase 1  the trunk (+ embedding/head) on all domains with the data mix;
  Phase 2  trunk frozen; each expert trained on its domain, the experts in parallel GPU pools;
           backward only through the expert (the trunk runs forward only and keeps no activations);
  Phase 3  calibration + QA: forward passes of the FP32 and the INT8 model over held-out samples.

Every count comes from engine.sizing.counts (param_counts, flops_per_token, attention_params,
mlp_params) applied to sub-models of the spec (the trunk alone, one expert stack alone); memory from
engine.sizing.bands (the SDPA activation rule) and physics (16 B/param of training state).
GPU-hours = tokens x FLOPs/token / (peak x MFU) / 3600. Where the seed's own numbers disagree with
its shapes or with each other, `seed_comparison` shows the seed's figure beside the computed one.
"""

from __future__ import annotations

import math
import sys

from engine.errors import UserError
from engine.sizing.bands import (
    AUTOCAST_COPY_BYTES_PER_PARAM,
    DEFAULT_RESERVE_BYTES,
    activation_bytes_per_token,
    autocast_copy_bytes,
)
from engine.sizing.counts import attention_params, flops_per_token, mlp_params, param_counts
from engine.sizing.design import DEFAULT_ETA_COMPUTE
from engine.sizing.physics import STATE_BYTES_PER_PARAM
from engine.specs import HardwareSpec, ModelSpec

# ---- the seed's training plan (seed 002), used as defaults; every one is a flag of `lsdt moe`
SEED_MODEL = "s7-moe-140m"
SEED_HARDWARE = "a100-40g-sxm"  # the seed's cluster (seed 002, sec. 3-6)
DOMAINS = ("code", "math", "reasoning", "general")  # sec. 3 / 4: experts E0..E3
DATA_MIX = (0.35, 0.25, 0.20, 0.20)  # sec. 3, "Data Mix" (phase-1 token shares)
TRUNK_TOKENS = 50e9  # sec. 3: "Total tokens for trunk training: 50B"
EXPERT_TOKENS = (20e9, 15e9, 12e9, 12e9)  # sec. 4, "Data Per Expert"
TRUNK_GPUS = 8  # sec. 3: 8x A100-40GB
TRUNK_BATCH_SEQS = 512  # sec. 3: 512 sequences x 2048 tokens
GPUS_PER_EXPERT = 4  # sec. 4: 4x A100-40GB per expert
EXPERT_BATCH_SEQS = 256  # sec. 4: 256 x 2048
QA_GPUS = 4  # sec. 6: calibration/QA on 4x A100-40G
CALIBRATION_SAMPLES = 4096  # sec. 5: "4096 representative samples from each domain"
QA_PASSES = 2  # LSDT: one FP32 reference pass + one INT8 pass over the calibration samples
DEFAULT_PRICE_PER_GPU_HOUR = 2.50  # sec. 6: "A100-40G at $2.50/hr"

PRECISION = "bf16"  # trained blocks: 16 B/param (physics.STATE_BYTES_PER_PARAM)
FROZEN_BYTES_PER_PARAM = 4  # frozen fp32 weights under autocast: no gradient, no Adam state
FP32_BYTES = 4
SCALE_BYTES = 4  # one fp32 scale per output row (engine/runtime/seal/quant.py: per-row INT8 PTQ)
ALIGN_BYTES = 32  # seed sec. 8: 32-byte (256-bit AVX2) alignment, stored_bytes = ceil(numel / 32) x 32


def aligned(n_bytes: int) -> int:
    """stored_bytes = ceil(n / 32) x 32 (seed sec. 8)."""
    return -(-n_bytes // ALIGN_BYTES) * ALIGN_BYTES


# --------------------------------------------------------------------------- tensors and components


def block_tensors(spec: ModelSpec) -> list[tuple[str, tuple[int, int]]]:
    """One block's weight matrices, torch [out, in] shapes, runtime names (engine/runtime/model).

    The seed's names: q_proj/k_proj/v_proj/o_proj, ffn.fc1/fc2 (shapes written [in, out])."""
    d, q, kv = spec.d_model, spec.n_head * spec.head_dim, spec.n_kv_head * spec.head_dim
    tensors = [("attn.q.weight", (q, d)), ("attn.k.weight", (kv, d)), ("attn.v.weight", (kv, d)), ("attn.o.weight", (d, q))]
    if spec.ffn == "swiglu":
        tensors.append(("mlp.gate.weight", (spec.d_ff, d)))
    tensors += [("mlp.up.weight", (spec.d_ff, d)), ("mlp.down.weight", (d, spec.d_ff))]
    # One formula lives in counts.py: the per-tensor breakdown must add up to it.
    assert sum(o * i for _, (o, i) in tensors) == attention_params(spec) + mlp_params(spec)
    return tensors


def _tensor_row(name: str, shape: tuple[int, int]) -> dict:
    rows, cols = shape
    numel = rows * cols
    return {
        "tensor": name,
        "shape": [rows, cols],
        "numel": numel,
        "int8_bytes": aligned(numel),
        "scale_bytes": aligned(SCALE_BYTES * rows),
        "stored_bytes": aligned(numel) + aligned(SCALE_BYTES * rows),
        "padding_bytes": aligned(numel) - numel + aligned(SCALE_BYTES * rows) - SCALE_BYTES * rows,
    }


def _component(name: str, tensors: list[tuple[str, tuple[int, int]]]) -> dict:
    rows = [_tensor_row(n, s) for n, s in tensors]
    params = sum(r["numel"] for r in rows)
    return {
        "name": name,
        "params": params,
        "fp32_bytes": FP32_BYTES * params,
        "int8_bytes": sum(r["stored_bytes"] for r in rows),  # int8 weights + fp32 row scales, 32-B aligned
        "tensors": rows,
    }


def components(spec: ModelSpec) -> list[dict]:
    """Embedding (tied or not), LM head (untied only), trunk, each expert, router."""
    block = block_tensors(spec)
    T, E, L = spec.trunk_layers, spec.n_experts, spec.n_layer
    out = [_component("embedding (tied)" if spec.tie_embeddings else "embedding", [("embed.weight", (spec.vocab_size, spec.d_model))])]
    if not spec.tie_embeddings:
        out.append(_component("lm_head", [("lm_head.weight", (spec.vocab_size, spec.d_model))]))
    out.append(_component(f"trunk ({T} layers)", [(f"trunk.{i}.{n}", s) for i in range(T) for n, s in block]))
    for e in range(E):
        domain = DOMAINS[e] if E == len(DOMAINS) else f"expert {e}"
        out.append(_component(f"expert {e} ({domain}, {L - T} layers)",
                              [(f"experts.{e}.{i}.{n}", s) for i in range(L - T) for n, s in block]))
    out.append(_component("router", [("router.gate.weight", (E, spec.d_model))]))
    return out


# --------------------------------------------------------------------------- sub-models


def _dense(spec: ModelSpec, n_layer: int, name: str) -> ModelSpec:
    return spec.with_(name=name, n_layer=n_layer, n_experts=0, experts_per_token=0, trunk_layers=0)


def _head_matmul(spec: ModelSpec) -> int:
    """LM-head matmul weights (V x d); the logits matmul runs whether tied or not (counts.py)."""
    return param_counts(spec).embedding


def _micro_batch(per_gpu_seqs: int, fixed_bytes: float, per_seq_bytes: float, usable: float) -> int:
    """The largest power-of-two micro-batch <= the per-GPU batch that fits (0: not even one)."""
    b = 1 << (max(1, per_gpu_seqs).bit_length() - 1)
    while b >= 1 and fixed_bytes + b * per_seq_bytes > usable:
        b //= 2
    return b


def _gpu_hours(tokens: float, fpt: float, sustained_flops: float) -> float:
    return tokens * fpt / sustained_flops / 3600.0


def _train_memory(fixed: float, per_seq: float, batch_seqs: int, gpus: int, usable: float) -> dict:
    per_gpu = max(1, batch_seqs // gpus)
    micro = _micro_batch(per_gpu, fixed, per_seq, usable)
    return {
        "batch_seqs_per_gpu": per_gpu,
        "micro_batch": micro,
        "grad_accum": math.ceil(per_gpu / micro) if micro else None,
        "state_bytes": fixed,
        "activation_bytes": micro * per_seq if micro else per_seq,
        "memory_per_gpu_bytes": fixed + (micro or 1) * per_seq,
        "fits": micro >= 1,
    }


# --------------------------------------------------------------------------- the sizing


def _check(spec: ModelSpec, expert_tokens, price, mfu, counts_args) -> None:
    if not spec.is_moe or not spec.trunk_layers:
        raise UserError(
            f"model {spec.name}: lsdt moe sizes the two-phase trunk + experts design; accepted: a model with "
            f"n_experts > 0 and trunk_layers > 0 (e.g. {SEED_MODEL}); it has n_experts = {spec.n_experts}, "
            f"trunk_layers = {spec.trunk_layers}", field="model"
        )
    if len(expert_tokens) != spec.n_experts:
        raise UserError(
            f"expert tokens: {len(expert_tokens)} values for {spec.n_experts} experts of model {spec.name}; "
            "accepted: one token count per expert (--expert-tokens A,B,...)", field="expert_tokens"
        )
    if any(not (math.isfinite(t) and t > 0) for t in expert_tokens):
        raise UserError(f"expert tokens = {list(expert_tokens)}; accepted: numbers > 0", field="expert_tokens")
    if price is not None and not (math.isfinite(price) and price >= 0):
        raise UserError(f"price per GPU-hour = {price!r}; accepted: a number >= 0", field="price_per_gpu_hour")
    if not (0 < mfu <= 1):
        raise UserError(f"mfu = {mfu!r}; accepted: a number in (0, 1]", field="mfu")
    for name, value in counts_args.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise UserError(f"{name} = {value!r}; accepted: a number > 0", field=name)


def size_moe(
    model: ModelSpec,
    hardware: HardwareSpec,
    price_per_gpu_hour: float | None = None,
    mfu: float = DEFAULT_ETA_COMPUTE,
    trunk_tokens: float = TRUNK_TOKENS,
    expert_tokens: tuple[float, ...] | list[float] | None = None,
    trunk_gpus: int = TRUNK_GPUS,
    gpus_per_expert: int = GPUS_PER_EXPERT,
    qa_gpus: int = QA_GPUS,
    trunk_batch_seqs: int = TRUNK_BATCH_SEQS,
    expert_batch_seqs: int = EXPERT_BATCH_SEQS,
    calibration_samples: int = CALIBRATION_SAMPLES,
) -> dict:
    """The `lsdt moe --json` object. Price: the argument, else the hardware profile's
    price_per_hour, else the seed's $2.50 (the JSON says which in `price_source`)."""
    expert_tokens = tuple(EXPERT_TOKENS if expert_tokens is None else expert_tokens)
    _check(model, expert_tokens, price_per_gpu_hour, mfu, {
        "trunk tokens": trunk_tokens, "trunk GPUs": trunk_gpus, "GPUs per expert": gpus_per_expert, "QA GPUs": qa_gpus,
        "trunk batch": trunk_batch_seqs, "expert batch": expert_batch_seqs, "calibration samples": calibration_samples,
    })
    price, price_source = _price(price_per_gpu_hour, hardware)
    spec = model
    comps = components(spec)
    counts = param_counts(spec)
    total_params = sum(c["params"] for c in comps)
    assert total_params == counts.total  # the component split is counts.py's total, nothing more
    sustained = hardware.peak_flops * mfu
    usable = hardware.memory_bytes - DEFAULT_RESERVE_BYTES
    T, L = spec.trunk_layers, spec.n_layer
    trunk_spec = _dense(spec, T, f"{spec.name}-trunk")  # embedding + trunk + head: the phase-1 model
    expert_spec = _dense(spec, L - T, f"{spec.name}-expert")  # one expert stack + head
    expert_params = next(c["params"] for c in comps if c["name"].startswith("expert 0"))
    int8_total = sum(c["int8_bytes"] for c in comps)

    phase1 = _phase1_trunk(spec, trunk_spec, trunk_tokens, trunk_gpus, trunk_batch_seqs, sustained, usable)
    phase2 = _phase2_experts(spec, trunk_spec, expert_spec, expert_params, expert_tokens, gpus_per_expert,
                             expert_batch_seqs, sustained, usable)
    phase3 = _phase3_qa(spec, total_params, int8_total, calibration_samples, qa_gpus, sustained, usable)
    phases = [phase1, phase2, phase3]
    total_gpu_hours = sum(p["gpu_hours"] for p in phases)
    result = {
        "model": spec.name,
        "hardware": hardware.name,
        "peak_flops": hardware.peak_flops,
        "memory_bytes": hardware.memory_bytes,
        "mfu": mfu,
        "sustained_flops": sustained,
        "components": [{k: c[k] for k in ("name", "params", "fp32_bytes", "int8_bytes")} for c in comps],
        "total_params": total_params,
        "active_params": counts.active,
        "total_fp32_bytes": FP32_BYTES * total_params,
        "total_int8_bytes": int8_total,
        "phases": phases,
        "total_gpu_hours": total_gpu_hours,
        "wall_hours": sum(p["wall_hours"] for p in phases),
        "peak_gpus": max(p["gpus"] for p in phases),
        "price_per_gpu_hour": price,
        "price_source": price_source,
        "cost_usd": total_gpu_hours * price,
        "layout": layout(spec, comps),
    }
    if not math.isfinite(result["cost_usd"]):  # e.g. --price-per-gpu-hour 1e308 printed "$inf"
        raise UserError(f"price per GPU-hour = {price:g} ({price_source}) makes the cost of {total_gpu_hours:,.3g} GPU-hours "
                        f"overflow; accepted: a price below {sys.float_info.max / total_gpu_hours:.3g}", field="price_per_gpu_hour")
    result["seed_comparison"] = seed_comparison(result, hardware, mfu) if spec.name == SEED_MODEL else []
    return result


def _price(price_per_gpu_hour: float | None, hardware: HardwareSpec) -> tuple[float, str]:
    """$ per GPU-hour and where it comes from: the argument, else the hardware profile's
    price_per_hour, else the seed's $2.50."""
    if price_per_gpu_hour is not None:
        return price_per_gpu_hour, "flag"
    if hardware.price_per_hour is not None:
        return hardware.price_per_hour, f"hardware profile {hardware.name}"
    return DEFAULT_PRICE_PER_GPU_HOUR, "seed 002 sec. 6 (A100-40G at $2.50/hr)"


def _phase1_trunk(spec: ModelSpec, trunk_spec: ModelSpec, tokens: float, gpus: int, batch_seqs: int,
                  sustained_flops: float, usable_bytes: float) -> dict:
    """Phase 1: train embedding + trunk (+ head) on every domain, with the data mix."""
    trained_params = param_counts(trunk_spec).total
    fpt = flops_per_token(trunk_spec)
    memory = _train_memory(trained_params * STATE_BYTES_PER_PARAM[PRECISION] + autocast_copy_bytes(trunk_spec),
                           activation_bytes_per_token(trunk_spec) * spec.seq_len, batch_seqs, gpus, usable_bytes)
    gpu_hours = _gpu_hours(tokens, fpt, sustained_flops)
    seed_domains = spec.n_experts == len(DOMAINS)
    return {
        "name": "phase 1: trunk", "gpus": gpus, "tokens": tokens, "flops_per_token": fpt,
        "trained_params": trained_params, "gpu_hours": gpu_hours, "wall_hours": gpu_hours / gpus,
        "data_mix": dict(zip(DOMAINS, DATA_MIX)) if seed_domains else None,
        "domain_tokens": {d: f * tokens for d, f in zip(DOMAINS, DATA_MIX)} if seed_domains else None,
        **memory,
    }


def _phase2_experts(spec: ModelSpec, trunk_spec: ModelSpec, expert_spec: ModelSpec, expert_params: int,
                    expert_tokens: tuple[float, ...], gpus_per_expert: int, batch_seqs: int,
                    sustained_flops: float, usable_bytes: float) -> dict:
    """Phase 2: the trunk frozen, each expert trained on its domain, the experts in parallel pools."""
    head = _head_matmul(spec)
    # Per token: the trunk's forward (a third of its training FLOPs, head excluded) + the expert
    # stack's training FLOPs less the frozen head's weight gradient (2 x V x d).
    fpt_trunk_fwd = (flops_per_token(trunk_spec) - 6 * head) / 3
    fpt = fpt_trunk_fwd + flops_per_token(expert_spec) - 2 * head
    frozen_params = param_counts(trunk_spec).total
    # + bf16 autocast copies of every matmul weight on the path (trunk, expert, head): the frozen
    # trunk's copies too, for its forward (the head's for the backward into the expert).
    copies = autocast_copy_bytes(trunk_spec) + autocast_copy_bytes(expert_spec) - AUTOCAST_COPY_BYTES_PER_PARAM * head  # head once
    memory = _train_memory(frozen_params * FROZEN_BYTES_PER_PARAM + expert_params * STATE_BYTES_PER_PARAM[PRECISION] + copies,
                           activation_bytes_per_token(expert_spec) * spec.seq_len, batch_seqs, gpus_per_expert, usable_bytes)
    experts = []
    for e, tokens in enumerate(expert_tokens):
        gh = _gpu_hours(tokens, fpt, sustained_flops)
        experts.append({"expert": e, "domain": DOMAINS[e] if spec.n_experts == len(DOMAINS) else f"expert {e}",
                        "tokens": tokens, "gpus": gpus_per_expert, "gpu_hours": gh, "wall_hours": gh / gpus_per_expert})
    return {
        "name": "phase 2: experts (trunk frozen, in parallel)", "gpus": gpus_per_expert * spec.n_experts,
        "tokens": sum(expert_tokens), "flops_per_token": fpt, "trained_params": expert_params,
        "gpu_hours": sum(x["gpu_hours"] for x in experts), "wall_hours": max(x["wall_hours"] for x in experts),
        "experts": experts, **memory,
    }


def _phase3_qa(spec: ModelSpec, total_params: int, int8_total_bytes: int, calibration_samples: int, qa_gpus: int,
               sustained_flops: float, usable_bytes: float) -> dict:
    """Phase 3: calibration + QA: forward passes (1/3 of training FLOPs) of the active path, FP32 and INT8."""
    qa_tokens = calibration_samples * spec.n_experts * spec.seq_len * QA_PASSES
    fpt = flops_per_token(spec) / 3
    gpu_hours = _gpu_hours(qa_tokens, fpt, sustained_flops)
    memory = total_params * FP32_BYTES + int8_total_bytes + activation_bytes_per_token(spec) * spec.seq_len
    return {
        "name": "phase 3: calibration + QA", "gpus": qa_gpus, "tokens": qa_tokens, "flops_per_token": fpt,
        "trained_params": 0, "gpu_hours": gpu_hours, "wall_hours": gpu_hours / qa_gpus,
        "memory_per_gpu_bytes": memory, "fits": memory <= usable_bytes,
        "note": "FP32 + INT8 weights + one sequence's training-activation bound as the forward working set",
    }


def layout(spec: ModelSpec, comps: list[dict] | None = None) -> dict:
    """The 32-byte-aligned INT8 layout: one expert layer tensor by tensor, then every component."""
    comps = comps or components(spec)
    layer = [_tensor_row(n, s) for n, s in block_tensors(spec)]
    return {
        "alignment_bytes": ALIGN_BYTES,
        "scale_bytes_per_row": SCALE_BYTES,
        "expert_layer": layer,
        "expert_layer_bytes": sum(r["stored_bytes"] for r in layer),
        "expert_layers": spec.n_layer - spec.trunk_layers,
        "artifacts": [
            {"name": c["name"], "tensors": len(c["tensors"]), "params": c["params"],
             "int8_bytes": sum(r["int8_bytes"] for r in c["tensors"]),
             "scale_bytes": sum(r["scale_bytes"] for r in c["tensors"]),
             "padding_bytes": sum(r["padding_bytes"] for r in c["tensors"]),
             "stored_bytes": c["int8_bytes"]}
            for c in comps
        ],
        "total_stored_bytes": sum(c["int8_bytes"] for c in comps),
        "note": "tensor data only; the .s7l header (engine/runtime/seal/s7l.py) adds its own aligned bytes",
    }


# --------------------------------------------------------------------------- the seed's own figures

# Seed 002's numbers as printed (MB = 1e6 bytes; the seed's layout mixes KB = 1e3 and KiB).
SEED_FIGURES = {
    "embedding_params": 18.9e6, "trunk_params": 2e6, "expert_params": 28e6, "router_params_max": 0.1e6,
    "total_params": 133e6, "total_fp32_bytes": 532e6, "int8_bytes": 133e6,
    "phase1_model_bytes": 83e6, "phase1_gpu_hours": 12_000, "phase1_gpus": 8,
    "phase2_expert_gpu_hours": (600, 450, 360, 360), "phase2_gpu_hours": 1_770, "phase2_wall_hours": 150,
    "qa_gpu_hours": 200, "total_gpu_hours": 14_000, "wall_days": 21, "cost_usd": 35_000,
    "expert_layer_bytes": 3136e3, "expert_8_layers_bytes": 24.8e6, "experts_4_bytes": 99.2e6,
    "trunk_int8_bytes": 24e6, "embedding_int8_bytes": 18e6, "int8_padded_total_bytes": 141e6,
}


def _item(item: str, unit: str, seed: float, computed: float, note: str = "") -> dict:
    return {"item": item, "unit": unit, "seed": seed, "computed": computed,
            "ratio": computed / seed if seed else None, "note": note}


def seed_comparison(r: dict, hardware: HardwareSpec, mfu: float) -> list[dict]:
    """Seed 002's figures beside LSDT's, with the ratio computed / seed. Two kinds: the seed against
    its own shapes, and the seed against its own arithmetic (6ND on the seed's own model sizes)."""
    S = SEED_FIGURES
    comp = {c["name"].split(" (")[0]: c for c in r["components"]}
    expert0 = next(c for c in r["components"] if c["name"].startswith("expert 0"))
    p1, p2, p3 = r["phases"]
    lay = r["layout"]
    sustained = hardware.peak_flops * mfu
    # The seed's own model sizes through 6ND (Kaplan et al. 2020: C = 6 N D), at this hardware and MFU.
    seed_p1_params = S["phase1_model_bytes"] / FP32_BYTES
    seed_p1_6nd = 6 * seed_p1_params * TRUNK_TOKENS / sustained / 3600
    seed_p2_6nd = sum(6 * S["expert_params"] * t / sustained / 3600 for t in EXPERT_TOKENS)
    seed_wall_own = S["phase1_gpu_hours"] / S["phase1_gpus"] + S["phase2_wall_hours"] + S["qa_gpu_hours"] / QA_GPUS
    hw = f"{hardware.name} at MFU {mfu:g}"
    items = [
        _item("embedding params (tied)", "params", S["embedding_params"], comp["embedding"]["params"]),
        _item("trunk params (6 layers)", "params", S["trunk_params"], comp["trunk"]["params"],
              "6 blocks of 4 x 512^2 attention + 2 x 512 x 2048 MLP = 3.15M each: the seed's ~2M is not its shapes"),
        _item("params per expert (8 layers)", "params", S["expert_params"], expert0["params"]),
        _item("router params", "params", S["router_params_max"], comp["router"]["params"], "the seed gives an upper bound (<0.1M)"),
        _item("total params", "params", S["total_params"], r["total_params"]),
        _item("total FP32 bytes", "bytes", S["total_fp32_bytes"], r["total_fp32_bytes"]),
        _item("INT8 inference bytes", "bytes", S["int8_bytes"], r["total_int8_bytes"], "computed includes fp32 row scales and 32-B alignment"),
        _item("phase-1 model (trunk + embedding, FP32)", "bytes", S["phase1_model_bytes"],
              FP32_BYTES * (comp["embedding"]["params"] + comp["trunk"]["params"])),
        _item("phase-1 GPU-hours", "GPU-h", S["phase1_gpu_hours"], p1["gpu_hours"], f"50B tokens, computed shapes, {hw}"),
        _item("phase-1 GPU-hours by 6ND on the seed's own 83 MB model", "GPU-h", S["phase1_gpu_hours"], seed_p1_6nd,
              "the seed's 12,000 contradicts its own model size and token count"),
        _item("phase-2 GPU-hours", "GPU-h", S["phase2_gpu_hours"], p2["gpu_hours"], hw),
        _item("phase-2 GPU-hours by 6ND on the seed's own 28M experts", "GPU-h", S["phase2_gpu_hours"], seed_p2_6nd),
        _item("phase-2 wall-clock (experts in parallel)", "hours", S["phase2_wall_hours"], p2["wall_hours"]),
        _item("calibration/QA GPU-hours", "GPU-h", S["qa_gpu_hours"], p3["gpu_hours"],
              f"{CALIBRATION_SAMPLES} samples x 4 domains x 2048 tokens, FP32 + INT8 forward"),
        _item("total GPU-hours", "GPU-h", S["total_gpu_hours"], r["total_gpu_hours"], "the seed's rows sum to 13,970"),
        _item("wall-clock", "hours", S["wall_days"] * 24, r["wall_hours"], "phases run one after another"),
        _item("wall-clock from the seed's own phase figures", "hours", S["wall_days"] * 24, seed_wall_own,
              "12,000 GPU-h / 8 GPUs + 150 h + 200 GPU-h / 4 GPUs: the seed's ~21 days contradicts its own table"),
        _item("cloud cost", "USD", S["cost_usd"], r["cost_usd"], f"at ${r['price_per_gpu_hour']:g}/GPU-h"),
        _item("INT8 bytes per expert layer (aligned)", "bytes", S["expert_layer_bytes"], lay["expert_layer_bytes"],
              "the seed's table mixes KB (262KB = 262,144 B) and KiB (1024KB = 1,048,576 B)"),
        _item("INT8 bytes per expert (8 layers)", "bytes", S["expert_8_layers_bytes"], expert0["int8_bytes"]),
        _item("INT8 bytes, 4 experts", "bytes", S["experts_4_bytes"],
              sum(c["int8_bytes"] for c in r["components"] if c["name"].startswith("expert"))),
        _item("INT8 bytes, trunk", "bytes", S["trunk_int8_bytes"], comp["trunk"]["int8_bytes"]),
        _item("INT8 bytes, embedding", "bytes", S["embedding_int8_bytes"], comp["embedding"]["int8_bytes"]),
        _item("INT8 total (AVX2-padded)", "bytes", S["int8_padded_total_bytes"], lay["total_stored_bytes"]),
    ]
    return items
