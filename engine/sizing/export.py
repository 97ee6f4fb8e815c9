"""Launch configurations for a planned layout on real training engines (pure text, stdlib only).

    megatron_args(model, layout, global_batch, train_iters)  -> list[str]  Megatron-LM pretrain_gpt.py flags
    torchtitan_config(model, layout, global_batch, steps)     -> str        a torchtitan config module (Python)
    torchrun_command(model_ref, layout, global_batch, ...)    -> list[str]  torchrun + LSDT's own trainer

Each export describes the model LSDT sized (engine/sizing/counts.py: bias-free linears, RMSNorm,
RoPE, the profile's vocabulary) on the layout it planned, or refuses with a UserError naming what
the target engine cannot do; nothing is silently changed. Targets: Megatron-LM core_v0.19.0
(megatron_args.py records its flags and rules), torchtitan 0.3.0 (TORCHTITAN_RELEASE).

`layout` is one refined layout of a plan (engine/plan.py REFINED_LAYOUT_KEYS): gpus, dp, tp, pp,
micro_batch, recompute, zero, interleave, sequence_parallel, and, where the engineering model
records them, cp, ep, first_stage_layers / last_stage_layers (layers on the first / last pipeline
rank, None = even split), offload_optimizer / offload_weights / offload_activations and
global_batch_used; those are read with defaults (1, 1, None, False, the planned batch).
gpus = dp x tp x pp x cp (both engines' convention: DP is what is left); EP borrows its ranks from
DP x CP x TP.

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

import re
from dataclasses import dataclass

from engine.errors import UserError
from engine.sizing import megatron_args as mg
from engine.specs import ModelSpec

TORCHTITAN_RELEASE = "0.3.0"
# torchtitan builds models from its own registry, so only the shapes it ships export; a test
# checks each registry model against the LSDT profile (layers, widths, heads, vocabulary, count).
# profile -> (torchtitan model module, registry flavour, the registry's preset config function)
TORCHTITAN_MODELS = {
    "llama3-8b": ("torchtitan.models.llama3", "8B", "llama3_8b"),
    "llama3-70b": ("torchtitan.models.llama3", "70B", "llama3_70b"),
    "llama3-405b": ("torchtitan.models.llama3", "405B", "llama3_405b"),
}

# RoPE frequency base: not a sizing input (no parameters, no FLOPs), but part of the model a run
# trains. Llama 3: 500,000 (Dubey et al. 2024, sec. 3.2.1; HF config.json rope_theta). Every other
# shipped profile: 10,000 (Su et al. 2021; LLaMA 1, nanochat, and LSDT's trainer default).
ROPE_BASE = {"llama3-8b": 500_000, "llama3-70b": 500_000, "llama3-405b": 500_000}
DEFAULT_ROPE_BASE = 10_000

# The ModelSpec fields megatron_args translates. A model setting any other field to a non-default
# value (a newer architecture key) is refused by name rather than exported as a different model.
MEGATRON_MODEL_FIELDS = {"name", "n_layer", "d_model", "n_head", "vocab_size", "seq_len", "n_kv_head", "head_dim", "d_ff",
                         "ffn", "tie_embeddings", "window_pattern", "short_window", "n_experts", "experts_per_token",
                         "trunk_layers", "source"}

# Megatron's fine-grained activation offloading: the dense-layer modules whose inputs go to the host
# (TransformerConfig's allowed offload_modules, less the MoE-only ones unless the model has experts).
MEGATRON_OFFLOAD_MODULES = ("attn_norm", "qkv_linear", "core_attn", "attn_proj", "mlp_norm")
MEGATRON_MOE_OFFLOAD_MODULES = ("expert_fc1", "moe_act")


@dataclass(frozen=True)
class Layout:
    """One planned layout with every dimension an export reads, defaults filled in."""

    gpus: int
    dp: int
    tp: int
    pp: int
    micro_batch: int
    recompute: str  # "none" | "selective" | "full"
    zero: int
    interleave: int = 1
    sequence_parallel: bool = False
    cp: int = 1
    ep: int = 1
    first_stage_layers: int | None = None
    last_stage_layers: int | None = None
    offload_optimizer: bool = False
    offload_weights: bool = False
    offload_activations: bool = False
    global_batch_used: int | None = None

    @classmethod
    def of(cls, layout: dict) -> "Layout":
        fields = cls.__dataclass_fields__
        return cls(**{k: v for k, v in layout.items() if k in fields and v is not None})

    @property
    def uneven(self) -> bool:
        return self.first_stage_layers is not None or self.last_stage_layers is not None


def rope_base(model: ModelSpec) -> int:
    return ROPE_BASE.get(model.name, DEFAULT_ROPE_BASE)


def pipeline_chunks(model: ModelSpec, lay: Layout) -> list[int]:
    """Decoder layers of each virtual pipeline stage in model order (stage s sits on rank s mod pp,
    the looped order of both Megatron's and torchtitan's interleaved schedules)."""
    ranks = mg.pipeline_stage_layers(model.n_layer, lay.pp, lay.first_stage_layers, lay.last_stage_layers)
    v = lay.interleave
    if ranks is None or any(r <= 0 or r % v for r in ranks):
        raise UserError(
            f"export: {model.n_layer} layers do not split over PP {lay.pp} x {v} virtual stages with "
            f"first_stage_layers={lay.first_stage_layers}, last_stage_layers={lay.last_stage_layers}; "
            "accepted: whole layers on every (virtual) stage"
        )
    return [ranks[s % lay.pp] // v for s in range(lay.pp * v)]


def _check_world(lay: Layout) -> None:
    if lay.dp * lay.tp * lay.pp * lay.cp != lay.gpus:
        raise UserError(f"export: layout of {lay.gpus} GPUs is not DP {lay.dp} x TP {lay.tp} x PP {lay.pp} x CP {lay.cp}")


def _refuse_fp8(target: str, precision: str) -> None:
    if precision == "fp8":
        raise UserError(f"{target} export: the plan trains in FP8, which this export does not set up for {target}; "
                        "accepted: a bf16 plan, or --to megatron (--fp8-format hybrid)")


def _global_batch(lay: Layout, planned: int) -> int:
    return lay.global_batch_used or planned


# --------------------------------------------------------------------------- Megatron-LM


def megatron_vocab_divisor(vocab_size: int, tp: int) -> int:
    """--make-vocab-size-divisible-by: the largest of 128, 64, ..., 1 that leaves the vocabulary
    unpadded on this TP (Megatron pads it to a multiple of divisor x TP, which would add rows the
    plan did not count); 1 pads the least when TP does not divide it."""
    return next(d for d in (128, 64, 32, 16, 8, 4, 2, 1) if vocab_size % (d * tp) == 0 or d == 1)


def megatron_args(model: ModelSpec, layout: dict, global_batch: int, train_iters: int, precision: str = "bf16") -> list[str]:
    """Flags for Megatron-LM's pretrain_gpt.py: model shape, parallel layout, memory options, batch.

    precision (the plan's Goal.precision): "bf16" keeps bf16 gradients (2 B/param, memory.py
    GRAD_BYTES) -> --grad-reduce-in-bf16; "bf16-fp32grad" is Megatron's default fp32 gradient
    buffer; "fp8" adds --fp8-format hybrid (E4M3 forward, E5M2 backward) to bf16 training."""
    lay = Layout.of(layout)
    _check_world(lay)
    unknown = {k: v for k, v in model.to_dict().items() if k not in MEGATRON_MODEL_FIELDS and v not in (None, 0, 0.0, False, "")}
    if unknown:
        key, value = next(iter(unknown.items()))
        raise UserError(f"megatron export: model {model.name!r} sets {key} = {value!r}, which this export does not translate "
                        "to Megatron-LM flags; accepted: a model without it (or --to torchrun)")
    if model.trunk_layers:
        raise UserError(
            f"megatron export: model {model.name!r} is a two-phase MoE (experts are stacks of "
            f"{model.n_layer - model.trunk_layers} blocks after a {model.trunk_layers}-block trunk); Megatron-LM "
            "builds per-layer experts only; accepted: a dense or Mixtral-style model (trunk_layers = 0)"
        )
    if set(model.window_pattern) != {"L"}:
        raise UserError(
            f"megatron export: model {model.name!r} has window pattern {model.window_pattern!r}; Megatron-LM's "
            "--window-size applies one window to all layers; accepted: window_pattern L"
        )
    if lay.offload_weights:
        raise UserError(
            f"megatron export: the layout offloads weights, and Megatron-LM {mg.RELEASE} has no command-line "
            "weight offload; accepted: a layout without offload_weights (--layout N), or --to torchtitan"
        )
    heads_per_group = model.n_head // model.n_kv_head
    args = [
        # the model (engine/sizing/counts.py: bias-free, RMSNorm, RoPE, untied unless the profile ties)
        "--num-layers", str(model.n_layer),
        "--hidden-size", str(model.d_model),
        "--ffn-hidden-size", str(model.d_ff),
        "--num-attention-heads", str(model.n_head),
        "--kv-channels", str(model.head_dim),
        "--seq-length", str(model.seq_len),
        "--max-position-embeddings", str(model.seq_len),
        "--position-embedding-type", "rope",
        "--rotary-base", str(rope_base(model)),
        "--normalization", "RMSNorm",
        "--disable-bias-linear",
        "--hidden-dropout", "0",
        "--attention-dropout", "0",
        "--tokenizer-type", "NullTokenizer",
        "--vocab-size", str(model.vocab_size),
        "--make-vocab-size-divisible-by", str(megatron_vocab_divisor(model.vocab_size, lay.tp)),
        "--bf16",
    ]
    if precision != "bf16-fp32grad":
        args += ["--grad-reduce-in-bf16"]
    if precision == "fp8":
        args += ["--fp8-format", "hybrid"]
    if heads_per_group > 1:
        args += ["--group-query-attention", "--num-query-groups", str(model.n_kv_head)]
    if model.ffn == "swiglu":
        args += ["--swiglu"]
    elif model.ffn == "relu2":
        args += ["--squared-relu"]
    if not model.tie_embeddings:
        args += ["--untie-embeddings-and-output-weights"]
    if model.n_experts:
        args += ["--num-experts", str(model.n_experts), "--moe-router-topk", str(model.experts_per_token),
                 "--moe-ffn-hidden-size", str(model.d_ff)]
        if model.experts_per_token == 1:
            args += ["--moe-router-pre-softmax"]
    # the layout
    args += [
        "--tensor-model-parallel-size", str(lay.tp),
        "--pipeline-model-parallel-size", str(lay.pp),
        "--micro-batch-size", str(lay.micro_batch),
        "--global-batch-size", str(_global_batch(lay, global_batch)),
        "--train-iters", str(train_iters),
    ]
    if lay.cp > 1:
        args += ["--context-parallel-size", str(lay.cp)]
    if lay.ep > 1:
        args += ["--expert-model-parallel-size", str(lay.ep)]
    if lay.sequence_parallel and lay.tp > 1:
        args += ["--sequence-parallel"]
    if lay.pp > 1:
        pipeline_chunks(model, lay)  # refuses a split Megatron would refuse, with LSDT's words
        if lay.first_stage_layers is not None:
            args += ["--decoder-first-pipeline-num-layers", str(lay.first_stage_layers)]
        if lay.last_stage_layers is not None:
            args += ["--decoder-last-pipeline-num-layers", str(lay.last_stage_layers)]
        if lay.interleave > 1:
            args += ["--num-virtual-stages-per-pipeline-rank", str(lay.interleave)]
    # memory
    if lay.recompute == "full":
        args += ["--recompute-granularity", "full", "--recompute-method", "uniform", "--recompute-num-layers", "1"]
    elif lay.recompute == "selective":
        args += ["--recompute-granularity", "selective"]
    if lay.zero == 1:
        args += ["--use-distributed-optimizer"]
    elif lay.zero >= 2:
        strategy = "optim_grads" if lay.zero == 2 else "optim_grads_params"
        args += ["--use-megatron-fsdp", "--data-parallel-sharding-strategy", strategy, "--ckpt-format", "fsdp_dtensor"]
    if lay.offload_optimizer:
        args += ["--optimizer-cpu-offload", "--use-precision-aware-optimizer"]
    if lay.offload_activations:
        modules = MEGATRON_OFFLOAD_MODULES + (MEGATRON_MOE_OFFLOAD_MODULES if model.n_experts else ())
        args += ["--fine-grained-activation-offloading", "--offload-modules", *modules]
    _check_megatron_rules(args, lay.gpus)
    return args


def _check_megatron_rules(args: list[str], world_size: int) -> None:
    ns = mg.parse(args)
    bad = mg.rule_violations(ns, world_size)
    if bad:
        raise UserError(f"megatron export: Megatron-LM {mg.RELEASE} would refuse this layout: {bad[0]}")


# --------------------------------------------------------------------------- torchtitan


def _identifier(text: str) -> str:
    name = re.sub(r"\W", "_", text).strip("_").lower()
    return name if name and not name[0].isdigit() else f"lsdt_{name}"


def torchtitan_config(model: ModelSpec, layout: dict, global_batch: int, steps: int, precision: str = "bf16") -> str:
    """A torchtitan config module: torchtitan's preset for the model (tokenizer, data, optimizer,
    checkpointing) with LSDT's batch, parallel layout and recompute. Run it with
    `torchrun --nproc-per-node N -m torchtitan.train --module <file stem> --config <function>`."""
    found = TORCHTITAN_MODELS.get(model.name)
    if found is None:
        raise UserError(
            f"torchtitan export: model {model.name!r} is not a torchtitan registry shape; accepted: "
            f"{', '.join(TORCHTITAN_MODELS)} (use --to megatron or --to torchrun for other models)"
        )
    module, _flavour, preset = found
    lay = Layout.of(layout)
    _check_world(lay)
    _refuse_fp8("torchtitan", precision)
    if lay.ep > 1 and not model.n_experts:
        raise UserError(f"torchtitan export: the layout has EP {lay.ep} and {model.name} has no experts; accepted: ep = 1")
    if lay.offload_activations:
        raise UserError(
            f"torchtitan export: the layout offloads activations, and torchtitan {TORCHTITAN_RELEASE} has no "
            "activation offload; accepted: a layout without offload_activations (--layout N), or --to megatron"
        )
    offload = lay.offload_optimizer or lay.offload_weights
    if offload and lay.zero == 0:
        raise UserError("torchtitan export: torchtitan offloads through FSDP (training.enable_cpu_offload), and this "
                        "layout does not shard (ZeRO 0); accepted: an offloading layout with ZeRO >= 1")
    B = _global_batch(lay, global_batch)
    par = [f"tensor_parallel_degree={lay.tp}", f"enable_sequence_parallel={bool(lay.sequence_parallel and lay.tp > 1)}",
           f"context_parallel_degree={lay.cp}", f"expert_parallel_degree={lay.ep}"]
    if lay.zero == 0:
        par += [f"data_parallel_replicate_degree={lay.dp}", "data_parallel_shard_degree=1"]
    else:
        reshard = "always" if lay.zero >= 3 else "never"
        par += ["data_parallel_replicate_degree=1", f"data_parallel_shard_degree={lay.dp}", f'fsdp_reshard_after_forward="{reshard}"']
    training = [f"global_batch_size={B}", f"seq_len={model.seq_len}", f"steps={steps}"]
    if lay.pp > 1:
        # One pipeline step runs all of a replica's micro-batches: local batch = B / dp, cut into
        # micro-batches of the planned size. The stages are given module by module, so torchtitan
        # builds exactly the planned split (even, interleaved or uneven).
        chunks = pipeline_chunks(model, lay)
        parts, first = [], 0
        for i, n in enumerate(chunks):
            names = [f"layers.{j}" for j in range(first, first + n)]
            first += n
            parts.append((["tok_embeddings"] if i == 0 else []) + names + (["norm", "lm_head"] if i == len(chunks) - 1 else []))
        schedule = "Interleaved1F1B" if lay.interleave > 1 else "1F1B"
        par += [f"pipeline_parallel_degree={lay.pp}", f'pipeline_parallel_schedule="{schedule}"',
                f"pipeline_parallel_microbatch_size={lay.micro_batch}",
                "module_fqns_per_model_part=[" + "".join(f"\n                {part!r}," for part in parts) + "\n            ]"]
        training = [f"local_batch_size={B // lay.dp}"] + training + ["disable_cuda_graphs=True"]  # required with PP
    else:
        # Without PP torchtitan accumulates gradients over B / (local batch x dp) micro-steps.
        training = [f"local_batch_size={lay.micro_batch}"] + training
    if offload:
        training += ["enable_cpu_offload=True"]
    recompute = {"full": "FullAC.Config()", "selective": "SelectiveAC.Config()"}.get(lay.recompute, "None")
    fn = _identifier(f"lsdt_{model.name}_dp{lay.dp}_tp{lay.tp}_pp{lay.pp}_cp{lay.cp}")
    indent = "\n            "
    shape = f"DP {lay.dp} x TP {lay.tp} x PP {lay.pp}" + (f" (v={lay.interleave})" if lay.interleave > 1 else "") + (f" x CP {lay.cp}" if lay.cp > 1 else "")
    return f'''"""torchtitan {TORCHTITAN_RELEASE} config exported by LSDT (`lsdt export --to torchtitan`): {model.name} on {lay.gpus} GPUs.

