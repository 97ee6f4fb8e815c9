"""Single-GPU budget planner: the best nanochat-style model for one GPU in a time window.

    plan_bands(hardware, hours=24, depths=(12, 14, 16, 18, 20), ...) -> BandsPlan   (.to_dict(): `lsdt bands --json`)

Per depth (shapes from engine.sizing.shapes.band_spec, counts from engine.sizing.counts): parameters,
FLOPs per token, memory of a device batch (weights, gradients, Adam, activations), the largest device
batch that fits at each sequence length, tokens/s (profile efficiency, or measured by a probe),
tokens in the window, tokens per parameter and an A/B/C band verdict. Then the window's FLOP
envelope, its pretrain/SFT split, a sequence-length curriculum, a recommendation with a fallback,
the measured map of a probe and the extrapolated loss of a pilot run.

Memory model (why not physics.activation_bytes_per_sequence): Korthikanti et al. 2022, eq. 1
(34 s h + 5 a s^2 bytes per layer) describes Megatron's GPT with dropout and materialised attention
scores. The LSDT runtime's band model has no dropout and runs SDPA (flash / memory-efficient
kernels keep no s x s score matrix, only a per-row log-sum-exp), so that rule overstates a d12 layer
at 2048 tokens by ~2.7x. `activation_bytes_per_token` counts what eager PyTorch autograd keeps for
the runtime's GPT instead (see its docstring; a test checks it against autograd's saved tensors),
plus the LM head and the cross-entropy, which Korthikanti leaves out and which dominate at a 65,536
vocabulary, plus the bf16 weight copies autocast keeps. torch.compile fuses some of it away, so for
a compiled run the rule is an upper estimate; a probe's measured peak VRAM is the truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import UserError
from engine.sizing import curriculum as curr
from engine.sizing.bands_result import (BandShape, BandsPlan, Choice, Curriculum, CurriculumStage, DepthRow, MeasuredRow,
                                        MemoryBreakdown, SeqFit, Split)
from engine.sizing.counts import flops_per_token, param_counts
from engine.sizing.design import DEFAULT_ETA_COMPUTE
from engine.sizing.physics import STATE_BYTES_PER_PARAM
from engine.sizing.shapes import DEFAULT_HEAD_DIM, DEFAULT_VOCAB, DEFAULT_WINDOW_PATTERN, band_spec
from engine.specs import GOAL_DEFAULTS, HardwareSpec, ModelSpec, read_json

if TYPE_CHECKING:
    from engine.sizing.pilot import PilotProjection  # imported when a pilot is given (its reader is not light)

DEFAULT_DEPTHS = (12, 14, 16, 18, 20)  # the seed's M0 map (seed 001, "Measurement Plan")
DEFAULT_HOURS = 24.0
DEFAULT_HARDWARE = "rtx4090"  # the seed's target: one RTX 4090 in 24 h
DEFAULT_SFT_FRACTION = 0.15  # seed 001: 80-90% pretraining, 10-20% SFT + eval; issue #4: default 85/15
# nanochat base_train.py: total_batch_size = 524288 tokens (2^19) per optimizer step.
DEFAULT_GLOBAL_BATCH_TOKENS = 524_288
# Compute-optimal tokens per parameter: Chinchilla ~20 (Hoffmann et al. 2022); nanochat's runs sit
# at 8-12 (issue #4). A depth under the lower bound is undertrained in the window.
CHINCHILLA_TOKENS_PER_PARAM = GOAL_DEFAULTS["tokens_per_param"]
NANOCHAT_TOKENS_PER_PARAM = (8.0, 12.0)
# LSDT's VRAM margin for the CUDA context (~0.5 GB with cuBLAS loaded), cuBLAS workspaces and
# caching-allocator fragmentation. A policy, not a measured constant: a probe supersedes it.
DEFAULT_RESERVE_BYTES = 2e9
PRECISION = "bf16"  # bf16 autocast + Adam: 16 B/param (physics.STATE_BYTES_PER_PARAM, ZeRO sec. 3.1)

BF16 = 2  # bytes per saved activation value
FP32 = 4
INT64 = 8
# Loss peak per token per vocabulary entry, at the start of the cross-entropy backward on
# fp32-upcast logits: the fp32 log-softmax kept from the forward (4) + its incoming gradient (4) +
# the gradient it produces (4). The forward peak (bf16 logits 2 + fp32 copy 4 + log-softmax 4 = 10)
# is lower. LSDT's accounting of eager F.cross_entropy(logits.float(), targets).
LOSS_BYTES_PER_TOKEN_PER_VOCAB = 12

BANDS = {
    "A": ("safe", "d12-d14: guaranteed fit and high throughput"),
    "B": ("target", "d16-d18: the likely best quality/compute trade-off"),
    "C": ("stretch", "d20+: pushes the ceiling; may be too slow"),
}


def band_of(depth: int) -> str:
    """Seed 001's bands: A (safe) d12-d14, B (target) d16-d18, C (stretch) d20+.

    The seed leaves gaps; LSDT closes them: depth <= 14 is A, 15-19 is B, >= 20 is C.
    """
    return "A" if depth <= 14 else "B" if depth <= 19 else "C"


# --------------------------------------------------------------------------- memory


def activation_bytes_per_token(spec: ModelSpec) -> float:
    """Bytes eager autograd keeps per token for one training step of LSDT's runtime GPT
    (engine/runtime/model: fp32 residual stream, separate q/k/v/up/gate linears, SDPA, bf16 autocast).

    Per layer (h = d_model, q = n_head x head_dim, kv = n_kv_head x head_dim, d_ff):
      attention: the fp32 norm input (4 h) + the bf16 cast of the norm output that each of q, k, v
                 saves (autocast casts once per projection: 3 x 2 h) + Q, K, V (2 q + 4 kv) + the SDPA
                 output and its [B, T, q] re-layout that the o-projection saves (2 x 2 q) + the fp32
                 log-sum-exp (4 per head) — no s x s scores (flash / memory-efficient SDPA), no dropout;
      MLP:       the fp32 norm input (4 h) + the bf16 input of up (and of gate: 2 h each) + pre- and
                 post-activation d_ff values (GELU / ReLU^2: 2 x 2 d_ff; SwiGLU: gate, up, SiLU, product
                 = 4 x 2 d_ff).
    (Each RMSNorm also keeps one fp32 rsqrt per token.) MHA + ReLU^2 4h: 42 h + 8 + 4 a per layer, against Korthikanti's 34 h + 5 a s (Megatron: bf16 residual, fused
    QKV, dropout masks, materialised scores). Then the fp32 final-norm input and the bf16 LM-head input
    (6 h + 4), the int64 token ids and targets (16) and the loss peak (LOSS_BYTES_PER_TOKEN_PER_VOCAB x V). Checked against autograd's saved
    tensors in tests/sizing/test_bands_memory.py. Not counted: RoPE's cos/sin slices (4 x seq x
    head_dim / 2 bf16 per layer, per step rather than per token: ~1 MB per layer at 2048).
    """
    h = spec.d_model
    q = spec.n_head * spec.head_dim
    kv = spec.n_kv_head * spec.head_dim
    swiglu = spec.ffn == "swiglu"
    norm = FP32 * h + FP32  # the fp32 input and the per-token rsqrt each RMSNorm keeps
    attention = norm + BF16 * 3 * h + BF16 * (q + 2 * kv) + BF16 * 2 * q + FP32 * spec.n_head
    mlp = norm + BF16 * h * (2 if swiglu else 1) + BF16 * (4 if swiglu else 2) * spec.d_ff
    head = norm + BF16 * h + 2 * INT64  # + the int64 token ids (embedding backward) and targets (loss)
    return spec.n_layer * (attention + mlp) + head + LOSS_BYTES_PER_TOKEN_PER_VOCAB * spec.vocab_size


# The 16 B/param split as the LSDT runtime holds it (fp32 master weights under bf16 autocast, fp32
# gradients, fp32 Adam m and v): 4 + 4 + 8. Same total as ZeRO's bf16 accounting (2 + 2 + 12).
STATE_SPLIT_BYTES_PER_PARAM = {"weights_bytes": 4, "grads_bytes": 4, "adam_bytes": 8}
assert sum(STATE_SPLIT_BYTES_PER_PARAM.values()) == STATE_BYTES_PER_PARAM["bf16"]


# bf16 autocast casts each fp32 weight to a bf16 copy that the matmul saves for its backward, so the
# copies live through the step: 2 B per matmul weight (the embedding lookup is not autocast, no copy).
# Checked against autograd's saved tensors of the runtime GPT (tests/sizing/test_bands_memory.py).
AUTOCAST_COPY_BYTES_PER_PARAM = 2


def training_state_bytes(spec: ModelSpec) -> float:
    """Weights + gradients + Adam moments: params x 16 B (bf16 mixed precision, physics.py)."""
    return param_counts(spec).total * STATE_BYTES_PER_PARAM[PRECISION]


def autocast_copy_bytes(spec: ModelSpec) -> float:
    """The bf16 weight copies autocast keeps for the backward: 2 B x matmul weights."""
    return param_counts(spec).matmul_total * AUTOCAST_COPY_BYTES_PER_PARAM


def fixed_step_bytes(spec: ModelSpec) -> float:
    """What a training step holds whatever the batch: state + autocast weight copies."""
    return training_state_bytes(spec) + autocast_copy_bytes(spec)


def max_device_batch(spec: ModelSpec, seq_len: int, usable_bytes: float) -> int:
    """The largest number of sequences of `seq_len` whose step fits in `usable_bytes` (0: none)."""
    free = usable_bytes - fixed_step_bytes(spec)
    per_seq = activation_bytes_per_token(spec) * seq_len
    return max(0, math.floor(free / per_seq))


def device_batch_and_accum(max_batch: int, seq_len: int, global_batch_tokens: int) -> tuple[int, int]:
    """nanochat's choice: the largest power-of-two device batch <= max that divides the global batch
    (base_train.py asserts total_batch_size % (device_batch x seq) == 0), and the gradient-accumulation
    steps that make up the global batch. (0, 0) when nothing fits."""
    if max_batch < 1:
        return 0, 0
    per_step_seqs = max(1, global_batch_tokens // seq_len)
    b = 1 << (min(max_batch, per_step_seqs).bit_length() - 1)
    while per_step_seqs % b:
        b //= 2
    return b, math.ceil(per_step_seqs / b)


# --------------------------------------------------------------------------- probe file

_PROBE_STATUSES = ("ok", "oom", "error")


class ProbeFile(dict):
    """A checked `lsdt probe` document: check_probe()/read_probe() output, {"device", "hardware",
    "results": [rows]}. Its type says it was checked, so plan_bands (and every reader after the
    first) takes it as it is instead of checking the same file again."""


def read_probe(path: str | Path) -> dict:
    """Load and check a `lsdt probe` JSON file; one-line UserError naming the file and key otherwise.

    Format: {"device": str, "hardware": profile name | null, "results": [{"depth", "seq_len",
    "device_batch", "tok_per_s", "step_time_s", "peak_vram_bytes", "mfu", "status"}, ...]};
    extra keys (e.g. "grad_accum") are kept. Non-"ok" results may carry nulls.
    """
    data = read_json(Path(path))
    return check_probe(data, str(path))


def _probe_number(where: str, key: str, value: Any, *, integer: bool, required: bool) -> Any:
    if value is None and not required:
        return None
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if integer:
        ok = ok and float(value).is_integer() and value >= 1
    else:
        ok = ok and value >= 0
    if not ok:
        accepted = "an integer >= 1" if integer else "a finite number >= 0"
        raise UserError(f"{where}: key '{key}' = {value!r}; accepted: {accepted}{'' if required else ' or null'}")
    return int(value) if integer else float(value)


def check_probe(data: Any, where: str = "probe") -> dict:
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a JSON object with 'device', 'hardware' and 'results'")
    if not isinstance(data.get("results"), list):
        raise UserError(f"{where}: key 'results' missing or not a list; accepted: a list of probe results")
    hw = data.get("hardware")
    if hw is not None and (not isinstance(hw, str) or not hw):
        raise UserError(f"{where}: key 'hardware' = {hw!r}; accepted: a profile name or null")
    results = []
    for i, r in enumerate(data["results"]):
        at = f"{where}: results[{i}]"
        if not isinstance(r, dict):
            raise UserError(f"{at}: expected an object")
        status = r.get("status")
        if status not in _PROBE_STATUSES:
            raise UserError(f"{at}: key 'status' = {status!r}; accepted: {' | '.join(_PROBE_STATUSES)}")
        ok = status == "ok"
        row = dict(r)
        for key in ("depth", "seq_len", "device_batch"):
            if key not in r and (ok or key != "device_batch"):
                raise UserError(f"{at}: missing key '{key}'")
            # a failed config ("oom" / "error") may have no batch that ran
            row[key] = _probe_number(at, key, r.get(key), integer=True, required=ok or key != "device_batch")
        row["tok_per_s"] = _probe_number(at, "tok_per_s", r.get("tok_per_s"), integer=False, required=ok)
        if ok and row["tok_per_s"] <= 0:
            raise UserError(f"{at}: key 'tok_per_s' = {r.get('tok_per_s')!r}; accepted: a number > 0 when status is ok")
        for key in ("step_time_s", "peak_vram_bytes", "mfu"):
            row[key] = _probe_number(at, key, r.get(key), integer=False, required=False)
        if r.get("grad_accum") is not None:
            row["grad_accum"] = _probe_number(at, "grad_accum", r["grad_accum"], integer=True, required=True)
        results.append(row)
    return ProbeFile(device=str(data.get("device") or "unknown"), hardware=hw, results=results)


def measured_map(probe: dict, window_s: float, global_batch_tokens: int) -> tuple[MeasuredRow, ...]:
    """Seed M0's table: each probe result with its gradient-accumulation steps and window capacity."""
    out = []
    for r in sorted(probe["results"], key=lambda r: (r["depth"], r["seq_len"], r["device_batch"] or 0)):
        ok = r["status"] == "ok"
        accum = r.get("grad_accum")
        if accum is None and ok:
            accum = math.ceil(global_batch_tokens / (r["device_batch"] * r["seq_len"]))
        out.append(MeasuredRow(
            depth=r["depth"], seq_len=r["seq_len"], device_batch=r["device_batch"], grad_accum=accum,
            tok_per_s=r["tok_per_s"], step_time_s=r["step_time_s"], peak_vram_bytes=r["peak_vram_bytes"],
            mfu=r["mfu"], status=r["status"], tokens_in_window=r["tok_per_s"] * window_s if ok else None,
        ))
    return tuple(out)


