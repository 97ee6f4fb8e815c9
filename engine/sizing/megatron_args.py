"""The Megatron-LM command-line surface LSDT's export relies on, recorded from one pinned release.

Megatron-LM's argument parser (megatron/training/arguments.py) is not on the package index
(megatron-core ships only megatron/core), so the flags `lsdt export --to megatron` writes are
checked against this record instead: each flag's destination, kind, type, choices and default
as the release's `add_megatron_arguments` builds them (read from the parser itself at that tag),
and the rules its `validate_args` and `TransformerConfig.__post_init__` enforce on them
(`rule_violations`, each rule with the source line it restates).

To move to a newer release: rebuild ARGUMENTS from that tag's parser, re-read the rules at the
cited places, update RELEASE/COMMIT, and run tests/sizing/test_export_megatron.py.
"""

from __future__ import annotations

import argparse
import ast
import re
from dataclasses import dataclass

RELEASE = "core_v0.19.0"  # github.com/NVIDIA/Megatron-LM tag, 2026-08-19
COMMIT = "5be9626709af2722333bf54797c954c09edeada3"
SOURCES = (
    "megatron/training/arguments.py",  # add_megatron_arguments (the parser), validate_args (the rules)
    "megatron/core/transformer/transformer_config.py",  # TransformerConfig.__post_init__ (stage and offload rules)
    "megatron/core/tokenizers/utils/build_tokenizer.py",  # vocab_size_with_padding
)


@dataclass(frozen=True)
class Arg:
    dest: str
    kind: str  # "value" (takes a value), "true" (store_true), "false" (store_false)
    type: str | None = None  # "int" | "float" | "str" | "moe_freq" (arguments.py moe_freq_type) for a value
    choices: tuple[str, ...] | None = None
    nargs: str | None = None
    default: object = None


