"""Launch configurations for a planned layout on real training engines (pure text, stdlib only).

    megatron_args(model, layout, goal_steps)            -> list[str]   Megatron-LM pretrain_gpt.py flags
    torchtitan_config(model, layout, goal_steps, name)  -> str         a torchtitan config module (Python)
    torchrun_command(model, layout, goal_steps, ...)    -> list[str]   torchrun + LSDT's own trainer

`layout` is one refined layout of a plan (engine/plan.py REFINED_LAYOUT_KEYS): gpus, dp, tp, pp,
micro_batch, recompute, zero, interleave, sequence_parallel; the global batch is dp x micro_batch x
(micro-batches per replica) sequences and is passed in.

Mappings (each engine's own vocabulary):
  Megatron-LM: ZeRO >= 1 -> --use-distributed-optimizer (optimizer state and gradient reduce-scatter
    sharded over DP); ZeRO 3 -> --use-torch-fsdp2 (Megatron's FSDP2 path); recompute full ->
    --recompute-granularity full --recompute-method uniform --recompute-num-layers 1; selective ->
    --recompute-granularity selective; interleave v > 1 -> --num-layers-per-virtual-pipeline-stage L/(p v).
  torchtitan (the Python config format that replaced TOML job files in early 2026, torchtitan 0.3.x:
    a function returning `Trainer.Config`, selected with MODULE=... CONFIG=... ./run_train.sh):
    ZeRO 0 -> data_parallel_replicate_degree = dp (DDP); ZeRO 1/2 -> data_parallel_shard_degree = dp
    with fsdp_reshard_after_forward = "never" (weights stay gathered between forward and backward,
    the ZeRO-2 trade); ZeRO 3 -> data_parallel_shard_degree = dp (FSDP2 default resharding).
    PP uses Interleaved1F1B with pipeline_parallel_layers_per_stage = L/(p v) when v > 1, else 1F1B,
    and first/last_stage_less_layers = 0 so that torchtitan's stage count
    ceil((L + first + last) / layers_per_stage) is exactly p v, as its validation requires.
    torchtitan builds models from its own registry, so only the shapes it ships are exported.
  torchrun: LSDT's trainer (engine.runtime.train.loop) runs data parallelism (DDP) only, so a layout
    with TP or PP > 1 is refused rather than silently changed.
"""

from __future__ import annotations

import re

from engine.errors import UserError
from engine.specs import ModelSpec

# torchtitan's llama3 model registry flavours, by the LSDT profile whose shape they are.
TORCHTITAN_FLAVOURS = {
    "llama3-8b": ("torchtitan.models.llama3", "8B"),
    "llama3-70b": ("torchtitan.models.llama3", "70B"),
    "llama3-405b": ("torchtitan.models.llama3", "405B"),
}


def _microbatches(layout: dict, global_batch: int) -> int:
    return global_batch // (layout["dp"] * layout["micro_batch"])