def _best_measured(probe: dict | None) -> dict[tuple[int, int], dict]:
    """(depth, seq_len) -> the fastest "ok" probe result there."""
    best: dict[tuple[int, int], dict] = {}
    for r in (probe or {}).get("results", []):
        if r["status"] != "ok":
            continue
        key = (r["depth"], r["seq_len"])
        if key not in best or r["tok_per_s"] > best[key]["tok_per_s"]:
            best[key] = r
    return best


# --------------------------------------------------------------------------- the plan


def _check_inputs(hours: float, depths, mfu: float, sft_fraction: float, global_batch_tokens: int,
                  seq_len: int, reserve_bytes: float, min_tokens_per_param: float) -> list[int]:
    if not (isinstance(hours, (int, float)) and math.isfinite(hours) and hours > 0):
        raise UserError(f"hours = {hours!r}; accepted: a number > 0")
    if not (0 < mfu <= 1):
        raise UserError(f"mfu = {mfu!r}; accepted: a number in (0, 1]")
    if not (0 <= sft_fraction < 1):
        raise UserError(f"sft fraction = {sft_fraction!r}; accepted: a number in [0, 1)")
    if not depths or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in depths):
        raise UserError(f"depths = {depths!r}; accepted: integers >= 1, e.g. 12,14,16,18,20")
    if seq_len < 1:
        raise UserError(f"seq = {seq_len!r}; accepted: an integer >= 1")
    if reserve_bytes < 0:
        raise UserError(f"vram reserve = {reserve_bytes!r}; accepted: a number >= 0")
    if min_tokens_per_param <= 0:
        raise UserError(f"min tokens per param = {min_tokens_per_param!r}; accepted: a number > 0")
    return sorted(set(depths))


