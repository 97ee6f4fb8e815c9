"""A torchtitan 0.3.0 config module (a function returning Trainer.Config) for a planned layout.

torchtitan_config runs named steps: find the torchtitan model that is the profile (_torchtitan_model:
a registry preset, or the profile's own shape in the llama3 family when the family builds it
exactly, llama3_family_gaps), refuse what torchtitan cannot run (_refuse_what_torchtitan_cannot_run),
then the ParallelismConfig fields (_parallelism_fields, with _pipeline_fields) and TrainingConfig
fields (_training_fields), written into the module text (_module_text, with _own_model_parts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from engine.errors import UserError
from engine.sizing.export.layout import global_batch_of, norm_eps, pipeline_chunks, planned_layout, refuse_fp8, rope_base
from engine.sizing.refine import Layout
from engine.specs import ModelSpec, builtin_names, load_model

TORCHTITAN_RELEASE = "0.3.0"
# torchtitan's registry presets: a test builds each registry model and checks it against the LSDT
# profile (layers, widths, vocabulary, parameter count). profile -> (torchtitan model family module,
# registry flavour, the preset config function, the positions its RoPE table holds: ComplexRoPE
# max_seq_len, beyond which a sequence has no rotation to read). Families of 0.3.0 with no LSDT
# profile of their shapes (qwen3, qwen3_5, gpt_oss, kimi_k2_7) have nothing to map; an S7 two-phase
# MoE (expert stacks after a trunk) is no family's.
TORCHTITAN_MODELS = {
    "llama3-8b": ("torchtitan.models.llama3", "8B", "llama3_8b", 131_072),
    "llama3-70b": ("torchtitan.models.llama3", "70B", "llama3_70b", 131_072),
    "llama3-405b": ("torchtitan.models.llama3", "405B", "llama3_405b", 131_072),
    "deepseek-v3": ("torchtitan.models.deepseek_v3", "671B", "deepseek_v3_671b", 16_384),
}
# Any other Llama-architecture profile (RMSNorm, RoPE, SwiGLU, GQA or MHA, no biases: LLaMA 1's
# llama-7b / llama-13b) is built by the llama3 family's own classes with the profile's shape, as a
# flavour the exported file registers; it trains on the recipe (data, optimizer, checkpointing) of
# the family's 8B preset.
LLAMA3_FAMILY = "torchtitan.models.llama3"
CUSTOM_LLAMA_RECIPE = "llama3_8b"
# torchtitan's llama3_405b() preset converts the linear layers to Float8 through torchao
# (Float8LinearConverter), a precision the bf16 plan did not assume (FP8 plans are refused) and a
# package the preset needs even to load: llama3-405b trains torchtitan's 405B registry model on the
# 70B preset's recipe, with the 405B preset's tokenizer assets.
BF16_RECIPE = {"llama3-405b": ("llama3_70b", "./assets/hf/Llama-3.1-405B")}
# Fields that set how a profile trains, not the registry model's shape: the training sequence length
# is TrainingConfig.seq_len, and torchtitan's DeepSeek-V3 family builds MTP modules on request
# (model_registry(num_mtp_layers=N), trained with MTPLoss).
_NOT_SHAPE = {"seq_len", "source", "mtp_layers"}
_MTP_FAMILY = "torchtitan.models.deepseek_v3"


@dataclass(frozen=True)
class _Registry:
    module: str  # the model family
    flavour: str
    preset: str  # the family's config_registry function for this flavour (a custom shape: the recipe it trains on)
    rope_positions: int  # the RoPE table's length (ComplexRoPE.Config.max_seq_len)
    custom: bool = False  # a flavour the exported file registers: the profile's own shape in the llama3 family
    assets: str = ""  # set when the recipe is another model's: the file sets model_spec, the loss vocabulary and this hf_assets_path


def llama3_family_gaps(model: ModelSpec) -> list[str]:
    """What of this profile torchtitan's llama3 family cannot build; none: the family builds exactly
    the model LSDT sized (RMSNorm, RoPE, SwiGLU of the profile's d_ff, GQA or MHA of d_model / n_head
    per head, no biases, tied or untied embeddings)."""
    family = f"torchtitan {TORCHTITAN_RELEASE}'s llama3 family"
    gaps = []
    if model.ffn != "swiglu":
        gaps.append(f"{model.ffn} FFN ({family} has SwiGLU only)")
    if model.trunk_layers:
        gaps.append(f"two-phase MoE (expert stacks after a {model.trunk_layers}-block trunk, which no torchtitan family builds)")
    elif model.n_experts:
        gaps.append(f"{model.n_experts}-expert MoE layers ({family} is dense)")
    if model.is_mla:
        gaps.append(f"multi-head latent attention (kv_lora_rank {model.kv_lora_rank}; {family} has GQA only)")
    elif model.head_dim * model.n_head != model.d_model:
        gaps.append(f"head_dim {model.head_dim} x {model.n_head} heads != d_model {model.d_model} "
                    f"({family} gives each head d_model / n_head)")
    if "S" in model.window_pattern:
        gaps.append(f"sliding-window layers (window_pattern {model.window_pattern!r}; {family} attends over the full context)")
    return gaps


def _torchtitan_model(model: ModelSpec) -> _Registry:
    """The registry preset that is this profile, else the profile's own shape in the llama3 family,
    else a UserError naming what torchtitan lacks."""
    found = TORCHTITAN_MODELS.get(model.name)
    if found is not None:
        registry = _Registry(*found)
        changed = []
        if model.name in builtin_names("models"):
            shipped = load_model(model.name).to_dict()
            changed = [(k, v, shipped[k]) for k, v in model.to_dict().items() if k not in _NOT_SHAPE and v != shipped[k]]
        if not changed:
            if model.seq_len > registry.rope_positions:
                raise UserError(f"torchtitan export: sequences of {model.seq_len:,} tokens exceed the {registry.rope_positions:,} "
                                f"positions of torchtitan's {registry.flavour} RoPE table; accepted: a plan made with --seq {registry.rope_positions} or less")
            if model.name in BF16_RECIPE:
                recipe, assets = BF16_RECIPE[model.name]
                return replace(registry, preset=recipe, assets=assets)
            return registry
        if registry.module != LLAMA3_FAMILY:
            key, value, theirs = changed[0]
            raise UserError(f"torchtitan export: model {model.name!r} sets {key} = {value!r}, and torchtitan's "
                            f"{registry.flavour} registry model has {theirs!r}; accepted: the shipped profile's shape")
    gaps = llama3_family_gaps(model)
    if gaps:
        raise UserError(
            f"torchtitan export: model {model.name!r} has what torchtitan {TORCHTITAN_RELEASE} cannot build: {'; '.join(gaps)}; "
            f"accepted: a Llama-architecture profile (SwiGLU, dense, full attention, d_model / n_head per head) or a "
            f"registry preset ({', '.join(TORCHTITAN_MODELS)}); use --to megatron or --to torchrun for other models"
        )
    return _Registry(LLAMA3_FAMILY, f"lsdt-{model.name}", CUSTOM_LLAMA_RECIPE, model.seq_len, custom=True,
                     assets=f"./assets/hf/{model.name}")


def _refuse_what_torchtitan_cannot_run(model: ModelSpec, lay: Layout, registry: _Registry, precision: str) -> None:
    refuse_fp8("torchtitan", precision)
    if lay.ep > 1 and not model.n_experts:
        raise UserError(f"torchtitan export: the layout has EP {lay.ep} and {model.name} has no experts; accepted: ep = 1")
    shard = lay.dp if lay.zero else 1
    if lay.ep > 1 and (shard * lay.cp * lay.tp) % lay.ep:
        raise UserError(
            f"torchtitan export: torchtitan {TORCHTITAN_RELEASE} draws EP {lay.ep} from the FSDP x CP x TP ranks "
            f"({shard} x {lay.cp} x {lay.tp}; ParallelDims: efsdp = dp_shard x cp x tp / ep); accepted: a layout whose "
            "EP divides them (ZeRO >= 1 shards over DP)"
        )
    if model.mtp_layers and (registry.module != _MTP_FAMILY or lay.pp > 1 or lay.cp > 1):
        raise UserError(
            f"torchtitan export: model {model.name!r} trains {model.mtp_layers} MTP module(s), which torchtitan "
            f"{TORCHTITAN_RELEASE} builds in its DeepSeek-V3 family only and without pipeline or context parallelism "
            f"(MTPDecoder); this layout has PP {lay.pp}, CP {lay.cp}; accepted: pp = cp = 1, or --to megatron"
        )
    if model.tie_embeddings and lay.pp > 1:
        raise UserError(f"torchtitan export: {model.name} ties its embedding to the LM head, and torchtitan "
                        f"{TORCHTITAN_RELEASE} ties none under pipeline parallelism (Decoder.Config); this layout has "
                        f"PP {lay.pp}; accepted: pp = 1, or --to megatron")
    if lay.recompute == "selective" and model.is_mla:
        raise UserError(
            f"torchtitan export: the plan's selective recompute of {model.name} (MLA) is DeepSeek-V3's recipe (norms, MLA "
            f"up-projections, the experts' SwiGLU output; engine/sizing/memory.py), and torchtitan {TORCHTITAN_RELEASE}'s "
            "SelectiveAC saves other activations; accepted: a layout with recompute none or full (--layout N), or --to megatron"
        )
    if lay.offload_activations:
        raise UserError(
            f"torchtitan export: the layout offloads activations, and torchtitan {TORCHTITAN_RELEASE} has no "
            "activation offload; accepted: a layout without offload_activations (--layout N), or --to megatron"
        )
    if (lay.offload_optimizer or lay.offload_weights) and lay.zero == 0:
        raise UserError("torchtitan export: torchtitan offloads through FSDP (training.enable_cpu_offload), and this "
                        "layout does not shard (ZeRO 0); accepted: an offloading layout with ZeRO >= 1")


def torchtitan_config(model: ModelSpec, layout: dict, global_batch: int, steps: int, precision: str = "bf16") -> str:
    """A torchtitan config module: torchtitan's preset for the model (tokenizer, data, optimizer,
    checkpointing), or for a Llama-architecture profile of no preset the profile's shape built by the
    llama3 family's classes on the 8B preset's recipe, with LSDT's batch, parallel layout and
    recompute (and MTP where the plan trains it). Run it with
    `torchrun --nproc-per-node N -m torchtitan.train --module <file stem> --config <function>`."""
    registry = _torchtitan_model(model)
    lay = planned_layout(layout)
    _refuse_what_torchtitan_cannot_run(model, lay, registry, precision)
    B = global_batch_of(layout, global_batch)
    par = _parallelism_fields(lay) + (_pipeline_fields(model, lay) if lay.pp > 1 else [])
    return _module_text(model, lay, registry, _training_fields(model, lay, B, steps), par)


def _parallelism_fields(lay: Layout) -> list[str]:
    """ZeRO 0 replicates over DP; 1 and 2 shard with FSDP2 and keep weights gathered through the
    step (reshard "never"); 3 reshards them after forward."""
    par = [f"tensor_parallel_degree={lay.tp}", f"enable_sequence_parallel={bool(lay.sequence_parallel and lay.tp > 1)}",
           f"context_parallel_degree={lay.cp}", f"expert_parallel_degree={lay.ep}"]
    if lay.zero == 0:
        return par + [f"data_parallel_replicate_degree={lay.dp}", "data_parallel_shard_degree=1"]
    reshard = "always" if lay.zero >= 3 else "never"
    return par + ["data_parallel_replicate_degree=1", f"data_parallel_shard_degree={lay.dp}", f'fsdp_reshard_after_forward="{reshard}"']


def _pipeline_fields(model: ModelSpec, lay: Layout) -> list[str]:
    """The stages given module by module, so torchtitan builds exactly the planned split (even,
    interleaved or uneven); micro-batches of the planned size."""
    chunks = pipeline_chunks(model, lay)
    if 0 in chunks[1:-1]:
        s = chunks.index(0, 1)
        raise UserError(
            f"torchtitan export: PP {lay.pp} x {lay.interleave} virtual stages leave stage {s} (rank {s % lay.pp}) without a "
            f"layer (first_stage_layers={lay.first_stage_layers}, last_stage_layers={lay.last_stage_layers}), and torchtitan "
            f"{TORCHTITAN_RELEASE} builds an optimizer per stage, which refuses one with no parameters; accepted: end "
            "stages of at least v layers, or --to megatron (--pipeline-model-parallel-layout)"
        )
    parts, first = [], 0
    for i, n in enumerate(chunks):
        names = [f"layers.{j}" for j in range(first, first + n)]
        first += n
        parts.append((["tok_embeddings"] if i == 0 else []) + names + (["norm", "lm_head"] if i == len(chunks) - 1 else []))
    schedule = "Interleaved1F1B" if lay.interleave > 1 else "1F1B"
    return [f"pipeline_parallel_degree={lay.pp}", f'pipeline_parallel_schedule="{schedule}"',
            f"pipeline_parallel_microbatch_size={lay.micro_batch}",
            "module_fqns_per_model_part=[" + "".join(f"\n                {part!r}," for part in parts) + "\n            ]"]


def _training_fields(model: ModelSpec, lay: Layout, global_batch: int, steps: int) -> list[str]:
    training = [f"global_batch_size={global_batch}", f"seq_len={model.seq_len}", f"steps={steps}"]
    if lay.pp > 1:
        # One pipeline step runs all of a replica's micro-batches: local batch = B / dp.
        training = [f"local_batch_size={global_batch // lay.dp}"] + training + ["disable_cuda_graphs=True"]  # required with PP
    else:
        # Without PP torchtitan accumulates gradients over B / (local batch x dp) micro-steps.
        training = [f"local_batch_size={lay.micro_batch}"] + training
    if lay.offload_optimizer or lay.offload_weights:
        training += ["enable_cpu_offload=True"]
    return training


def _identifier(text: str) -> str:
    name = re.sub(r"\W", "_", text).strip("_").lower()
    return name if name and not name[0].isdigit() else f"lsdt_{name}"


def _docstring_safe(text: str) -> str:
    """Profile text (a name, a source) inside the module's docstring: no escape and no closing quotes."""
    return text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')


