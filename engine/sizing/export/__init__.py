"""Launch configurations for a planned layout on real training engines (pure text, stdlib only).

One file per target (megatron.py, torchtitan.py, torchrun.py) over layout.py (the layout read with
defaults, the pipeline split, the RoPE base); this package re-exports their API:

    megatron_args(model, layout, global_batch, train_iters)  -> list[str]  Megatron-LM pretrain_gpt.py flags
    torchtitan_config(model, layout, global_batch, steps)     -> str        a torchtitan config module (Python)
    torchrun_command(model_ref, layout, global_batch, ...)    -> list[str]  torchrun + LSDT's own trainer

Each export describes the model LSDT sized (engine/sizing/counts.py: bias-free linears, RMSNorm,
RoPE, the profile's vocabulary) on the layout it planned, or refuses with a UserError naming what
the target engine cannot do; nothing is silently changed. Targets: Megatron-LM core_v0.19.0
(megatron_args.py records its flags and rules), torchtitan 0.3.0 (TORCHTITAN_RELEASE).

`layout` is one refined layout of a plan (engine/plan.py REFINED_LAYOUT_KEYS), read as the
engineering model's own record, engine/sizing/refine.Layout (layout.planned_layout: refine's
defaults for a missing key, and the row's gpus checked against dp x tp x pp x cp): gpus, dp, tp, pp,
micro_batch, recompute, zero, interleave, sequence_parallel, cp, ep, first_stage_layers /
last_stage_layers (layers on the first / last pipeline rank, None = even split),
offload_optimizer / offload_weights / offload_activations; and global_batch_used (the planned
batch when the flexible batch rounded it). gpus = dp x tp x pp x cp (both engines' convention: DP is
what is left); EP borrows its ranks from DP x CP x TP.

ZeRO, in each engine's own words (the memory the plan assumed, engine/sizing/memory.py state_bytes):
  ZeRO 0: replicated (DDP).  ZeRO 1: optimizer state sharded.  ZeRO 2: + gradients.  ZeRO 3: + weights.
  Megatron-LM: 1 -> --use-distributed-optimizer; 2 / 3 -> Megatron-FSDP with
    --data-parallel-sharding-strategy optim_grads / optim_grads_params.
  torchtitan: 0 -> data_parallel_replicate_degree = dp; 1 / 2 -> FSDP2 over dp with
    fsdp_reshard_after_forward "never" (weights stay gathered through the step: ZeRO-2's memory,
    which is at most ZeRO-1's); 3 -> "always".
  torchrun (LSDT's trainer): 0 -> DDP; 1 / 2 -> --fsdp --fsdp-keep-weights; 3 -> --fsdp.
"""

from __future__ import annotations

from engine.sizing.export.layout import DEFAULT_ROPE_BASE, ROPE_BASE, pipeline_chunks, planned_layout, rope_base
from engine.sizing.export.megatron import (
    MEGATRON_MODEL_FIELDS, MEGATRON_MOE_OFFLOAD_MODULES, MEGATRON_OFFLOAD_MODULES, megatron_args, megatron_vocab_divisor,
)
from engine.sizing.export.torchrun import torchrun_command
from engine.sizing.export.torchtitan import TORCHTITAN_MODELS, TORCHTITAN_RELEASE, torchtitan_config

__all__ = [
    "DEFAULT_ROPE_BASE", "ROPE_BASE", "pipeline_chunks", "planned_layout", "rope_base", "MEGATRON_MODEL_FIELDS",
    "MEGATRON_MOE_OFFLOAD_MODULES", "MEGATRON_OFFLOAD_MODULES", "megatron_args", "megatron_vocab_divisor",
    "torchrun_command", "TORCHTITAN_MODELS", "TORCHTITAN_RELEASE", "torchtitan_config",
]