def _checked_probe(probe: dict | None, hardware: HardwareSpec) -> ProbeFile | None:
    """The probe, checked once (read_probe's output already is), measured on the plan's hardware."""
    if probe is None:
        return None
    probe = probe if isinstance(probe, ProbeFile) else check_probe(probe)
    if probe.get("hardware") and probe["hardware"] != hardware.name:
        raise UserError(
            f"probe was measured on hardware '{probe['hardware']}' but the plan is for '{hardware.name}'; "
            f"accepted: --hardware {probe['hardware']} (or omit --hardware to use the probe's)", field="probe"
        )
    return probe


def _usable_bytes(hardware: HardwareSpec, reserve_bytes: float) -> float:
    usable = hardware.memory_bytes - reserve_bytes
    if usable <= 0:  # nothing left for the model (a huge reserve also overflowed the batch count)
        raise UserError(
            f"vram reserve = {reserve_bytes / 1e9:g} GB leaves nothing of {hardware.name}'s {hardware.memory_bytes / 1e9:g} GB; "
            f"accepted: a reserve below {hardware.memory_bytes / 1e9:g} GB"
        )
    return usable


@dataclass(frozen=True)
class _Window:
    """What every depth is sized against: the window, the device and the batch."""

    window_s: float
    pretrain_fraction: float
    sustained_flops: float  # peak x MFU: the estimate where no probe measured
    usable_bytes: float
    global_batch_tokens: int
    measured: dict[tuple[int, int], dict]  # _best_measured(probe)


