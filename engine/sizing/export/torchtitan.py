"""A torchtitan 0.3.0 config module (a function returning Trainer.Config) for a planned layout."""

from __future__ import annotations

import re

from engine.errors import UserError
from engine.sizing.export.layout import Layout, check_world, global_batch_of, pipeline_chunks, refuse_fp8
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
    check_world(lay)
    refuse_fp8("torchtitan", precision)
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
    B = global_batch_of(lay, global_batch)
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
