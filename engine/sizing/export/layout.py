"""The planned layout an export reads, its pipeline split, and the model facts every target shares.

The layout is the engineering model's own record, engine/sizing/refine.Layout, read from a plan's
refined-layout row by refine.layout_from (one record, one reading: the defaults an export assumes
for a missing key are the ones the plan's prediction assumed). What a row holds beyond the record,
the GPUs it was planned on and the global batch the flexible batch rounded to, is read here.
"""

from __future__ import annotations

from dataclasses import fields

from engine.errors import UserError
from engine.sizing import megatron_args as mg
from engine.sizing.refine import Layout, layout_from
from engine.specs import ModelSpec

# RoPE frequency base: not a sizing input (no parameters, no FLOPs), but part of the model a run
# trains. Llama 3: 500,000 (Dubey et al. 2024, sec. 3.2.1; HF config.json rope_theta). Every other
# shipped profile: 10,000 (Su et al. 2021; LLaMA 1, nanochat, DeepSeek-V3's rope_theta, and LSDT's
# trainer default).
ROPE_BASE = {"llama3-8b": 500_000, "llama3-70b": 500_000, "llama3-405b": 500_000}
DEFAULT_ROPE_BASE = 10_000
# RMSNorm epsilon: not a sizing input either. LLaMA 1: 1e-6 (Touvron et al. 2023 reference code
# params.json norm_eps; HF huggyllama/llama-7b and -13b config.json rms_norm_eps). DeepSeek-V3: 1e-6
# (HF deepseek-ai/DeepSeek-V3 config.json rms_norm_eps). Every other profile: 1e-5 (Llama 3's HF
# config.json rms_norm_eps, torchtitan's and Megatron-LM's default).
NORM_EPS = {"llama-7b": 1e-6, "llama-13b": 1e-6, "deepseek-v3": 1e-6}
DEFAULT_NORM_EPS = 1e-5


# The refine.Layout fields the exports translate. A dimension the engineering model adds later is
# refused at a non-default value until an export says it in the engine's words, rather than dropped.
EXPORTED_LAYOUT_FIELDS = {"dp", "tp", "pp", "micro_batch", "recompute", "zero", "interleave", "sequence_parallel", "cp", "ep",
                          "first_stage_layers", "last_stage_layers", "offload_optimizer", "offload_weights",
                          "offload_activations"}


def planned_layout(row: dict) -> Layout:
    """refine.Layout of one refined layout of a plan (engine/plan.py REFINED_LAYOUT_KEYS), checked
    against the GPUs the row was planned on (gpus = dp x tp x pp x cp, both engines' convention:
    DP is what is left; EP borrows its ranks from DP x CP x TP)."""
    lay = layout_from(row)
    for f in fields(Layout):
        value = getattr(lay, f.name)
        if f.name not in EXPORTED_LAYOUT_FIELDS and value != f.default:
            raise UserError(f"export: the layout sets {f.name} = {value!r}, which the exports do not translate yet; "
                            "accepted: a layout without it (--layout N)")
    gpus = row.get("gpus", lay.gpus)
    if lay.gpus != gpus:
        raise UserError(f"export: layout of {gpus} GPUs is not DP {lay.dp} x TP {lay.tp} x PP {lay.pp} x CP {lay.cp}")
    return lay


def global_batch_of(row: dict, planned: int) -> int:
    """Sequences per step: the batch the plan's layout used (the flexible batch may have rounded
    the goal's), else the goal's."""
    return row.get("global_batch_used") or planned


def rope_base(model: ModelSpec) -> int:
    return ROPE_BASE.get(model.name, DEFAULT_ROPE_BASE)


def norm_eps(model: ModelSpec) -> float:
    return NORM_EPS.get(model.name, DEFAULT_NORM_EPS)


def pipeline_chunks(model: ModelSpec, lay: Layout) -> list[int]:
    """Decoder layers of each virtual pipeline stage in model order (stage s sits on rank s mod pp,
    the looped order of both Megatron's and torchtitan's interleaved schedules).

    A middle rank's layers split evenly over its v stages (the engineering model's rule: v divides
    the middle share). The lighter first and last ranks of an uneven split spread their layers as
    evenly as they go: the first rank's extra layers on its earliest stages, the last rank's on its
    latest, so a rank with fewer layers than v has empty stages (only Megatron's layout string can
    say that: uneven_chunks)."""
    ranks = mg.pipeline_stage_layers(model.n_layer, lay.pp, lay.first_stage_layers, lay.last_stage_layers)
    v = lay.interleave
    ends = {0} if lay.first_stage_layers is not None else set()
    if lay.last_stage_layers is not None:
        ends.add(lay.pp - 1)
    if ranks is None or any(r <= 0 for r in ranks) or any(r % v for i, r in enumerate(ranks) if i not in ends):
        raise UserError(
            f"export: {model.n_layer} layers do not split over PP {lay.pp} x {v} virtual stages with "
            f"first_stage_layers={lay.first_stage_layers}, last_stage_layers={lay.last_stage_layers}; "
            "accepted: whole layers on every rank, the middle ranks' a multiple of the virtual stages"
        )
    per_rank = []
    for i, r in enumerate(ranks):
        each, extra = divmod(r, v)
        stages = [each + 1] * extra + [each] * (v - extra)
        per_rank.append(stages[::-1] if i == lay.pp - 1 and i != 0 else stages)
    return [per_rank[s % lay.pp][s // lay.pp] for s in range(lay.pp * v)]


def uneven_chunks(lay: Layout, chunks: list[int]) -> bool:
    """True when some rank's virtual stages hold different numbers of layers (an end rank whose
    layers v does not divide), which per-rank layer counts cannot express."""
    return any(len({chunks[s] for s in range(r, len(chunks), lay.pp)}) > 1 for r in range(lay.pp))


def refuse_fp8(target: str, precision: str) -> None:
    if precision == "fp8":
        raise UserError(f"{target} export: the plan trains in FP8, which this export does not set up for {target}; "
                        "accepted: a bf16 plan, or --to megatron (--fp8-format hybrid)")