# Every flag LSDT emits, as the release's parser defines it; --transformer-impl is recorded for its
# default (fine-grained activation offloading needs transformer_engine, which is the default).
# One table, one line per flag, deliberately not split: it is data read against the parser in one
# pass (benchmarks/megatron_check.py compares it entry by entry), and a move to a newer release is
# a diff of this table.
ARGUMENTS: dict[str, Arg] = {
    '--num-layers': Arg('num_layers', 'value', 'int', default=None),
    '--hidden-size': Arg('hidden_size', 'value', 'int', default=None),
    '--num-attention-heads': Arg('num_attention_heads', 'value', 'int', default=None),
    '--ffn-hidden-size': Arg('ffn_hidden_size', 'value', 'int', default=None),
    '--kv-channels': Arg('kv_channels', 'value', 'int', default=None),
    '--group-query-attention': Arg('group_query_attention', 'true', default=False),
    '--num-query-groups': Arg('num_query_groups', 'value', 'int', default=1),
    '--seq-length': Arg('seq_length', 'value', 'int', default=None),
    '--max-position-embeddings': Arg('max_position_embeddings', 'value', 'int', default=None),
    '--position-embedding-type': Arg('position_embedding_type', 'value', 'str', choices=('learned_absolute', 'rope', 'yarn', 'mrope', 'relative', 'none'), default='learned_absolute'),
    '--rotary-base': Arg('rotary_base', 'value', 'int', default=10000),
    '--normalization': Arg('normalization', 'value', 'str', choices=('LayerNorm', 'RMSNorm'), default='LayerNorm'),
    '--disable-bias-linear': Arg('add_bias_linear', 'false', default=True),
    '--swiglu': Arg('swiglu', 'true', default=False),
    '--squared-relu': Arg('squared_relu', 'true', default=False),
    '--untie-embeddings-and-output-weights': Arg('untie_embeddings_and_output_weights', 'true', default=False),
    '--tokenizer-type': Arg('tokenizer_type', 'value', 'str', choices=('BertWordPieceLowerCase', 'BertWordPieceCase', 'GPT2BPETokenizer', 'SentencePieceTokenizer', 'GPTSentencePieceTokenizer', 'HuggingFaceTokenizer', 'Llama2Tokenizer', 'TikTokenizer', 'MultimodalTokenizer', 'NullTokenizer', 'NullMultimodalTokenizer', 'SFTTokenizer'), default=None),
    '--vocab-size': Arg('vocab_size', 'value', 'int', default=None),
    '--make-vocab-size-divisible-by': Arg('make_vocab_size_divisible_by', 'value', 'int', default=128),
    '--norm-epsilon': Arg('layernorm_epsilon', 'value', 'float', default=1e-5),  # TransformerConfig.layernorm_epsilon's arg_names
    '--hidden-dropout': Arg('hidden_dropout', 'value', 'float', default=0.1),
    '--attention-dropout': Arg('attention_dropout', 'value', 'float', default=0.1),
    '--bf16': Arg('bf16', 'true', default=False),
    '--num-experts': Arg('num_experts', 'value', 'int', default=None),
    '--moe-router-topk': Arg('moe_router_topk', 'value', 'int', default=2),
    '--moe-ffn-hidden-size': Arg('moe_ffn_hidden_size', 'value', 'int', default=None),
    '--tensor-model-parallel-size': Arg('tensor_model_parallel_size', 'value', 'int', default=1),
    '--pipeline-model-parallel-size': Arg('pipeline_model_parallel_size', 'value', 'int', default=1),
    '--context-parallel-size': Arg('context_parallel_size', 'value', 'int', default=1),
    '--expert-model-parallel-size': Arg('expert_model_parallel_size', 'value', 'int', default=1),
    '--sequence-parallel': Arg('sequence_parallel', 'true', default=False),
    '--num-virtual-stages-per-pipeline-rank': Arg('num_virtual_stages_per_pipeline_rank', 'value', 'int', default=None),
    '--decoder-first-pipeline-num-layers': Arg('decoder_first_pipeline_num_layers', 'value', 'int', default=None),
    '--decoder-last-pipeline-num-layers': Arg('decoder_last_pipeline_num_layers', 'value', 'int', default=None),
    '--pipeline-model-parallel-layout': Arg('pipeline_model_parallel_layout', 'value', 'str', default=None),
    '--micro-batch-size': Arg('micro_batch_size', 'value', 'int', default=None),
    '--global-batch-size': Arg('global_batch_size', 'value', 'int', default=None),
    '--train-iters': Arg('train_iters', 'value', 'int', default=None),
    '--recompute-granularity': Arg('recompute_granularity', 'value', 'str', choices=('full', 'selective'), default=None),
    '--recompute-method': Arg('recompute_method', 'value', 'str', choices=('uniform', 'block'), default=None),
    '--recompute-num-layers': Arg('recompute_num_layers', 'value', 'int', default=None),
    # TransformerConfig fields, made flags by ArgumentGroupFactory (arguments.py, "transformer configuration").
    '--recompute-modules': Arg('recompute_modules', 'value', 'str', nargs='+', default=None),
    '--moe-grouped-gemm': Arg('moe_grouped_gemm', 'true', default=False),
    '--use-distributed-optimizer': Arg('use_distributed_optimizer', 'true', default=False),
    '--use-megatron-fsdp': Arg('use_megatron_fsdp', 'true', default=False),
    '--data-parallel-sharding-strategy': Arg('data_parallel_sharding_strategy', 'value', 'str', choices=('no_shard', 'optim', 'optim_grads', 'optim_grads_params'), default='optim_grads_params'),
    '--ckpt-format': Arg('ckpt_format', 'value', 'str', choices=('torch', 'torch_dist', 'torch_dcp', 'fsdp_dtensor'), default='torch_dist'),
    '--optimizer-cpu-offload': Arg('optimizer_cpu_offload', 'true', default=False),
    '--use-precision-aware-optimizer': Arg('use_precision_aware_optimizer', 'true', default=False),
    '--fine-grained-activation-offloading': Arg('fine_grained_activation_offloading', 'true', default=False),
    '--offload-modules': Arg('offload_modules', 'value', 'str', nargs='+', default=[]),
    '--grad-reduce-in-bf16': Arg('grad_reduce_in_bf16', 'true', default=False),
    '--fp8-format': Arg('fp8', 'value', 'str', choices=('e4m3', 'hybrid'), default=None),
    '--moe-router-pre-softmax': Arg('moe_router_pre_softmax', 'true', default=False),
    # DeepSeek-V2/V3 shapes: MLA (arguments.py _add_mla_args; --multi-latent-attention and
    # --qk-layernorm are TransformerConfig fields, made flags by ArgumentGroupFactory), shared
    # experts, dense-first layers (_add_moe_args: moe_freq_type, an int or a list pattern) and MTP.
    '--multi-latent-attention': Arg('multi_latent_attention', 'true', default=False),
    '--q-lora-rank': Arg('q_lora_rank', 'value', 'int', default=None),
    '--kv-lora-rank': Arg('kv_lora_rank', 'value', 'int', default=32),
    '--qk-head-dim': Arg('qk_head_dim', 'value', 'int', default=128),
    '--qk-pos-emb-head-dim': Arg('qk_pos_emb_head_dim', 'value', 'int', default=64),
    '--v-head-dim': Arg('v_head_dim', 'value', 'int', default=128),
    '--qk-layernorm': Arg('qk_layernorm', 'true', default=False),
    '--rope-type': Arg('rope_type', 'value', 'str', choices=('rope', 'yarn'), default=None),
    '--no-rope-fusion': Arg('apply_rope_fusion', 'false', default=True),
    '--moe-shared-expert-intermediate-size': Arg('moe_shared_expert_intermediate_size', 'value', 'int', default=None),
    '--moe-layer-freq': Arg('moe_layer_freq', 'value', 'moe_freq', default=1),
    '--mtp-num-layers': Arg('mtp_num_layers', 'value', 'int', default=None),
    '--transformer-impl': Arg('transformer_impl', 'value', 'str', choices=('local', 'transformer_engine', 'inference_optimized'), default='transformer_engine'),
}