def _seq_fit(depth: int, spec: ModelSpec, seq_len: int, w: _Window) -> SeqFit:
    """One depth at one sequence length (a sliding window does not shorten a curriculum stage)."""
    at = spec.with_(seq_len=seq_len, short_window=0)
    fpt = flops_per_token(at)
    act_per_seq = activation_bytes_per_token(at) * seq_len
    max_b = max_device_batch(at, seq_len, w.usable_bytes)
    b, accum = device_batch_and_accum(max_b, seq_len, w.global_batch_tokens)
    m = w.measured.get((depth, seq_len))
    rate = m["tok_per_s"] if m else w.sustained_flops / fpt
    return SeqFit(
        seq_len=seq_len, flops_per_token=fpt, activation_bytes_per_seq=act_per_seq, max_device_batch=max_b,
        device_batch=b, grad_accum=accum, memory_bytes=fixed_step_bytes(at) + b * act_per_seq if b else None,
        tokens_per_s=rate, tokens_per_s_source="probe" if m else "estimate",
        measured_peak_vram_bytes=m["peak_vram_bytes"] if m else None, tokens_in_window=rate * w.window_s,
    )


def _depth_row(depth: int, spec: ModelSpec, seqs: list[int], w: _Window) -> DepthRow:
    """One depth of the table: its fit at the main sequence length (spec.seq_len), and at each of `seqs`."""
    counts = param_counts(spec)
    by_seq = tuple(_seq_fit(depth, spec, s, w) for s in seqs)
    main = next(x for x in by_seq if x.seq_len == spec.seq_len)
    pretrain_tokens = main.tokens_in_window * w.pretrain_fraction
    state = {k: v * counts.total for k, v in STATE_SPLIT_BYTES_PER_PARAM.items()}
    return DepthRow(
        depth=depth, d_model=spec.d_model, n_head=spec.n_head, n_kv_head=spec.n_kv_head, head_dim=spec.head_dim,
        params=counts.total, matmul_params=counts.matmul_total, flops_per_token=main.flops_per_token,
        seq_len=spec.seq_len, state_bytes=training_state_bytes(spec), fixed_bytes=fixed_step_bytes(spec),
        activation_bytes_per_seq=main.activation_bytes_per_seq, max_device_batch=main.max_device_batch,
        device_batch=main.device_batch, grad_accum=main.grad_accum, memory_bytes=main.memory_bytes,
        memory_breakdown=MemoryBreakdown(**state, autocast_copies_bytes=autocast_copy_bytes(spec),
                                         activations_bytes=main.device_batch * main.activation_bytes_per_seq),
        fits=main.fits, tokens_per_s=main.tokens_per_s, tokens_per_s_source=main.tokens_per_s_source,
        step_time_s=w.global_batch_tokens / main.tokens_per_s, tokens_in_window=main.tokens_in_window,
        pretrain_tokens=pretrain_tokens, tokens_per_param=pretrain_tokens / counts.total,
        chinchilla_tokens=CHINCHILLA_TOKENS_PER_PARAM * counts.total, band=band_of(depth), by_seq=by_seq,
    )