Run:  PYTHONPATH=<this file's folder> torchrun --nproc-per-node <GPUs per node> -m torchtitan.train --module <this file's stem> --config {fn}
Layout: {shape}, micro-batch {lay.micro_batch}, recompute {lay.recompute}, ZeRO {lay.zero}.
"""

import dataclasses

from torchtitan.config import ParallelismConfig, TrainingConfig
from torchtitan.distributed.activation_checkpoint import FullAC, SelectiveAC  # noqa: F401 (one is used)
from torchtitan.trainer import Trainer
from {module}.config_registry import {preset}


def {fn}() -> Trainer.Config:
    # dataclasses.replace re-runs Trainer.Config's checks on the changed config
    return dataclasses.replace(
        {preset}(),
        training=TrainingConfig(
            {("," + indent).join(training)},
        ),
        parallelism=ParallelismConfig(
            {("," + indent).join(par)},
        ),
        activation_checkpoint={recompute},
    )
'''


# --------------------------------------------------------------------------- torchrun (LSDT's trainer)


def torchrun_command(model_ref: str, layout: dict, global_batch: int, steps: int, gpus_per_node: int,
                     seq_len: int, rope: int = DEFAULT_ROPE_BASE, precision: str = "bf16") -> list[str]:
    """torchrun over LSDT's trainer: data parallelism, replicated (DDP) or sharded (FSDP2) as planned."""
    lay = Layout.of(layout)
    _refuse_fp8("torchrun", precision)
    refused = [(lay.tp > 1 or lay.pp > 1, f"TP {lay.tp} x PP {lay.pp}"), (lay.cp > 1, f"CP {lay.cp}"), (lay.ep > 1, f"EP {lay.ep}"),
               (lay.recompute != "none", f"{lay.recompute} recompute"),
               (lay.offload_optimizer or lay.offload_weights or lay.offload_activations, "CPU offload")]
    what = [w for bad, w in refused if bad]
    if what:
        raise UserError(
            f"torchrun export: LSDT's trainer runs data parallelism only (DDP or FSDP, no recompute or offload), and this "
            f"layout has {', '.join(what)}; accepted: such a layout (--layout N), or --to megatron / --to torchtitan"
        )
    dp = lay.dp
    nodes = -(-dp // gpus_per_node)
    per_node = min(dp, gpus_per_node)
    if dp % per_node:
        raise UserError(f"torchrun export: {dp} ranks do not fill {nodes} nodes of {gpus_per_node} evenly")
    B = _global_batch(lay, global_batch)
    if B % (dp * lay.micro_batch):
        raise UserError(f"torchrun export: global batch {B} is not a multiple of DP {dp} x micro-batch {lay.micro_batch}")
    cmd = ["torchrun", "--nnodes", str(nodes), "--nproc-per-node", str(per_node)]
    if nodes > 1:
        cmd += ["--node-rank", "$NODE_RANK", "--rdzv-backend", "c10d", "--rdzv-endpoint", "$MASTER_ADDR:29500"]
    cmd += [
        "-m", "engine.runtime.train.loop",
        "--model", model_ref,
        "--seq", str(seq_len),
        "--rope-base", str(rope),
        "--device-batch", str(lay.micro_batch),
        "--grad-accum", str(B // (dp * lay.micro_batch)),
        "--steps", str(steps),
    ]
    if lay.zero >= 1:
        cmd += ["--fsdp"] + (["--fsdp-keep-weights"] if lay.zero < 3 else [])
    return cmd