def parser() -> argparse.ArgumentParser:
    """An argparse parser with the release's definitions of ARGUMENTS (and nothing else: an
    unknown flag is an error, as it is in Megatron-LM, whose parser does not allow abbreviations)."""
    p = argparse.ArgumentParser(prog="pretrain_gpt.py", allow_abbrev=False, exit_on_error=False)
    types = {"int": int, "float": float, "str": str, "moe_freq": moe_freq}
    for flag, a in ARGUMENTS.items():
        if a.kind == "true":
            p.add_argument(flag, dest=a.dest, action="store_true")
        elif a.kind == "false":
            p.add_argument(flag, dest=a.dest, action="store_false")
        else:
            p.add_argument(flag, dest=a.dest, type=types[a.type], choices=a.choices, nargs=a.nargs, default=a.default)
    return p


MAX_PATTERN = 1_000_000
_PATTERN_CHARS = re.compile(r"[^,\d\[\]\(\)\+\*]")


def moe_freq(text: str) -> int | list[int]:
    """arguments.py moe_freq_type: an int N (one MoE layer every N) or a list expression of 0
    (dense) and 1 (MoE) per layer, such as "[0]*3+[1]*58" (_eval_pattern: only digits , [ ] ( ) + *
    are allowed, then Python evaluates it; here a parser of that grammar evaluates it instead)."""
    if "[" not in text:
        return int(text)
    if _PATTERN_CHARS.search(text):
        raise ValueError(f"Invalid pattern: {text}")
    try:
        value = _eval_list_expr(ast.parse(text, mode="eval").body)
    except (SyntaxError, ValueError) as exc:
        raise ValueError(f"Invalid pattern: {text}") from exc
    if not isinstance(value, list):
        raise ValueError(f"Invalid pattern: {text}")
    return value