def _verdict(row: DepthRow, deeper: DepthRow | None, min_ratio: float, usable: float) -> str:
    """One line per depth. `deeper` is the next deeper row: "room for a deeper model" is said only
    when that depth fits and is not undertrained (it read so beside a recommendation that called
    the deeper depth undertrained)."""
    band = row.band
    name = BANDS[band][0]
    if not row.fits:
        return (f"{band} ({name}): does not fit: weights + grads + Adam + bf16 copies {row.fixed_bytes / 1e9:.1f} GB + one "
                f"{row.seq_len}-token sequence {row.activation_bytes_per_seq / 1e9:.1f} GB > {usable / 1e9:.1f} GB usable")
    ratio = row.tokens_per_param
    lo, hi = NANOCHAT_TOKENS_PER_PARAM
    if ratio < min_ratio:
        data = f"{ratio:.1f} tokens/param, under {min_ratio:g}: undertrained in the window"
    elif ratio <= hi:
        data = f"{ratio:.1f} tokens/param, inside nanochat's {lo:g}-{hi:g}"
    else:
        data = f"{ratio:.1f} tokens/param, above nanochat's {hi:g} (Chinchilla ~{CHINCHILLA_TOKENS_PER_PARAM:g})"
        if deeper is not None and deeper.fits and deeper.tokens_per_param >= min_ratio:
            data += ": room for a deeper model"
        elif deeper is not None:
            data += f"; d{deeper.depth} would be " + ("out of memory" if not deeper.fits else "undertrained")
    return f"{band} ({name}): {row.batch_text()}; {data}"