def _module_text(model: ModelSpec, lay: Layout, registry: _Registry, training: list[str], par: list[str]) -> str:
    recompute = {"full": "FullAC.Config()", "selective": "SelectiveAC.Config()"}.get(lay.recompute, "None")
    fn = _identifier(f"lsdt_{model.name}_dp{lay.dp}_tp{lay.tp}_pp{lay.pp}_cp{lay.cp}")
    indent = "\n            "
    shape = (f"DP {lay.dp} x TP {lay.tp} x PP {lay.pp}" + (f" (v={lay.interleave})" if lay.interleave > 1 else "")
             + (f" x CP {lay.cp}" if lay.cp > 1 else "") + (f", EP {lay.ep}" if lay.ep > 1 else ""))
    imports = [f"from {registry.module}.config_registry import {registry.preset}"]
    head, changes, shape_def, tokenizer_note = "", [], "", ""
    if registry.assets:
        more, shape_def, head, changes, tokenizer_note = _own_model_parts(model, registry)
        imports += more
    if model.mtp_layers:  # torchtitan's deepseek_v3_debugmodel_mtp recipe, on this flavour
        imports += ["from torchtitan.models.common.config_utils import decoder_vocab_size",
                    f"from {registry.module} import model_registry", f"from {registry.module}.mtp import MTPLoss"]
        head = f'    model_spec = model_registry("{registry.flavour}", attn_backend="flex", num_mtp_layers={model.mtp_layers})\n'
        changes += ["model_spec=model_spec,", "loss=MTPLoss.Config(global_vocab_size=decoder_vocab_size(model_spec)),"]
    changes += [f"training=TrainingConfig({indent}{(',' + indent).join(training)},\n        ),",
                f"parallelism=ParallelismConfig({indent}{(',' + indent).join(par)},\n        ),",
                f"activation_checkpoint={recompute},"]
    mtp_note = f", {model.mtp_layers} MTP module(s)" if model.mtp_layers else ""
    return f'''"""torchtitan {TORCHTITAN_RELEASE} config exported by LSDT (`lsdt export --to torchtitan`): {_docstring_safe(model.name)} on {lay.gpus} GPUs.

Run:  PYTHONPATH=<this file's folder> torchrun --nproc-per-node <GPUs per node> -m torchtitan.train --module <this file's stem> --config {fn}
Layout: {shape}, micro-batch {lay.micro_batch}, recompute {lay.recompute}, ZeRO {lay.zero}{mtp_note}.
{_docstring_safe(tokenizer_note)}"""

import dataclasses

from torchtitan.config import ParallelismConfig, TrainingConfig
from torchtitan.distributed.activation_checkpoint import FullAC, SelectiveAC  # noqa: F401 (one is used)
from torchtitan.trainer import Trainer
{chr(10).join(imports)}
{shape_def}

def {fn}() -> Trainer.Config:
{head}    # dataclasses.replace re-runs Trainer.Config's checks on the changed config
    return dataclasses.replace(
        {registry.preset}(),
        {(chr(10) + "        ").join(changes)}
    )
'''


