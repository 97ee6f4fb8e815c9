"""A torchrun command for LSDT's own trainer (engine.runtime.train.loop): DDP or FSDP2 as planned."""

from __future__ import annotations

from engine.errors import UserError
from engine.sizing.export.layout import DEFAULT_ROPE_BASE, global_batch_of, planned_layout, refuse_fp8


def torchrun_command(model_ref: str, layout: dict, global_batch: int, steps: int, gpus_per_node: int,
                     seq_len: int, rope: int = DEFAULT_ROPE_BASE, precision: str = "bf16") -> list[str]:
    """torchrun over LSDT's trainer: data parallelism, replicated (DDP) or sharded (FSDP2) as planned."""
    lay = planned_layout(layout)
    refuse_fp8("torchrun", precision)
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
    B = global_batch_of(layout, global_batch)
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