def megatron_args(model: ModelSpec, layout: dict, global_batch: int, train_iters: int) -> list[str]:
    """Flags for Megatron-LM's pretrain_gpt.py (model shape + parallel layout + batch)."""
    args = [
        "--num-layers", str(model.n_layer),
        "--hidden-size", str(model.d_model),
        "--num-attention-heads", str(model.n_head),
        "--ffn-hidden-size", str(model.d_ff),
        "--seq-length", str(model.seq_len),
        "--max-position-embeddings", str(model.seq_len),
        "--tensor-model-parallel-size", str(layout["tp"]),
        "--pipeline-model-parallel-size", str(layout["pp"]),
        "--micro-batch-size", str(layout["micro_batch"]),
        "--global-batch-size", str(global_batch),
        "--train-iters", str(train_iters),
        "--bf16",
    ]
    if model.head_dim != model.d_model // model.n_head:
        args += ["--kv-channels", str(model.head_dim)]
    if model.n_kv_head != model.n_head:
        args += ["--group-query-attention", "--num-query-groups", str(model.n_kv_head)]
    if model.ffn == "swiglu":
        args += ["--swiglu"]
    if model.ffn == "relu2":
        args += ["--squared-relu"]
    if not model.tie_embeddings:
        args += ["--untie-embeddings-and-output-weights"]
    if layout["interleave"] > 1:
        args += ["--num-layers-per-virtual-pipeline-stage", str(model.n_layer // (layout["pp"] * layout["interleave"]))]
    if layout["recompute"] == "full":
        args += ["--recompute-granularity", "full", "--recompute-method", "uniform", "--recompute-num-layers", "1"]
    elif layout["recompute"] == "selective":
        args += ["--recompute-granularity", "selective"]
    if layout["sequence_parallel"] and layout["tp"] > 1:
        args += ["--sequence-parallel"]
    if layout["zero"] >= 1:
        args += ["--use-distributed-optimizer"]
    if layout["zero"] >= 3:
        args += ["--use-torch-fsdp2"]
    return args


def _identifier(text: str) -> str:
    name = re.sub(r"\W", "_", text).strip("_").lower()
    return name if name and not name[0].isdigit() else f"lsdt_{name}"


def torchtitan_config(model: ModelSpec, layout: dict, global_batch: int, steps: int) -> str:
    """A torchtitan config module: `MODULE=<file stem> CONFIG=<function> ./run_train.sh`."""
    flavour = TORCHTITAN_FLAVOURS.get(model.name)
    if flavour is None:
        raise UserError(
            f"torchtitan export: model {model.name!r} is not a torchtitan registry shape; accepted: "
            f"{', '.join(TORCHTITAN_FLAVOURS)} (use --to megatron or --to torchrun for other models)"
        )
    module, size = flavour
    dp, tp, pp, v = layout["dp"], layout["tp"], layout["pp"], layout["interleave"]
    zero = layout["zero"]
    par = [f"tensor_parallel_degree={tp}", f"enable_sequence_parallel={bool(layout['sequence_parallel'])}"]
    if zero == 0:
        par += [f"data_parallel_replicate_degree={dp}", "data_parallel_shard_degree=1"]
    else:
        par += ["data_parallel_replicate_degree=1", f"data_parallel_shard_degree={dp}"]
        if zero < 3:
            par += ['fsdp_reshard_after_forward="never"']
    local_batch = global_batch // dp
    if pp > 1:
        # LSDT models equal stages; torchtitan's default counts the embedding and the output as one
        # layer each (first/last_stage_less_layers = 1), so zero them to get the planned split.
        par += [f"pipeline_parallel_degree={pp}", f"pipeline_parallel_microbatch_size={layout['micro_batch']}",
                "pipeline_parallel_first_stage_less_layers=0", "pipeline_parallel_last_stage_less_layers=0"]
        if v > 1:
            par += ['pipeline_parallel_schedule="Interleaved1F1B"', f"pipeline_parallel_layers_per_stage={model.n_layer // (pp * v)}"]
        else:
            par += ['pipeline_parallel_schedule="1F1B"']
    else:
        # Without PP torchtitan accumulates gradients over global / (local x dp) micro-steps.
        local_batch = layout["micro_batch"]
    mode = layout["recompute"] if layout["recompute"] in ("full", "selective") else "none"
    fn = _identifier(f"lsdt_{model.name}_dp{dp}_tp{tp}_pp{pp}")
    indent = "\n            "
    return f'''"""torchtitan config exported by LSDT (`lsdt export --to torchtitan`): {model.name} on {layout["gpus"]} GPUs.

Run:  MODULE=<this file's module name> CONFIG={fn} ./run_train.sh   (NGPU={layout["gpus"]} per job)
Layout: DP {dp} x TP {tp} x PP {pp}{f" (v={v})" if v > 1 else ""}, micro-batch {layout["micro_batch"]}, recompute {layout["recompute"]}, ZeRO {zero}.
"""

from torchtitan.config import ActivationCheckpointConfig, ParallelismConfig, TrainingConfig
from torchtitan.trainer import Trainer
from {module} import model_registry


def {fn}() -> Trainer.Config:
    return Trainer.Config(
        model_spec=model_registry("{size}"),
        training=TrainingConfig(
            local_batch_size={local_batch},
            global_batch_size={global_batch},
            seq_len={model.seq_len},
            steps={steps},
        ),
        parallelism=ParallelismConfig(
            {("," + indent).join(par)},
        ),
        activation_checkpoint=ActivationCheckpointConfig(mode="{mode}"),
    )
'''


def torchrun_command(model_ref: str, layout: dict, global_batch: int, steps: int, gpus_per_node: int, seq_len: int) -> list[str]:
    """torchrun over LSDT's trainer; data parallelism only (the trainer's DDP)."""
    if layout["tp"] > 1 or layout["pp"] > 1:
        raise UserError(
            f"torchrun export: LSDT's trainer runs data parallelism only, and this layout has TP {layout['tp']} x PP {layout['pp']}; "
            "accepted: a layout with tp = pp = 1 (use --to megatron or --to torchtitan, or --layout N for another one)"
        )
    dp = layout["dp"]
    nodes = -(-dp // gpus_per_node)
    per_node = min(dp, gpus_per_node)
    if dp % per_node:
        raise UserError(f"torchrun export: {dp} ranks do not fill {nodes} nodes of {gpus_per_node} evenly")
    cmd = ["torchrun", "--nnodes", str(nodes), "--nproc-per-node", str(per_node)]
    if nodes > 1:
        cmd += ["--node-rank", "$NODE_RANK", "--rdzv-backend", "c10d", "--rdzv-endpoint", "$MASTER_ADDR:29500"]
    cmd += [
        "-m", "engine.runtime.train.loop",
        "--model", model_ref,
        "--seq", str(seq_len),
        "--device-batch", str(layout["micro_batch"]),
        "--grad-accum", str(_microbatches(layout, global_batch)),
        "--steps", str(steps),
    ]
    return cmd