def _own_model_parts(model: ModelSpec, registry: _Registry) -> tuple[list[str], str, str, list[str], str]:
    """What a file whose recipe is another model's adds: imports, the flavour function of a custom
    shape (_custom_llama_shape), the lines building the model spec, the Trainer.Config changes
    (model, loss vocabulary, tokenizer folder) and the header's model and tokenizer notes."""
    imports = [
        "from torchtitan.components.loss import ChunkedLossWrapper, CrossEntropyLoss",
        "from torchtitan.models.common.config_utils import decoder_vocab_size",
    ]
    changes = ["model_spec=model_spec,",
               "loss=ChunkedLossWrapper.Config(loss_fn=CrossEntropyLoss.Config(global_vocab_size=decoder_vocab_size(model_spec))),",
               f"hf_assets_path={registry.assets!r},"]
    if not registry.custom:
        imports.append(f"from {registry.module} import model_registry")
        note = (f"Model: torchtitan's {registry.flavour} registry model in bf16, on the {registry.preset} preset's recipe "
                f"(its own preset converts the linears to Float8 through torchao).\n")
        return imports, "", f'    model_spec = model_registry("{registry.flavour}")\n', changes, note
    more, shape_def, shape_fn = _custom_llama_shape(model, registry)
    head = (f"    llama3_configs[FLAVOUR] = {shape_fn}  # a flavour of the family, so model_registry builds its ModelSpec\n"
            "    model_spec = model_registry(FLAVOUR)\n")
    trained_with = f": the one the model was trained with (profile source: {model.source})" if model.source else ""
    note = (f"Model: {model.name}'s own shape in torchtitan's llama3 family (flavour {registry.flavour}), on the "
            f"{registry.preset} preset's recipe.\nTokenizer: none ships for this shape; put a Hugging Face tokenizer "
            f"of exactly {model.vocab_size:,} tokens (tokenizer.json, or vocab.json + merges.txt) in {registry.assets}{trained_with}.\n")
    return imports + more, shape_def, head, changes, note


