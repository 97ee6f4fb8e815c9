"""The planned layout an export reads, its pipeline split, and the model facts every target shares."""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import UserError
from engine.sizing import megatron_args as mg
from engine.specs import ModelSpec

# RoPE frequency base: not a sizing input (no parameters, no FLOPs), but part of the model a run
# trains. Llama 3: 500,000 (Dubey et al. 2024, sec. 3.2.1; HF config.json rope_theta). Every other
# shipped profile: 10,000 (Su et al. 2021; LLaMA 1, nanochat, and LSDT's trainer default).
ROPE_BASE = {"llama3-8b": 500_000, "llama3-70b": 500_000, "llama3-405b": 500_000}
DEFAULT_ROPE_BASE = 10_000


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


def check_world(lay: Layout) -> None:
    if lay.dp * lay.tp * lay.pp * lay.cp != lay.gpus:
        raise UserError(f"export: layout of {lay.gpus} GPUs is not DP {lay.dp} x TP {lay.tp} x PP {lay.pp} x CP {lay.cp}")


def refuse_fp8(target: str, precision: str) -> None:
    if precision == "fp8":
        raise UserError(f"{target} export: the plan trains in FP8, which this export does not set up for {target}; "
                        "accepted: a bf16 plan, or --to megatron (--fp8-format hybrid)")


def global_batch_of(lay: Layout, planned: int) -> int:
    return lay.global_batch_used or planned