def _with_verdicts(rows: list[DepthRow], min_ratio: float, usable: float) -> tuple[DepthRow, ...]:
    """Each row with its verdict, which compares it with the next deeper row (rows are by depth)."""
    return tuple(replace(row, verdict=_verdict(row, deeper, min_ratio, usable))
                 for row, deeper in zip(rows, [*rows[1:], None]))


def _pick(rows: tuple[DepthRow, ...], min_ratio: float) -> tuple[Choice | None, Choice | None]:
    """Recommended: the deepest depth that fits and reaches `min_ratio` tokens/param (the most model
    the window can still feed); fallback: the next shallower depth that fits (more tokens/param, more
    memory headroom). With no depth reaching the ratio, the one with the most tokens/param."""
    fitting = [r for r in rows if r.fits]
    if not fitting:
        return None, None
    fed = [r for r in fitting if r.tokens_per_param >= min_ratio]
    if fed:
        best = fed[-1]
        why = (f"d{best.depth} is the deepest depth that fits and still sees {best.tokens_per_param:.1f} "
               f"tokens/param (>= {min_ratio:g}) in the pretraining split")
        deeper = [r for r in rows if r.depth > best.depth]
        if deeper:
            nxt = deeper[0]
            why += (f"; d{nxt.depth} " + ("does not fit" if not nxt.fits else
                    f"would see only {nxt.tokens_per_param:.1f} tokens/param"))
    else:
        best = max(fitting, key=lambda r: r.tokens_per_param)
        why = (f"no depth reaches {min_ratio:g} tokens/param in this window; d{best.depth} gets the most "
               f"({best.tokens_per_param:.1f}) — lengthen the window or try shallower depths")
    rec = Choice(best.depth, best.band, best.tokens_per_param, why)
    shallower = [r for r in fitting if r.depth < best.depth]
    if not shallower:
        return rec, None
    fb = shallower[-1]
    return rec, Choice(fb.depth, fb.band, fb.tokens_per_param,
                       f"the next shallower depth that fits; {fb.tokens_per_param:.1f} tokens/param and "
                       f"{fb.tokens_per_s / best.tokens_per_s:.2f}x the throughput of d{best.depth} if the target "
                       "runs slow or out of memory")