def _custom_llama_shape(model: ModelSpec, registry: _Registry) -> tuple[list[str], str, str]:
    """The profile's shape as a llama3-family flavour, written with the family's own builders as its
    presets (_8b, _70b) use them: imports, the flavour function's text and its name. The FFN width
    is the profile's d_ff, given directly (torchtitan's FeedForward takes the final hidden_dim;
    compute_ffn_hidden_dim is only how its presets derive theirs)."""
    shape_fn = "_" + _identifier(f"{model.name}_shape")  # private: not one of the module's config functions
    embedding_init = "_EMBEDDING_SKIP_INIT" if model.tie_embeddings else "_EMBEDDING_INIT"  # the 1B / 3B presets' choice when tied
    imports = [
        "from torchtitan.models.common import ComplexRoPE, Embedding, Linear, RMSNorm",
        "from torchtitan.models.llama3 import Llama3Model, llama3_configs, model_registry",
        f"# the llama3 family's own builders, as its presets use them (private names of torchtitan {TORCHTITAN_RELEASE})",
        f"from torchtitan.models.llama3 import _build_llama3_layers, {embedding_init}, _NORM_INIT, _output_linear_init",
    ]
    shape_def = f'''
FLAVOUR = {registry.flavour!r}
NORM_EPS = {norm_eps(model)!r}


def {shape_fn}(attn_backend: str, tp_gemm_backend: str = "default") -> Llama3Model.Config:
    """The profile's shape as LSDT sized it, in the llama3 family (no RoPE scaling; RMSNorm eps NORM_EPS)."""
    dim, n_heads, vocab_size = {model.d_model}, {model.n_head}, {model.vocab_size}
    layers = _build_llama3_layers(
        fuse_qkv=True,
        n_layers={model.n_layer},
        dim=dim,
        n_heads=n_heads,
        n_kv_heads={model.n_kv_head},
        hidden_dim={model.d_ff},  # the profile's d_ff: FeedForward takes the final width
        rope=ComplexRoPE.Config(dim=dim // n_heads, max_seq_len={model.seq_len}, theta={rope_base(model)}, scaling="none"),
        attn_backend=attn_backend,
        tp_gemm_backend=tp_gemm_backend,
    )
    for block in layers:  # _build_llama3_layers leaves its norms at RMSNorm's default eps
        block.attention_norm.eps = block.ffn_norm.eps = NORM_EPS
    return Llama3Model.Config(
        dim=dim,
        vocab_size=vocab_size,
        enable_weight_tying={model.tie_embeddings},
        tok_embeddings=Embedding.Config(num_embeddings=vocab_size, embedding_dim=dim, param_init={embedding_init}),
        norm=RMSNorm.Config(normalized_shape=dim, eps=NORM_EPS, param_init=_NORM_INIT),
        lm_head=Linear.Config(in_features=dim, out_features=vocab_size, param_init=_output_linear_init(dim)),
        layers=layers,
    )
'''
    return imports, shape_def, shape_fn