def _eval_list_expr(node: ast.AST) -> int | list:
    """Integers, list displays of them, + and * (what _eval_pattern's character set can spell)."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.List):
        return [_eval_list_expr(e) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_eval_list_expr(e) for e in node.elts)  # type: ignore[return-value]
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
        left, right = _eval_list_expr(node.left), _eval_list_expr(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(left, list) != isinstance(right, list) and max(abs(v) for v in (left, right) if isinstance(v, int)) > MAX_PATTERN:
            raise ValueError("pattern longer than any model")  # Python would build it; no model has that many layers
        return left * right
    raise ValueError(f"not an integer list expression: {ast.dump(node)}")


def moe_layer_pattern(freq: int | list[int], num_layers: int) -> list[int] | None:
    """gpt_layer_specs.get_gpt_decoder_layer_specs: 1 (MoE) / 0 (dense) per layer; None when the
    release refuses the pattern (a list not one entry per layer, or entries other than 0 / 1)."""
    if isinstance(freq, int):
        return [1 if i % freq == 0 else 0 for i in range(num_layers)] if freq > 0 else None
    if len(freq) != num_layers or set(freq) - {0, 1}:
        return None
    return list(freq)


def parse(flags: list[str]) -> argparse.Namespace:
    """The flags as the release's parser reads them; a flag it does not define, or a value it does
    not accept, raises argparse.ArgumentError."""
    ns, unknown = parser().parse_known_args(flags)
    if unknown:
        raise argparse.ArgumentError(None, f"not a Megatron-LM {RELEASE} argument: {unknown[0]}")
    return ns


def required_env(ns: argparse.Namespace) -> dict[str, str]:
    """Environment the release asserts on for these flags: validate_args requires
    CUDA_DEVICE_MAX_CONNECTIONS=1 with TP or CP > 1 on GPUs before Blackwell, unless an FSDP is used."""
    if (ns.tensor_model_parallel_size > 1 or ns.context_parallel_size > 1) and not ns.use_megatron_fsdp:
        return {"CUDA_DEVICE_MAX_CONNECTIONS": "1"}
    return {}


def padded_vocab_size(vocab_size: int, divisible_by: int, tp: int) -> int:
    """build_tokenizer.py vocab_size_with_padding: rounded up to a multiple of divisible_by x TP."""
    multiple = divisible_by * tp
    return -(-vocab_size // multiple) * multiple


def pipeline_stage_layers(n_layer: int, pp: int, first: int | None, last: int | None) -> list[int] | None:
    """Decoder layers on each pipeline rank as TransformerConfig splits them (uneven PP: the first
    and last ranks take `first` / `last`, the middle ranks share the rest evenly); None if the
    release refuses the split."""
    middle_layers, middle_ranks = n_layer, pp
    if first is not None:
        middle_layers, middle_ranks = middle_layers - first, middle_ranks - 1
    if last is not None:
        middle_layers, middle_ranks = middle_layers - last, middle_ranks - 1
    if middle_ranks < 0 or bool(middle_layers) != bool(middle_ranks) or (middle_ranks and middle_layers % middle_ranks):
        return None
    each = middle_layers // middle_ranks if middle_ranks else 0
    stages = [each] * pp
    if first is not None:
        stages[0] = first
    if last is not None:
        stages[-1] = last
    return stages


def rule_violations(ns: argparse.Namespace, world_size: int) -> list[str]:
    """The release's rules on the flags in ARGUMENTS, for a job of `world_size` ranks; each message
    names the rule and where it lives (arguments.py unless said otherwise)."""
    bad = []
    tp, pp, cp, ep = ns.tensor_model_parallel_size, ns.pipeline_model_parallel_size, ns.context_parallel_size, ns.expert_model_parallel_size
    model_size = tp * pp * cp
    if world_size % model_size:  # validate_args: "world size is not divisible by total_model_size"
        bad.append(f"world size {world_size} is not divisible by TP x PP x CP = {model_size} (validate_args)")
        return bad
    dp = world_size // model_size  # validate_args: data_parallel_size
    if ns.global_batch_size % (ns.micro_batch_size * dp):  # num_microbatches_calculator.py
        bad.append(f"global batch {ns.global_batch_size} is not a multiple of micro-batch x DP = {ns.micro_batch_size * dp}")
    if ns.num_attention_heads % tp:  # TransformerConfig: heads divide over TP
        bad.append(f"{ns.num_attention_heads} attention heads do not divide over TP {tp} (TransformerConfig)")
    groups = ns.num_query_groups if ns.group_query_attention else ns.num_attention_heads
    if ns.num_attention_heads % groups:
        bad.append(f"{groups} query groups do not divide {ns.num_attention_heads} heads")
    if groups % tp and tp % groups:  # TransformerConfig: query groups a multiple or divisor of TP
        bad.append(f"{groups} query groups are neither a multiple nor a divisor of TP {tp} (TransformerConfig)")
    if ns.sequence_parallel and tp == 1:  # validate_args turns it off with a warning; LSDT emits it only with TP > 1
        bad.append("--sequence-parallel with TP 1 (validate_args disables it)")
    if cp > 1 and ns.seq_length % (2 * cp):  # validate_args: CP load balancing cuts each sequence into 2 x CP chunks
        bad.append(f"sequence length {ns.seq_length} is not a multiple of 2 x CP = {2 * cp} (validate_args)")
    if ep > 1 and (ns.num_experts is None or ns.num_experts % ep):  # validate_args: expert parallelism check
        bad.append(f"expert parallel size {ep} needs --num-experts divisible by it (validate_args)")
    if world_size % (ep * tp * pp):  # core/parallel_state.py: expert TP (= TP) x EP x PP divides the world
        bad.append(f"EP {ep} x expert TP {tp} x PP {pp} does not divide the world size {world_size} (parallel_state)")
    first, last = ns.decoder_first_pipeline_num_layers, ns.decoder_last_pipeline_num_layers
    vpp = ns.num_virtual_stages_per_pipeline_rank
    stages = pipeline_stage_layers(ns.num_layers, pp, first, last)
    if ns.pipeline_model_parallel_layout is not None:
        bad += _layout_string_violations(ns)
    elif stages is None or any(s <= 0 for s in stages):  # TransformerConfig: uneven PP checks
        bad.append(f"{ns.num_layers} layers do not split over {pp} pipeline ranks with first={first}, last={last} (TransformerConfig)")
    elif vpp is not None and vpp > 1:
        if pp == 1:  # validate_args: interleaving needs PP > 1 (PP > 2 without p2p overlap, which is on by default)
            bad.append("virtual pipeline stages with PP 1 (validate_args)")
        if any(s % vpp for s in stages):  # TransformerConfig: layers on each rank divisible by VPP
            bad.append(f"pipeline ranks' layers {sorted(set(stages))} are not divisible by {vpp} virtual stages (TransformerConfig)")
    if ns.recompute_granularity == "full" and (ns.recompute_method is None or ns.recompute_num_layers is None):
        bad.append("--recompute-granularity full needs --recompute-method and --recompute-num-layers (TransformerConfig)")
    if ns.recompute_granularity == "selective" and ns.recompute_method is not None:  # validate_args
        bad.append("--recompute-method is not supported with selective recompute (validate_args)")
    if ns.recompute_granularity == "selective" and ns.recompute_modules:  # TransformerConfig.__post_init__
        allowed = {"core_attn", "moe_act", "layernorm", "mla_up_proj", "mlp", "moe", "shared_experts", "gdn_norm_out"}
        if set(ns.recompute_modules) - allowed:
            bad.append(f"--recompute-modules {ns.recompute_modules}; accepted: some of {sorted(allowed)} (TransformerConfig)")
        if "moe_act" in ns.recompute_modules and not ns.moe_grouped_gemm:
            bad.append("--recompute-modules moe_act needs --moe-grouped-gemm (TransformerConfig)")
        if "mla_up_proj" in ns.recompute_modules and not ns.multi_latent_attention:
            bad.append("--recompute-modules mla_up_proj needs --multi-latent-attention (TransformerConfig)")
    if ns.use_megatron_fsdp and ns.ckpt_format != "fsdp_dtensor":  # validate_args: Megatron-FSDP checkpoint format
        bad.append("--use-megatron-fsdp requires --ckpt-format fsdp_dtensor (validate_args)")
    if ns.optimizer_cpu_offload and not ns.use_precision_aware_optimizer:  # validate_args: optimizer CPU offload
        bad.append("--optimizer-cpu-offload requires --use-precision-aware-optimizer (validate_args)")
    if ns.fine_grained_activation_offloading:  # validate_args + TransformerConfig
        if ns.transformer_impl != "transformer_engine":
            bad.append("fine-grained activation offloading needs --transformer-impl transformer_engine (validate_args)")
        allowed = {"core_attn", "attn_proj", "expert_fc1", "fused_group_mlp", "moe_act", "attn_norm", "mlp_norm", "qkv_linear"}
        if not ns.offload_modules or set(ns.offload_modules) - allowed:
            bad.append(f"--offload-modules {ns.offload_modules}; accepted: some of {sorted(allowed)} (TransformerConfig)")
    if ns.num_experts and ns.moe_router_topk == 1 and not ns.moe_router_pre_softmax:  # TransformerConfig (softmax router)
        bad.append("--moe-router-topk 1 needs --moe-router-pre-softmax (TransformerConfig)")
    return bad + _deepseek_rule_violations(ns)


def pipeline_layout_stages(layout: str) -> list[str]:
    """PipelineParallelLayerLayout.parse_str_to_list (core/transformer/pipeline_parallel_layer_layout.py):
    commas dropped, "(...)*n" then "x*n" unrolled, split at "|"; each stage a string of E
    (embedding), t (decoder layer), m (MTP layer), L (loss)."""
    layout = layout.replace(",", "")
    for pattern in (r"\(([^)]+)\)\*(\d+)", r"(.)\*(\d+)"):
        layout = re.sub(pattern, lambda m: m.group(1) * int(m.group(2)), layout)
    return layout.split("|")


def _layout_string_violations(ns: argparse.Namespace) -> list[str]:
    """The release's rules on --pipeline-model-parallel-layout (validate_args, TransformerConfig,
    PipelineParallelLayerLayout.__init__ / validate_layer_layout)."""
    pp, stages = ns.pipeline_model_parallel_size, pipeline_layout_stages(ns.pipeline_model_parallel_layout)
    flat = "".join(stages)
    if set(flat) - set("ELtm"):
        return [f"--pipeline-model-parallel-layout has {sorted(set(flat) - set('ELtm'))}; known layer characters: E, L, t, m"]
    bad = []
    if ns.num_virtual_stages_per_pipeline_rank is not None:  # validate_args: at most one way to set VPP
        bad.append("--pipeline-model-parallel-layout with --num-virtual-stages-per-pipeline-rank (validate_args)")
    if ns.decoder_first_pipeline_num_layers is not None or ns.decoder_last_pipeline_num_layers is not None:  # TransformerConfig
        bad.append("--pipeline-model-parallel-layout with --decoder-first/last-pipeline-num-layers (TransformerConfig)")
    if len(stages) % pp:  # validate_args
        bad.append(f"{len(stages)} layout stages do not divide over PP {pp} (validate_args)")
    if not flat.startswith("E") or not flat.endswith("L") or flat.count("E") != 1 or flat.count("L") != 1:
        bad.append("the layout must start with E and end with L, each once (PipelineParallelLayerLayout)")
    if flat.count("t") != ns.num_layers:
        bad.append(f"the layout holds {flat.count('t')} decoder layers, not --num-layers {ns.num_layers} (PipelineParallelLayerLayout)")
    mtp = flat.count("m")
    if mtp != (ns.mtp_num_layers or 0):
        bad.append(f"the layout holds {mtp} MTP layers, not --mtp-num-layers {ns.mtp_num_layers} (PipelineParallelLayerLayout)")
    elif mtp:
        holder = next(i for i, stage in enumerate(stages) if "m" in stage)
        if "t" in flat[flat.index("m"):]:
            bad.append("decoder layers must be placed before MTP layers (PipelineParallelLayerLayout)")
        if holder < len(stages) - pp:  # the stages of the last virtual round are each rank's last
            bad.append("MTP layers must sit in the last virtual stage of a rank (PipelineParallelLayerLayout)")
    return bad


def _deepseek_rule_violations(ns: argparse.Namespace) -> list[str]:
    """The release's rules on the MLA, shared-expert, dense-first and MTP flags."""
    bad = []
    if ns.multi_latent_attention:
        if ns.group_query_attention:  # validate_args
            bad.append("group query attention is mutually exclusive with multi latent attention (validate_args)")
        # MLATransformerConfig.__post_init__: fused RoPE only with YaRN, and MLA's default rope_type is yarn
        if ns.apply_rope_fusion and ns.rope_type == "rope":
            bad.append("--rope-type rope with MLA needs --no-rope-fusion (MLATransformerConfig)")
    if ns.num_experts:
        if moe_layer_pattern(ns.moe_layer_freq, ns.num_layers) is None:  # gpt_layer_specs: one 0/1 per layer
            bad.append(f"--moe-layer-freq {ns.moe_layer_freq} is not one 0 (dense) or 1 (MoE) per each of {ns.num_layers} layers (gpt_layer_specs)")
        if ns.moe_shared_expert_intermediate_size is not None and ns.moe_shared_expert_intermediate_size <= 0:  # TransformerConfig
            bad.append(f"--moe-shared-expert-intermediate-size {ns.moe_shared_expert_intermediate_size} must be > 0 (TransformerConfig)")
    if ns.mtp_num_layers and ns.position_embedding_type not in ("learned_absolute", "rope", "mrope", "none"):  # validate_args
        bad.append(f"multi-token prediction with {ns.position_embedding_type} position embeddings (validate_args)")
    return bad
