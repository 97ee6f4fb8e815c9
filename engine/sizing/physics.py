"""Step 0 — physics: what must be true to train this model at all.

`physics(model, hardware, goal)` returns an immutable `PhysicsBundle` of the quantities every later
step partitions but never recomputes: FLOPs per step, bytes of state and of the working set, bytes
exchanged per step, the step-time budget, the communication floor and the device lower bound.
No parallel layout and no efficiency factor appears here.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass

from engine.errors import UserError
from engine.sizing.counts import flops_per_token, param_counts
from engine.specs import GOAL_DEFAULTS, Goal, HardwareSpec, ModelSpec

# Bytes of training state per parameter for bf16 mixed precision with Adam: bf16 weights (2) +
# bf16 gradients (2) + fp32 master weights (4) + fp32 Adam m and v (4 + 4) = 16; an fp32
# gradient-accumulation buffer adds 2 more (18). Rajbhandari et al. 2020 (ZeRO), sec. 3.1:
# "2Ψ + 2Ψ + 12Ψ = 16Ψ bytes" for mixed-precision Adam.
# FP8 training (DeepSeek-AI 2024, DeepSeek-V3 report sec. 3.3; NVIDIA Transformer Engine) keeps the
# same bf16 weights + gradients and fp32 master + Adam state: 16.
STATE_BYTES_PER_PARAM = {"bf16": 16, "bf16-fp32grad": 18, "fp8": 16}
GRAD_BYTES_PER_PARAM = 2  # bf16 gradients are what data parallelism all-reduces
ACTIVATION_BYTES = 2  # bf16 activations

# Korthikanti et al. 2022, eq. 1: activation bytes per layer per sequence with no parallelism and
# no recompute, s*b*h*(34 + 5*a*s/h) with 16-bit activations and dropout masks.
KORTHIKANTI_PER_LAYER_LINEAR = 34
KORTHIKANTI_PER_LAYER_ATTN = 5

# The largest global batch (sequences per optimizer step) LSDT sizes. Published pretraining batches
# are ~2k sequences (Llama 3 405B: 16M tokens of 8,192, Dubey et al. 2024, sec. 3.4; GPT-3: 1,536 x
# 2,048, Brown et al. 2020, Table 2.1); 2^24 is 8,000x that. The layout searches enumerate the batch's
# divisors, which a 10^26-sequence typo with a large prime factor turns into hours of trial division.
MAX_GLOBAL_BATCH_SEQS = 2**24


@dataclass(frozen=True)
class PhysicsBundle:
    """Step-0 quantities (SI units). Immutable: Step 1 and Step 2 only partition them."""

    model: ModelSpec
    hardware: HardwareSpec
    goal: Goal
    params: int  # total parameters (all experts)
    flops_per_token: float  # training FLOPs per token, PaLM convention
    n_steps: int  # optimizer steps to see goal.tokens
    global_batch_seqs: int  # sequences per step
    F_step_flop: float  # FLOPs of one optimizer step (global batch)
    F_total_flop: float  # FLOPs of the whole run
    B_state_min_bytes: float  # weights + gradients + optimizer state, all devices together
    B_step_bytes: float  # working set of one model replica for one sequence (activations)
    B_exchange_per_step_bytes: float  # gradient bytes every replica must all-reduce per step
    t_step_max_s: float  # deadline / n_steps
    t_comm_min_s: float  # bandwidth floor of that all-reduce on the slowest tier
    G_min: int  # no fewer devices can hold the state or do the FLOPs in time at peak

    @property
    def meta(self) -> dict:
        """Device capability (what Step 1 may use)."""
        hw = self.hardware
        return {
            "peak_flops": hw.peak_flops,
            "memory_bytes": hw.memory_bytes,
            "memory_bw": hw.memory_bw,
            "gpus_per_node": hw.gpus_per_node,
            "intra_node_bw": hw.intra_node_bw,
            "inter_node_bw": hw.inter_node_bw,
        }

    def echo(self) -> dict:
        """The physics as plain numbers, for diagnostics and JSON."""
        data = {k: v for k, v in asdict(self).items() if k not in ("model", "hardware", "goal")}
        data["meta"] = self.meta
        return data


def activation_bytes_per_sequence(model: ModelSpec, seq_len: int | None = None) -> float:
    """Activations of one sequence through every layer, no recompute, no parallelism.

    Korthikanti et al. 2022, eq. 1, per layer: s*h*(34 + 5*a*s/h) bytes (b = 1), 16-bit values.
    """
    s = seq_len or model.seq_len
    h, a = model.d_model, model.n_head
    per_layer = s * h * (KORTHIKANTI_PER_LAYER_LINEAR + KORTHIKANTI_PER_LAYER_ATTN * a * s / h)
    return per_layer * model.n_layer


def physics(model: ModelSpec, hardware: HardwareSpec, goal: Goal) -> PhysicsBundle:
    """Step 0. Raises UserError when the goal is not a coherent request (e.g. batch < sequence)."""
    if goal.global_batch_tokens < model.seq_len:
        raise UserError(
            f"goal: global_batch_tokens = {goal.global_batch_tokens} is less than one sequence "
            f"(seq_len = {model.seq_len}); accepted: >= {model.seq_len}", field="global_batch_tokens"
        )
    global_batch_seqs = goal.global_batch_tokens // model.seq_len
    if global_batch_seqs > MAX_GLOBAL_BATCH_SEQS:
        raise UserError(
            f"goal: global_batch_tokens = {goal.global_batch_tokens:.4g} is {global_batch_seqs:.4g} sequences of {model.seq_len}; "
            f"accepted: at most {MAX_GLOBAL_BATCH_SEQS:,} sequences ({MAX_GLOBAL_BATCH_SEQS * model.seq_len:,} tokens)", field="global_batch_tokens"
        )
    counts = param_counts(model)
    fpt = flops_per_token(model)
    tokens_per_step = global_batch_seqs * model.seq_len
    if goal.tokens < tokens_per_step:  # 21 tokens planned as "1 steps" of a 4M-token batch
        raise UserError(
            f"goal: tokens = {goal.tokens:.4g} is less than one global batch ({tokens_per_step:,} tokens = "
            f"{global_batch_seqs:,} x {model.seq_len}); accepted: tokens >= {tokens_per_step:,}, or a smaller global batch",
            field="tokens",
        )
    n_steps = max(1, math.ceil(goal.tokens / tokens_per_step))
    F_step = fpt * tokens_per_step
    B_state = counts.total * STATE_BYTES_PER_PARAM[goal.precision]
    B_step = activation_bytes_per_sequence(model)
    B_exchange = counts.total * GRAD_BYTES_PER_PARAM
    t_step_max = goal.deadline_s / n_steps
    # Bandwidth-optimal all-reduce moves 2(n-1)/n x S bytes per device (Patarasuk & Yuan 2009);
    # its n -> infinity floor 2S over the slowest link is what every data-parallel step pays.
    slowest_bw = hardware.inter_node_bw or hardware.intra_node_bw
    t_comm_min = 2.0 * B_exchange / slowest_bw
    if not math.isfinite(F_step * n_steps):
        raise UserError(
            f"goal: tokens = {goal.tokens:g} at {fpt:.3g} FLOP/token is more FLOP than a float holds; "
            f"accepted: tokens <= {sys.float_info.max / fpt:.3g}", field="tokens"
        )
    G_compute_exact = F_step * n_steps / (hardware.peak_flops * goal.deadline_s)
    if not math.isfinite(G_compute_exact):  # a deadline so short that peak x deadline underflows
        raise UserError(
            f"goal: deadline_s = {goal.deadline_s:g} is too short: {F_step * n_steps:.3g} FLOP in it needs more devices "
            f"than a float can count; accepted: a deadline of at least {F_step * n_steps / hardware.peak_flops / sys.float_info.max:.3g} s", field="deadline_s"
        )
    G_compute = math.ceil(G_compute_exact)
    G_memory = math.ceil(B_state / hardware.memory_bytes)
    return PhysicsBundle(
        model=model,
        hardware=hardware,
        goal=goal,
        params=counts.total,
        flops_per_token=fpt,
        n_steps=n_steps,
        global_batch_seqs=global_batch_seqs,
        F_step_flop=F_step,
        F_total_flop=F_step * n_steps,
        B_state_min_bytes=B_state,
        B_step_bytes=B_step,
        B_exchange_per_step_bytes=B_exchange,
        t_step_max_s=t_step_max,
        t_comm_min_s=t_comm_min,
        G_min=max(1, G_compute, G_memory),
    )


def default_goal(model: ModelSpec, tokens: float | None = None, deadline_s: float | None = None,
                 global_batch_tokens: int | None = None, precision: str = "bf16") -> Goal:
    """A Goal with LSDT's documented defaults filled in (20 tokens/param, 30 days, 4M-token batch)."""
    if tokens is None:
        tokens = GOAL_DEFAULTS["tokens_per_param"] * param_counts(model).total
    return Goal(
        tokens=float(tokens),
        deadline_s=float(deadline_s if deadline_s is not None else GOAL_DEFAULTS["deadline_s"]),
        global_batch_tokens=int(global_batch_tokens or GOAL_DEFAULTS["global_batch_tokens"]),
        precision=precision,
    )