def _split(window_s: float, sft_fraction: float, envelope_flop: float) -> Split:
    """The window's pretrain / SFT + eval split, before a depth is chosen (no token figures yet)."""
    pretrain = 1.0 - sft_fraction
    return Split(pretrain_fraction=pretrain, sft_fraction=sft_fraction, pretrain_s=window_s * pretrain,
                 sft_s=window_s * sft_fraction, pretrain_flop=envelope_flop * pretrain, sft_flop=envelope_flop * sft_fraction)


def _curriculum(row: DepthRow, stages: list[tuple[int, float]], pretrain_s: float) -> Curriculum:
    """The recommended depth's pretraining over the sequence stages, each at its own batch and rate."""
    by = {x.seq_len: x for x in row.by_seq}
    plan = curr.plan_curriculum(stages, pretrain_s, lambda s: by[s].tokens_per_s, lambda s: by[s].flops_per_token)
    out = tuple(CurriculumStage(**stage, device_batch=by[stage["seq_len"]].device_batch,
                                grad_accum=by[stage["seq_len"]].grad_accum, fits=by[stage["seq_len"]].fits)
                for stage in plan["stages"])
    return Curriculum(stages=out, time_s=plan["time_s"], tokens=plan["tokens"], flop=plan["flop"], depth=row.depth)


def _project_pilot(pilot: list[dict], metric: str, axis: str, split: Split) -> PilotProjection:
    """The pilot's loss projected to the end of the pretraining split (in time or in tokens)."""
    from engine.sizing.pilot import pick_axis, project_pilot

    axis = pick_axis(pilot, metric) if axis == "auto" else axis
    target = split.pretrain_s if axis == "time" else split.pretrain_tokens
    return project_pilot(pilot, target, metric=metric, axis=axis)


def plan_bands(
    hardware: HardwareSpec,
    hours: float = DEFAULT_HOURS,
    depths: tuple[int, ...] | list[int] = DEFAULT_DEPTHS,
    seq_len: int = 2048,
    head_dim: int = DEFAULT_HEAD_DIM,
    n_kv_head: int | None = None,
    window_pattern: str = DEFAULT_WINDOW_PATTERN,
    vocab_size: int = DEFAULT_VOCAB,
    mfu: float = DEFAULT_ETA_COMPUTE,
    sft_fraction: float = DEFAULT_SFT_FRACTION,
    curriculum: list[tuple[int, float]] | None = None,
    global_batch_tokens: int = DEFAULT_GLOBAL_BATCH_TOKENS,
    reserve_bytes: float = DEFAULT_RESERVE_BYTES,
    min_tokens_per_param: float = NANOCHAT_TOKENS_PER_PARAM[0],
    probe: dict | None = None,
    pilot: list[dict] | None = None,
    pilot_metric: str = "loss",
    pilot_axis: str = "auto",
) -> BandsPlan:
    """The `lsdt bands` answer (`.to_dict()` is its `--json` object). `probe` is check_probe()/read_probe()
    output; `pilot` the records of pilot.read_metrics(), projected to the end of the pretraining split:
    against `time` (to split.pretrain_s) or `tokens` (to split.pretrain_tokens of the recommended depth);
    "auto" uses time when the lines carry it. Raises UserError on inconsistent inputs."""
    depths = _check_inputs(hours, depths, mfu, sft_fraction, global_batch_tokens, seq_len, reserve_bytes, min_tokens_per_param)
    probe = _checked_probe(probe, hardware)
    stages = curriculum or curr.default_curriculum(seq_len)
    if global_batch_tokens < max(s for s, _ in stages + [(seq_len, 1.0)]):
        raise UserError(f"global batch = {global_batch_tokens} tokens is shorter than one sequence; accepted: >= the longest sequence length",
                        field="global_batch_tokens")
    w = _Window(window_s=hours * 3600.0, pretrain_fraction=1.0 - sft_fraction, sustained_flops=hardware.peak_flops * mfu,
                usable_bytes=_usable_bytes(hardware, reserve_bytes), global_batch_tokens=global_batch_tokens,
                measured=_best_measured(probe))
    seqs = sorted({s for s, _ in stages} | {seq_len})
    rows = _with_verdicts([_depth_row(depth, band_spec(depth, seq_len=seq_len, head_dim=head_dim, vocab_size=vocab_size,
                                                       n_kv_head=n_kv_head, window_pattern=window_pattern), seqs, w)
                           for depth in depths], min_tokens_per_param, w.usable_bytes)
    recommended, fallback = _pick(rows, min_tokens_per_param)
    envelope = w.window_s * w.sustained_flops
    split = _split(w.window_s, sft_fraction, envelope)
    plan_curriculum = None
    if recommended:
        row = next(r for r in rows if r.depth == recommended.depth)
        plan_curriculum = _curriculum(row, stages, split.pretrain_s)
        split = replace(split, depth=row.depth, pretrain_tokens=plan_curriculum.tokens,
                        sft_tokens=int(split.sft_s * row.tokens_per_s))
    return BandsPlan(
        hardware=hardware.name, peak_flops=hardware.peak_flops, memory_bytes=hardware.memory_bytes,
        usable_memory_bytes=w.usable_bytes, hours=hours, window_s=w.window_s, mfu=mfu, sustained_flops=w.sustained_flops,
        global_batch_tokens=global_batch_tokens,
        shape=BandShape(head_dim=head_dim, n_kv_head=n_kv_head, window_pattern=window_pattern.upper(),
                        vocab_size=vocab_size, ffn="relu2", tie_embeddings=False),
        rows=rows, envelope_flop=envelope, split=split, curriculum=plan_curriculum,
        recommended=recommended, fallback=fallback,
        measured=measured_map(probe, w.window_s, global_batch_tokens) if probe else None,
        probe_device=probe["device"] if probe else None,
        pilot=_project_pilot(pilot, pilot_metric, pilot_axis, split) if pilot is not None else None,
    )
