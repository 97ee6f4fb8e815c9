"""Step 2 — the engineering model: step time, MFU and memory per GPU of one concrete layout.

API (the CLI `lsdt predict`, `lsdt plan` and the TUI all call these; stdlib only):

    predict(model, hardware, gpus=, tp=, pp=, global_batch=, dp=None, micro_batch="auto",
            seq_len=None, recompute="auto", zero=1, interleave=1, sequence_parallel=None,
            precision="bf16", efficiency=None, attention="flash", dropout=False) -> dict
        the exact JSON of `lsdt predict --json` (keys in PREDICT_KEYS).
    EngineeringModel(model, hardware, ...).evaluate(Layout(...)) -> dict
        the same for a fully resolved layout; caches per-shape costs, which the search reuses.

Time of one optimizer step (every term is in `breakdown`):

    t_f, t_b   one micro-batch through the slowest pipeline stage, forward / backward (+ recompute):
               per layer, roofline GEMMs (efficiency.gemm_time_s) + attention core + memory-bound
               elementwise kernels (bytes counted below / HBM bandwidth) + exposed TP collectives;
               the last stage adds the logits GEMM and the cross-entropy.
    pipeline   (m + (p-1)/v) (t_f + t_b)     1F1B, interleaved with v chunks (Narayanan et al.
               2021, sec. 2.2): the bubble is (p-1)/(v m) of the useful time.
    pp_comm    2 (v m + p - 1) sends of one micro-batch's boundary activation (1/t of it: Megatron's
               scatter/gather optimisation), on the inter-node tier when the job spans nodes.
    dp_comm    ZeRO 0/1: one gradient all-reduce (reduce-scatter + all-gather) per step;
               ZeRO 2: a reduce-scatter per micro-batch; ZeRO 3: all-gather (forward), all-gather
               (backward) and reduce-scatter per micro-batch (Rajbhandari et al. 2020, sec. 7).
               Overlapped with the backward (and forward) it shadows; only the excess is exposed.
    optimizer  Adam's streaming update: 26 + grad bytes per local parameter through HBM.

    step_time_s = pipeline + exposed pp_comm + exposed dp_comm + optimizer

Memory per GPU = the larger of the first stage (embedding, L/p layers x min(m, p) micro-batches
in flight) and the last (logits in fp32); see engine/sizing/memory.py for every term.

FLOP conventions: `model_tflops_per_gpu` and `mfu` count counts.flops_per_token (the PaLM / F72
convention: no recompute, full-context attention); `hardware_tflops_per_gpu` adds the recomputed
forward (full: every layer; selective: the attention core), Megatron's F96 convention.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from engine.errors import UserError
from engine.sizing import collectives as coll
from engine.sizing import memory as mem
from engine.sizing.counts import attention_context, attention_width, flops_per_token, param_counts
from engine.sizing.design import divisors
from engine.sizing.efficiency import Efficiency, efficiency_for, gemm_time_s, mem_time_s
from engine.sizing.physics import MAX_GLOBAL_BATCH_SEQS
from engine.specs import PRECISIONS, HardwareSpec, ModelSpec

RECOMPUTE = ("none", "selective", "full")
ZERO_STAGES = (0, 1, 2, 3)
ATTENTION_KERNELS = ("flash", "unfused")
PREDICT_KEYS = (
    "step_time_s", "tokens_per_s_per_gpu", "model_tflops_per_gpu", "hardware_tflops_per_gpu", "mfu",
    "memory_per_gpu_bytes", "fits", "chosen", "breakdown",
)

# Adam's update streams fp32 master weights, m and v in and out (4 x 3 x 2 = 24 B) and writes the
# bf16 copy (2 B), and reads the gradient: 26 + grad bytes per parameter (PyTorch fused AdamW).
OPTIMIZER_STREAM_BYTES = 26
# Cross-entropy over V logits per token: write bf16 logits 2, fp32 upcast read/write 8, softmax
# read/write 8, gradient write 2 -- about 20 bytes per logit (Megatron's vocab-parallel kernel).
CROSS_ENTROPY_BYTES_PER_LOGIT = 20


@dataclass(frozen=True)
class Layout:
    """A fully resolved parallel layout of one training step.

    GPUs = dp x tp x pp x cp. `cp` splits every sequence into cp chunks (context parallelism, ring
    attention); `ep` shards each MoE layer's routed experts over ep ranks of the data-parallel group
    (expert parallelism; ep divides dp). `first_stage_layers` / `last_stage_layers` give the first /
    last pipeline stage fewer layers (Megatron's --decoder-first/last-pipeline-num-layers); None
    splits evenly (ceil(L/pp) per stage); with interleaving the other stages' share splits into v. The offload flags keep optimizer state, weights or stored
    activations in host memory, streamed over the host link.
    """

    dp: int
    tp: int
    pp: int
    micro_batch: int
    recompute: str = "none"
    zero: int = 1
    interleave: int = 1
    sequence_parallel: bool = True
    cp: int = 1
    ep: int = 1
    first_stage_layers: int | None = None
    last_stage_layers: int | None = None
    offload_optimizer: bool = False
    offload_weights: bool = False
    offload_activations: bool = False

    @property
    def gpus(self) -> int:
        return self.dp * self.tp * self.pp * self.cp

    @property
    def offload(self) -> str:
        """What lives in host memory: "opt+w+act", or "" when nothing does."""
        parts = [name for name, on in (("opt", self.offload_optimizer), ("w", self.offload_weights), ("act", self.offload_activations)) if on]
        return "+".join(parts)

    @property
    def stages(self) -> str:
        """Layers on the lighter end stages ("first 7 last 7"); "" for an even split."""
        ends = [f"{name} {n}" for name, n in (("first", self.first_stage_layers), ("last", self.last_stage_layers)) if n is not None]
        return " ".join(ends)

    def text(self) -> str:
        """The full layout on one line: DP x TP x PP x CP x EP, v, mb, recompute, ZeRO (+ stages, offload)."""
        out = f"{self.dp} x {self.tp} x {self.pp} x {self.cp} x {self.ep}, v{self.interleave}, mb{self.micro_batch}, {self.recompute}, ZeRO {self.zero}"
        if self.stages:
            out += f", stages {self.stages}"
        if self.offload:
            out += f", offload {self.offload}"
        return out

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _LayerCost:
    """Seconds for one (average) layer and one micro-batch on one GPU (given tp, sp, mb, cp, ep)."""

    gemm_f: float
    attn_f: float
    attn_b: float
    elem_f: float
    tp_f: float  # one forward's TP collectives
    head_f: float  # logits + cross-entropy forward (last stage)
    head_b: float
    embed: float  # embedding gather + scatter-add (first stage), forward + backward
    ep_f: float = 0.0  # one forward's expert-parallel all-to-alls (dispatch + combine), not overlapped
    cp_f: float = 0.0  # one forward's context-parallel K/V ring exchange (overlaps the attention core)
    selective_f: float = 0.0  # what selective recompute runs again: the unfused attention core, MLA up-projections


class EngineeringModel:
    """The Step-2 model of one (model, hardware, seq_len, software) combination."""

    def __init__(
        self,
        model: ModelSpec,
        hardware: HardwareSpec,
        seq_len: int | None = None,
        precision: str = "bf16",
        efficiency: Efficiency | None = None,
        attention: str = "flash",
        dropout: bool = False,
        ep_overlap: bool = False,
        zero3_recompute_gather: bool = False,
    ):
        """`ep_overlap`: the stack overlaps the MoE all-to-alls with another micro-batch's compute
        (DeepSeek-V3's DualPipe, sec. 3.2.1; Megatron-core's EP A2A overlap); then they cost what any
        overlapped collective exposes. Off: fully exposed (Megatron's default schedule).

        `zero3_recompute_gather`: under ZeRO-3 with full recompute, the stack all-gathers a layer's
        weights again for its recomputed forward. DeepSpeed's ZeRO-3 does: its pre-forward hook
        fetches and its post-forward hook releases the weights on every forward, the recomputed one
        inside the backward included (deepspeedai/DeepSpeed#4784 traces the recompute through
        pre_sub_module_forward_function), then the pre-backward hook fetches them once more -- three
        all-gathers per micro-batch instead of two. PyTorch FSDP keeps the weights it unsharded for
        the recompute through the backward (its post-forward skips the reshard in the backward
        pass): off, two all-gathers."""
        if precision not in PRECISIONS:
            raise UserError(f"precision = {precision!r}; accepted: {' | '.join(PRECISIONS)}")
        if precision == "fp8" and not hardware.peak_flops_fp8:
            raise UserError(
                f"precision = 'fp8': hardware {hardware.name} has no peak_flops_fp8; accepted: bf16 | bf16-fp32grad, "
                "or add peak_flops_fp8 to a copy of the profile"
            )
        if attention not in ATTENTION_KERNELS:
            raise UserError(f"attention = {attention!r}; accepted: {' | '.join(ATTENTION_KERNELS)}")
        if seq_len and seq_len != model.seq_len:  # windows and context follow the trained length
            model = model.with_(seq_len=int(seq_len))
        self.model, self.hw = model, hardware
        self.seq = model.seq_len
        self.precision, self.attention, self.dropout = precision, attention, dropout
        self.ep_overlap = ep_overlap
        self.zero3_recompute_gather = zero3_recompute_gather
        self.fp8 = precision == "fp8"  # the layers' GEMMs in FP8; attention core and LM head in bf16
        self.eff = efficiency or efficiency_for(hardware)
        counts = param_counts(model)
        self.counts = counts
        L, h, V = model.n_layer, model.d_model, model.vocab_size
        head_matmul = V * h
        # Multi-token-prediction modules (DeepSeek-V3 sec. 2.2): each one MoE block (+ a 2h x h
        # projection) after the last layer, sharing the main output head; they run on the last
        # pipeline stage (V3 sec. 3.2.1 keeps the output head and the MTP module on one PP rank)
        # and compute the logits once more each.
        self.mtp = model.mtp_layers if counts.mtp else 0
        slots = L + self.mtp
        # Average parameters per layer (MTP blocks counted as layers): all of them (memory) and
        # those a token multiplies (time); of them, the routed experts, which EP shards.
        self.layer_params = (counts.matmul_total - head_matmul) / slots
        self.layer_params_active = (counts.matmul_active - head_matmul) / slots
        self.layer_expert_params = (counts.routed_experts + self.mtp * model.n_experts * counts.mlp_per_layer) / slots
        # Tied embeddings: one matrix when the first and last stage are the same GPU, a copy each
        # (Megatron's shared-embedding group) when they are not.
        self.embed_params = counts.embedding
        self.head_params = head_matmul
        self.terms = mem.activation_terms(model, self.seq, attention, dropout, precision)
        # Attention keys per query, summed over layers: causal for flash (skips masked tiles),
        # full s x s for unfused kernels (they compute the masked half too).
        self.ctx_kernel = attention_context(model, self.seq, causal=(attention == "flash")) / L
        self.ctx_model = attention_context(model, self.seq, causal=False) / L
        self.fpt_model = flops_per_token(model, self.seq)  # F72 / PaLM convention, no recompute
        self.block_factor = mem._active_mlp_factor(model) if counts.trunk_layers else 1.0
        self._cache: dict[tuple, _LayerCost] = {}

    # ------------------------------------------------------------------ per-layer costs

    def _attention_gemms(self, n: float, tp: int) -> float:
        """Forward time of one layer's attention projections for n tokens."""
        m, hw, eff, fp8 = self.model, self.hw, self.eff, self.fp8
        h = m.d_model
        if m.is_mla:  # DeepSeek-V2/V3 multi-head latent attention: low-rank q and kv projections
            q_out = m.n_head * (m.qk_nope_head_dim + m.qk_rope_head_dim)
            t = gemm_time_s(n, h, m.kv_lora_rank + m.qk_rope_head_dim, hw, eff, fp8=fp8)  # replicated latent
            if m.q_lora_rank:
                t += gemm_time_s(n, h, m.q_lora_rank, hw, eff, fp8=fp8)
            else:
                t += gemm_time_s(n, h, q_out / tp, hw, eff, fp8=fp8)
            return t + self._mla_up_projections(n, tp) + gemm_time_s(n, m.n_head * m.v_head_dim / tp, h, hw, eff, fp8=fp8)
        q_w = m.n_head * m.head_dim
        kv_w = m.n_kv_head * m.head_dim
        return gemm_time_s(n, h, (q_w + 2 * kv_w) / tp, hw, eff, fp8=fp8) + gemm_time_s(n, q_w / tp, h, hw, eff, fp8=fp8)

    def _mla_up_gemms(self) -> list[tuple[int, int]]:
        """(in, out) widths of MLA's up-projections of one layer, latents to per-head K, V and Q (no
        q latent: Q is projected straight from the residual, which is not an up-projection): what
        DeepSeek-V3's selective recompute runs again in the backward (memory.activation_terms)."""
        m = self.model
        if not m.is_mla:
            return []
        gemms = [(m.kv_lora_rank, m.n_head * (m.qk_nope_head_dim + m.v_head_dim))]
        if m.q_lora_rank:
            gemms.append((m.q_lora_rank, m.n_head * (m.qk_nope_head_dim + m.qk_rope_head_dim)))
        return gemms

    def _mla_up_projections(self, n: float, tp: int) -> float:
        """Forward time of one layer's MLA up-projections for n tokens."""
        return sum(gemm_time_s(n, k, out / tp, self.hw, self.eff, fp8=self.fp8) for k, out in self._mla_up_gemms())

    def _mlp_gemms(self, n: float, tp: int, ep: int) -> float:
        """Forward time of the MLPs of one average layer for n tokens (dense, routed, shared)."""
        m, hw, eff, fp8 = self.model, self.hw, self.eff, self.fp8
        h, f = m.d_model, m.d_ff
        u = 2 if m.ffn == "swiglu" else 1
        counts = self.counts
        if not counts.n_moe_layers:
            return gemm_time_s(n, h, u * f / tp, hw, eff, fp8=fp8) + gemm_time_s(n, f / tp, h, hw, eff, fp8=fp8)
        # Mixtral / DeepSeek style: k of E routed experts per token, each expert its own GEMM; with
        # expert parallelism a GPU runs E/ep experts on the tokens its ep group routes to them.
        E, k = m.n_experts, m.experts_per_token
        n_e = n * k * ep / E
        moe = gemm_time_s(n_e, h, u * f / tp, hw, eff, E / ep, fp8=fp8) + gemm_time_s(n_e, f / tp, h, hw, eff, E / ep, fp8=fp8)
        moe += gemm_time_s(n, h, E, hw, eff)  # router (bf16)
        if m.n_shared_experts:  # always-active shared experts: one dense MLP of n_shared x d_ff
            fs = m.n_shared_experts * f
            moe += gemm_time_s(n, h, u * fs / tp, hw, eff, fp8=fp8) + gemm_time_s(n, fs / tp, h, hw, eff, fp8=fp8)
        dense_layers = m.n_layer - counts.n_moe_layers
        if not dense_layers:
            return moe
        fd = m.dense_d_ff
        dense = gemm_time_s(n, h, u * fd / tp, hw, eff, fp8=fp8) + gemm_time_s(n, fd / tp, h, hw, eff, fp8=fp8)
        return (counts.n_moe_layers * moe + dense_layers * dense) / m.n_layer

    def _layer(self, tp: int, sp: bool, micro_batch: int, cp: int = 1, ep: int = 1) -> _LayerCost:
        key = (tp, sp, micro_batch, cp, ep)
        got = self._cache.get(key)
        if got is not None:
            return got
        m, hw, eff = self.model, self.hw, self.eff
        h, f, V = m.d_model, m.d_ff, m.vocab_size
        n = micro_batch * self.seq / cp  # tokens of one micro-batch on this GPU
        q_w = m.n_head * m.qk_head_dim
        v_w = m.n_head * m.v_dim
        # Forward GEMMs of one layer (backward = dgrad + wgrad = 2x, same shapes transposed).
        gemm = (self._attention_gemms(n, tp) + self._mlp_gemms(n, tp, ep)) * self.block_factor
        # Attention core, per (micro-batch x local head). With context parallelism each GPU holds
        # n = b s / cp queries against the keys they see (load-balanced causal chunks).
        heads = micro_batch * m.n_head / tp
        ctx = self.ctx_kernel
        attn_width = (q_w + v_w) / 2  # QK^T over the q/k head width, AV over the v head width
        if self.attention == "flash":
            # One fused kernel: compute bound; FlashAttention-2's backward re-forms QK^T, 2.5x the
            # forward matmul FLOPs (Dao 2023, sec. 3.1).
            attn_f = 4.0 * n * ctx * attn_width / tp / (hw.peak_flops * eff.eta_gemm)
            attn_b = 2.5 * attn_f
        else:
            # QK^T and AV as batched GEMMs (memory bound at head_dim 64-128) plus scale-mask-softmax
            # and dropout kernels over the s x ctx scores: read 2 + write 2 bytes per score, and
            # dropout's read 2 + write 2 + mask 1 (Korthikanti's 5 a s^2 b are what these write).
            s_local = self.seq / cp
            scores_gemms = gemm_time_s(s_local, m.qk_head_dim, ctx, hw, eff, heads) + gemm_time_s(s_local, ctx, m.v_dim, hw, eff, heads)
            elem_bytes = (9.0 if self.dropout else 4.0) * heads * s_local * ctx
            attn_f = scores_gemms + mem_time_s(elem_bytes, hw, eff)
            attn_b = 2.0 * attn_f
        # Memory-bound elementwise kernels per token, forward: two layer norms (read 2h, write 2h),
        # two residual adds (read 4h, write 2h; + a 1-byte dropout mask each), the activation
        # (GELU/ReLU^2 read 2f write 2f; SwiGLU read 4f write 2f) -- replicated across TP ranks
        # unless sequence parallel splits them.
        resid = 7 * h if self.dropout else 6 * h
        replicated = 2 * (4 * h) + 2 * resid
        act = (6 * f if m.ffn == "swiglu" else 4 * f) * mem.active_mlp_width(m) / f
        elem_f = mem_time_s(n * (replicated / (tp if sp else 1) + act / tp), hw, eff)
        # Two TP collectives per layer and pass (after attention and after the MLP): all-reduce, or
        # with SP a reduce-scatter + all-gather pair of the same total volume (Korthikanti sec. 4.2.2).
        tp_bw = coll.link_bw(hw, eff, inter_node=False)
        tp_f = 2 * coll.all_reduce_s(2.0 * n * h, tp, tp_bw)
        head_f = gemm_time_s(n, h, V / tp, hw, eff) + mem_time_s(n * CROSS_ENTROPY_BYTES_PER_LOGIT / 2 * V / tp, hw, eff)
        head_b = 2 * gemm_time_s(n, h, V / tp, hw, eff) + mem_time_s(n * CROSS_ENTROPY_BYTES_PER_LOGIT / 2 * V / tp, hw, eff)
        embed = mem_time_s(n * 3 * 2.0 * h, hw, eff)  # gather (write 2h) + scatter-add (read 2h, rw 2h)
        # Expert parallelism: dispatch and combine all-to-alls of the k routed copies of each local
        # token (bf16, 1/tp of them per TP rank), on MoE layers; the EP group is ep consecutive DP
        # ranks (stride tp x cp). Counted as exposed: Megatron's default schedule does not overlap it.
        ep_f = 0.0
        if ep > 1 and self.counts.n_moe_layers:
            ep_bw = coll.link_bw(hw, eff, inter_node=tp * cp * ep > hw.gpus_per_node)
            # FP8 training dispatches FP8 activations (1 byte; DeepSeek-V3 sec. 3.3.2), combines bf16.
            dispatch_bytes = 1.0 if self.fp8 else 2.0
            routed = n * m.experts_per_token * h / tp
            ep_f = coll.all_to_all_s(routed * dispatch_bytes, ep, ep_bw) + coll.all_to_all_s(routed * 2.0, ep, ep_bw)
            ep_f *= self.counts.n_moe_layers / m.n_layer
        # Context parallelism: ring attention passes every rank's K and V chunk (bf16) around the cp
        # ranks: (cp - 1) sends of the local K, V per layer forward (Liu et al. 2023, "Ring Attention";
        # Megatron-LM --context-parallel-size); the group is stride tp.
        cp_f = 0.0
        if cp > 1:
            kv_bytes = 2.0 * n * (m.n_kv_head * m.qk_head_dim + m.n_kv_head * m.v_dim) / tp
            cp_bw = coll.link_bw(hw, eff, inter_node=tp * cp > hw.gpus_per_node)
            cp_f = (cp - 1) * coll.p2p_s(kv_bytes, cp_bw)
        # Selective recompute: the unfused attention core (flash attention recomputes its scores in
        # its own backward already) and, for MLA, the up-projections (DeepSeek-V3's recipe).
        selective_f = (attn_f if self.attention == "unfused" else 0.0) + self._mla_up_projections(n, tp)
        cost = _LayerCost(gemm, attn_f, attn_b, elem_f, tp_f, head_f, head_b, embed, ep_f, cp_f, selective_f)
        self._cache[key] = cost
        return cost

    # ------------------------------------------------------------------ stages and memory

    def stage_layers(self, lay: Layout) -> tuple[int, int, int]:
        """Layers on (the first, each middle, the last) pipeline stage. Even split: ceil(L/p) each.
        A given first/last count leaves the rest to the other stages, exactly divided (Megatron)."""
        L, p = self.model.n_layer, lay.pp
        if p == 1:
            return L, L, L
        f, l = lay.first_stage_layers, lay.last_stage_layers
        if f is None and l is None:
            even = -(-L // p)
            return even, even, even
        if f is not None and l is not None:
            mid = (L - f - l) // (p - 2) if p > 2 else 0
            return f, mid, l
        if f is not None:
            mid = (L - f) // (p - 1)
            return f, mid, mid
        mid = (L - l) // (p - 1)
        return mid, mid, l

    def _stage_slots(self, lay: Layout) -> tuple[int, int, int]:
        """stage_layers with the MTP blocks added to the last stage (with pp = 1, to the one stage)."""
        f, mid, l = self.stage_layers(lay)
        if lay.pp == 1:
            return f + self.mtp, mid + self.mtp, l + self.mtp
        return f, mid, l + self.mtp

    def _stages(self, lay: Layout) -> list[tuple[int, float, float, bool, bool, int]]:
        """(layers, dense params, expert params per GPU, has embedding, has head, micro-batches held
        in 1F1B) of the first, second and last stage -- the ones that can need the most memory."""
        key = ("stages", lay.tp, lay.pp, lay.ep, lay.first_stage_layers, lay.last_stage_layers)
        got = self._cache.get(key)
        if got is not None:
            return got
        f, mid, l = self._stage_slots(lay)
        dense = self.layer_params - self.layer_expert_params
        expert = self.layer_expert_params
        tp, ep, p = lay.tp, lay.ep, lay.pp

        def stage(layers: int, embed: bool, head: bool, held: int) -> tuple:
            d = layers * dense + (self.embed_params if embed else 0.0) + (self.head_params if head and p > 1 else 0.0)
            if p == 1:
                d += self.counts.lm_head
            return (layers, d / tp, layers * expert / (tp * ep), embed, head, held)

        out = [stage(f, True, p == 1, p)]
        if p > 2:
            out.append(stage(mid, False, False, p - 1))
        if p > 1:
            out.append(stage(l, False, True, 1))
        self._cache[key] = out
        return out

    def _stage_params(self, pp: int, tp: int) -> tuple[float, float]:
        """(parameters per GPU on the first stage, on the last stage), even split, no EP."""
        st = self._stages(Layout(1, tp, pp, 1))
        return st[0][1] + st[0][2], st[-1][1] + st[-1][2]

    def memory(self, lay: Layout, microbatches: int) -> dict:
        """Bytes per GPU by part, on the stage that needs the most."""
        tp, v, b = lay.tp, lay.interleave, lay.micro_batch
        tokens = b * self.seq / lay.cp
        per_layer = mem.layer_activation_bytes(self.terms, tokens, tp, lay.sequence_parallel, lay.recompute)
        working = 0.0
        if lay.recompute == "full":  # one layer's activations re-formed during its backward
            working = mem.layer_activation_bytes(self.terms, tokens, tp, lay.sequence_parallel, "none")
        logits = mem.FP32_LOGIT_BYTES * tokens * self.model.vocab_size / tp * (1 + self.mtp)  # main + MTP heads
        layer_local = (self.layer_params - self.layer_expert_params * (1 - 1 / lay.ep)) / tp  # one layer's parameters here
        gather = 0.0
        if lay.zero >= 3 or lay.offload_weights:  # the gathered / fetched weights of the layer run and the one prefetched
            gather = 2 * mem.WEIGHT_BYTES * layer_local
        shard = lay.dp * lay.cp  # gradients are reduced (and ZeRO shards) over DP x CP
        shard_e = max(1, shard // lay.ep)
        z, grad_b, opt_b = lay.zero, mem.GRAD_BYTES[self.precision], mem.OPTIMIZER_BYTES
        best, best_total = None, -1.0
        for layers, dense, expert, _embed, head, held in self._stages(lay):
            if held == lay.pp:  # the first stage: interleaving holds (1 + (p-1)/(p v)) times more
                inflight = mem.inflight_layers(layers, lay.pp, v, microbatches)
            else:
                inflight = layers * min(microbatches, held)
            if lay.offload_activations:  # the layer being run and the one being copied out / in
                inflight = min(inflight, 2)
            acts = per_layer * inflight + working
            # mem.state_bytes of the dense part (sharded over DP x CP) plus the experts' (over DP x CP / EP).
            weights = 0.0 if lay.offload_weights else mem.WEIGHT_BYTES * (dense / (shard if z >= 3 else 1) + expert / (shard_e if z >= 3 else 1))
            grads = grad_b * (dense / (shard if z >= 2 else 1) + expert / (shard_e if z >= 2 else 1))
            if self._gradients_to_host(lay):  # only the buckets in flight: the layer reduced and the one produced
                grads = min(grads, 2 * grad_b * layer_local)
            optim = 0.0 if lay.offload_optimizer else opt_b * (dense / (shard if z >= 1 else 1) + expert / (shard_e if z >= 1 else 1))
            lg = logits if head else 0.0
            total = weights + grads + optim + gather + acts + lg
            if total > best_total:
                best, best_total = (weights, grads, optim, acts, lg), total
        weights, grads, optim, acts, lg = best
        return {"weights": weights, "gradients": grads, "optimizer": optim, "zero3_gather": gather, "activations": acts, "logits": lg}

    # ------------------------------------------------------------------ time

    def _exposed(self, comm_s: float, window_s: float) -> float:
        """Time a collective adds to a compute window it overlaps.

        While a collective runs, the compute it overlaps runs (1 - f) as fast (NCCL's kernels take
        SMs and HBM bandwidth; f = efficiency.overlap_slowdown). The pair then takes
        max(comm, window + f comm): the collective's excess, or at least f of it.
        """
        if comm_s <= 0.0:
            return 0.0
        return max(comm_s - window_s, self.eff.overlap_slowdown * comm_s)

    def _stage_time(self, c: _LayerCost, layers: int, embed: bool, head: bool, lay: Layout) -> dict:
        """Forward and backward seconds of one micro-batch through one stage."""
        layer_f = c.gemm_f + c.attn_f + c.elem_f
        layer_b = 2 * c.gemm_f + c.attn_b + 2 * c.elem_f
        if lay.recompute == "full":
            recompute, recompute_tp = layers * layer_f, layers * c.tp_f
        elif lay.recompute == "selective":
            recompute, recompute_tp = layers * c.selective_f, 0.0
        else:
            recompute, recompute_tp = 0.0, 0.0
        # The last stage runs the logits and the cross-entropy; with pp = 1 one GPU also runs the embedding.
        heads = 1 + self.mtp  # the main output head, and once more per MTP module
        extra_f = (heads * c.head_f if head else 0.0) + (c.embed if embed and lay.pp == 1 else 0.0)
        extra_b = heads * c.head_b if head else 0.0
        compute_f = layers * layer_f + extra_f
        compute_b = layers * layer_b + extra_b + recompute
        # Collectives inside the layer: TP (exposed), EP all-to-alls (exposed), CP ring (overlaps
        # the attention core; backward moves K, V and their gradients: twice the bytes).
        cp_f = layers * self._exposed(c.cp_f, c.attn_f)
        cp_b = layers * self._exposed(2 * c.cp_f, c.attn_b)
        # EP all-to-alls: forward, backward (the gradients' way back) and the recomputed forward.
        ep_f = ep_b = c.ep_f
        if self.ep_overlap:
            ep_f, ep_b = self._exposed(c.ep_f, layer_f), self._exposed(c.ep_f, layer_b)
        ep_re = ep_f if lay.recompute == "full" else 0.0
        comm_f = layers * (c.tp_f + ep_f) + cp_f
        comm_b = layers * (c.tp_f + ep_b + ep_re) + cp_b + recompute_tp
        ep = layers * (ep_f + ep_b + ep_re)
        return {"t_f": compute_f + comm_f, "t_b": compute_b + comm_b, "compute_f": compute_f, "compute_b": compute_b,
                "recompute": recompute, "comm": comm_f + comm_b, "ep": ep, "cp": cp_f + cp_b}

    def step_time(self, lay: Layout, global_batch: int) -> dict:
        """Seconds of one optimizer step and its parts (the search calls this alone):
        pipeline (compute + in-layer TP/EP/CP comm + bubble) + PP sends + exposed DP comm +
        optimizer + exposed host offload."""
        m = global_batch // (lay.dp * lay.micro_batch)  # micro-batches per step per replica
        stages = self._stage_times(lay)
        slow = max(stages, key=lambda st: st["t_f"] + st["t_b"])
        t_f, t_b = slow["t_f"], slow["t_b"]
        pipeline, bubble_chunks = self._pipeline_s(lay, stages, slow, m)
        pp_comm = self._pp_comm_s(lay, m)
        stage_params = max(self._stages(lay), key=lambda st: st[1] + st[2])
        dp_comm, dp_exposed, optimizer, to_host = self._dp_and_optimizer_s(lay, stage_params, m, t_f, t_b)
        host = self._exposed(to_host, t_b) + self._host_stream_exposed_s(lay, stage_params, m, t_f, t_b)
        step = pipeline + pp_comm + dp_exposed + optimizer + host
        return {
            "step_time_s": step,
            "compute_s": m * (slow["compute_f"] + slow["compute_b"]),
            "recompute_s": m * slow["recompute"],
            "bubble_s": bubble_chunks * (t_f + t_b),
            "tp_comm_s": m * (slow["comm"] - slow["ep"] - slow["cp"]),
            "ep_comm_s": m * slow["ep"],
            "cp_comm_exposed_s": m * slow["cp"],
            "pp_comm_s": pp_comm,
            "dp_comm_s": dp_comm,
            "dp_comm_exposed_s": dp_exposed,
            "host_offload_exposed_s": host,
            "exposed_comm_s": m * slow["comm"] + pp_comm + dp_exposed + host,
            "optimizer_s": optimizer,
            "bubble_fraction": bubble_chunks / m,
            "microbatches": m,
        }

    def _stage_times(self, lay: Layout) -> list[dict]:
        """Forward/backward seconds of one micro-batch on the first, last and a middle stage."""
        c = self._layer(lay.tp, lay.sequence_parallel, lay.micro_batch, lay.cp, lay.ep)
        f, mid, l = self._stage_slots(lay)
        p = lay.pp
        stages = [self._stage_time(c, f, True, p == 1, lay)]
        if p > 1:
            stages.append(self._stage_time(c, l, False, True, lay))
        if p > 2:
            stages.append(self._stage_time(c, mid, False, False, lay))
        return stages

    def _pipeline_s(self, lay: Layout, stages: list[dict], slow: dict, m: int) -> tuple[float, float]:
        """(seconds of the m micro-batches through the pipeline, bubble in micro-batch times).

        Even stages: (m + (p-1)/v) t (Narayanan et al. 2021, sec. 2.2). Uneven stages: the slowest
        stage sets the steady state; filling and draining the pipe takes every other stage's own
        time once, in chunks of 1/v: m t_max + (sum over stages - t_max) / v."""
        p, v = lay.pp, lay.interleave
        t_mb = slow["t_f"] + slow["t_b"]
        if lay.first_stage_layers is None and lay.last_stage_layers is None:
            bubble_chunks = (p - 1) / v
            return (m + bubble_chunks) * t_mb, bubble_chunks
        t_each = [st["t_f"] + st["t_b"] for st in stages]
        stage_sum = t_each[0] + (t_each[1] if p > 1 else 0.0) + (max(p - 2, 0) * t_each[2] if p > 2 else 0.0)
        pipeline = m * t_mb + (stage_sum - t_mb) / v
        return pipeline, pipeline / t_mb - m

    def _pp_comm_s(self, lay: Layout, m: int) -> float:
        """Pipeline point-to-point sends: 2 (v m + p - 1) boundary activations of one micro-batch
        (1/t of it: Megatron's scatter/gather), on the inter-node tier when the job spans nodes."""
        p = lay.pp
        if p == 1:
            return 0.0
        bw = coll.link_bw(self.hw, self.eff, coll.pp_spans_nodes(self.hw, lay.tp, lay.dp * lay.cp, p))
        boundary = 2.0 * lay.micro_batch * self.seq / lay.cp * self.model.d_model / lay.tp
        return 2 * (lay.interleave * m + p - 1) * coll.p2p_s(boundary, bw)

    def _dp_and_optimizer_s(self, lay: Layout, stage_params: tuple, m: int, t_f: float, t_b: float) -> tuple[float, float, float, float]:
        """(DP collective seconds, of them exposed, optimizer seconds, optimizer host transfer).

        Dense weights are reduced over DP x CP; routed experts over the DP x CP / EP ranks holding
        the same experts. Both groups run in the same window, so what they expose is taken of the
        sum. ZeRO 0: one gradient all-reduce behind the backward; 1: reduce-scatter (backward) +
        all-gather (forward); 2: a reduce-scatter per micro-batch; 3: all-gather (forward),
        all-gather (backward, twice with zero3_recompute_gather) and reduce-scatter per micro-batch
        (Rajbhandari et al. 2020, sec. 7)."""
        hw, eff = self.hw, self.eff
        d = lay.dp * lay.cp
        groups = ((stage_params[1], d), (stage_params[2], max(1, d // lay.ep)))
        ar = rs = ag = optimizer = to_host = 0.0
        grad_b = mem.GRAD_BYTES[self.precision]
        for p_local, n in groups:
            if p_local <= 0:
                continue
            g_bytes, w_bytes = p_local * grad_b, p_local * mem.WEIGHT_BYTES
            bw = coll.link_bw(hw, eff, n > 1 and lay.tp * d > hw.gpus_per_node)
            ar += coll.all_reduce_s(g_bytes, n, bw)
            rs += coll.reduce_scatter_s(g_bytes, n, bw)
            ag += coll.all_gather_s(w_bytes, n, bw)
            sharded = n if lay.zero >= 1 else 1
            if lay.offload_optimizer:
                # ZeRO-Offload (Ren et al. 2021): the gradient shard goes to the host, Adam runs on
                # the CPU, the updated bf16 weights come back; the transfer overlaps the backward.
                # The gradients are reduced and sent bucket by bucket every micro-batch and
                # accumulate on the host (_gradients_to_host). The CPU Adam's own
                # time is not counted (it depends on the host CPU: n/a).
                to_host += (m * g_bytes + w_bytes) / sharded / coll.host_link_bw(hw)
            else:
                optimizer += mem_time_s(p_local / sharded * (OPTIMIZER_STREAM_BYTES + grad_b), hw, eff)
        exposed = self._exposed
        if lay.zero == 0:
            n_ar = m if self._gradients_to_host(lay) else 1  # offloaded: an all-reduce per micro-batch
            return n_ar * ar, n_ar * exposed(ar, t_b), optimizer, to_host
        if lay.zero == 1 and not self._gradients_to_host(lay):
            return rs + ag, exposed(rs, t_b) + exposed(ag, t_f), optimizer, to_host
        if lay.zero <= 2:  # ZeRO 2, or ZeRO 1 whose gradients go to the host: a reduce-scatter per micro-batch
            return m * rs + ag, m * exposed(rs, t_b) + exposed(ag, t_f), optimizer, to_host
        ag_b = ag * (2 if self.zero3_recompute_gather and lay.recompute == "full" else 1)
        return m * (ag + ag_b + rs), m * (exposed(ag, t_f) + exposed(ag_b + rs, t_b)), optimizer, to_host

    @staticmethod
    def _gradients_to_host(lay: Layout) -> bool:
        """ZeRO-Offload (DeepSpeed's CPU offload of the optimizer): each micro-batch's gradients are
        reduced bucket by bucket in the backward (reduce-scatter; all-reduce without ZeRO) and
        copied to the host, where they accumulate; the GPU holds the buckets in flight, not a
        gradient buffer."""
        return lay.offload_optimizer

    def _host_stream_exposed_s(self, lay: Layout, stage_params: tuple, m: int, t_f: float, t_b: float) -> float:
        """Offloaded weights stream in for the forward and again for the backward of every
        micro-batch; offloaded activations go out in the forward and come back in the backward;
        both are prefetched, so each overlaps the compute of its own pass."""
        if not (lay.offload_weights or lay.offload_activations):
            return 0.0
        bw_host = coll.host_link_bw(self.hw)
        w_stage = (stage_params[1] + stage_params[2]) * mem.WEIGHT_BYTES
        per_layer = mem.layer_activation_bytes(self.terms, lay.micro_batch * self.seq / lay.cp, lay.tp, lay.sequence_parallel, lay.recompute)
        move = (w_stage if lay.offload_weights else 0.0) + (per_layer * stage_params[0] if lay.offload_activations else 0.0)
        return m * (self._exposed(move / bw_host, t_f) + self._exposed(move / bw_host, t_b))

    def memory_total(self, lay: Layout, global_batch: int) -> float:
        return sum(self.memory(lay, global_batch // (lay.dp * lay.micro_batch)).values())

    def evaluate(self, lay: Layout, global_batch: int, requested_batch: int | None = None) -> dict:
        """The full prediction (PREDICT_KEYS) of a resolved layout. `global_batch` is the batch run;
        `requested_batch` the one asked for, when the flexible batch rounded it down to a multiple
        of dp (chosen: global_batch = requested, global_batch_used = run)."""
        t = self.step_time(lay, global_batch)
        step, m = t.pop("step_time_s"), t.pop("microbatches")
        hw = self.hw
        G = lay.gpus
        tokens = global_batch * self.seq
        model_flops = self.fpt_model * tokens
        recompute_flops = 0.0
        attn_fwd_per_token = 4.0 * attention_width(self.model) * self.ctx_model * self.model.n_layer
        if lay.recompute == "full":
            recompute_flops = (2.0 * self.layer_params_active * (self.model.n_layer + self.mtp) + attn_fwd_per_token) * tokens
        elif lay.recompute == "selective":
            # Flash attention has no scores to recompute; MLA recomputes its up-projections.
            recompute_flops = (attn_fwd_per_token if self.attention == "unfused" else 0.0) * tokens
            # over every layer the time counts: the decoder's and the MTP modules' (_stage_slots)
            up_params = sum(k * out for k, out in self._mla_up_gemms())
            recompute_flops += 2.0 * up_params * (self.model.n_layer + self.mtp) * tokens
        memory = self.memory(lay, m)
        memory_total = sum(memory.values())
        return {
            "step_time_s": step,
            "tokens_per_s_per_gpu": tokens / step / G,
            "model_tflops_per_gpu": model_flops / step / G / 1e12,
            "hardware_tflops_per_gpu": (model_flops + recompute_flops) / step / G / 1e12,
            # FP8: against the FP8 peak, the rate the GEMMs could reach (so MFU stays a fraction).
            "mfu": model_flops / step / G / (hw.peak_flops_fp8 if self.fp8 else hw.peak_flops),
            "memory_per_gpu_bytes": memory_total,
            "fits": memory_total <= hw.memory_bytes,
            "chosen": {**lay.to_dict(), "gpus": G, "global_batch": requested_batch or global_batch,
                       "global_batch_used": global_batch, "microbatches": m, "seq_len": self.seq},
            "breakdown": {
                **t,
                "memory_bytes": memory,
                "efficiency": self.eff.to_dict(),
                "attention": self.attention,
                "dropout": self.dropout,
                "precision": self.precision,
            },
        }


# ---------------------------------------------------------------------- validation of inputs


def check_layout(model: ModelSpec, hardware: HardwareSpec, lay: Layout, global_batch: int) -> None:
    """One-line UserError for a layout that cannot run the model."""
    if hardware.inter_node_bw is None and lay.gpus > hardware.gpus_per_node:
        raise UserError(
            f"--gpus {lay.gpus}: profile {hardware.name} has no inter_node_bw, so at most {hardware.gpus_per_node} GPUs "
            "(one node); add inter_node_bw to a copy of the profile to plan more"
        )
    if hardware.gpus_per_node % lay.tp:
        raise UserError(
            f"--tp {lay.tp}: a TP group must sit inside one {hardware.name} node of {hardware.gpus_per_node} GPUs; "
            f"accepted: a divisor of {hardware.gpus_per_node}"
        )
    if model.n_head % lay.tp or model.n_kv_head % lay.tp:
        raise UserError(f"--tp {lay.tp} must divide n_head = {model.n_head} and n_kv_head = {model.n_kv_head}")
    if lay.pp > model.n_layer:
        raise UserError(f"--pp {lay.pp} exceeds n_layer = {model.n_layer}; accepted: 1..{model.n_layer}")
    if global_batch % (lay.dp * lay.micro_batch):
        raise UserError(
            f"--global-batch {global_batch} is not a multiple of dp x micro-batch = {lay.dp} x {lay.micro_batch}; "
            "accepted: global batch divisible by both"
        )
    if lay.interleave > 1:
        if lay.pp == 1:
            raise UserError(f"--interleave {lay.interleave} needs --pp > 1")
        uneven = lay.first_stage_layers is not None or lay.last_stage_layers is not None
        if not uneven and model.n_layer % (lay.pp * lay.interleave):
            raise UserError(f"--interleave {lay.interleave}: n_layer = {model.n_layer} is not divisible by pp x interleave = {lay.pp * lay.interleave}")
        if (global_batch // (lay.dp * lay.micro_batch)) % lay.pp:
            raise UserError(f"--interleave {lay.interleave}: the micro-batches per step must be a multiple of pp = {lay.pp} (Megatron's interleaved schedule)")
    if lay.recompute not in RECOMPUTE:
        raise UserError(f"recompute = {lay.recompute!r}; accepted: {' | '.join(RECOMPUTE)}")
    if lay.zero not in ZERO_STAGES:
        raise UserError(f"zero = {lay.zero!r}; accepted: 0 | 1 | 2 | 3")
    if lay.cp > 1 and model.seq_len % (2 * lay.cp):
        raise UserError(f"--cp {lay.cp}: the sequence ({model.seq_len}) must split into 2 x cp = {2 * lay.cp} equal chunks "
                        "(load-balanced causal context parallelism); accepted: cp with 2 cp dividing the sequence length")
    if lay.ep > 1:
        if not param_counts(model).n_moe_layers:
            raise UserError(f"--ep {lay.ep}: model {model.name} has no routed-expert MoE layers; accepted: --ep 1")
        if model.n_experts % lay.ep or lay.dp % lay.ep:
            raise UserError(f"--ep {lay.ep} must divide n_experts = {model.n_experts} and dp = {lay.dp}")
    check_stages(model, lay)
    if (lay.offload_optimizer or lay.offload_weights or lay.offload_activations) and not hardware.host_link_bw:
        raise UserError(f"--offload: profile {hardware.name} has no host_link_bw; add one (bytes/s per direction) to a copy of the profile")


def check_stages(model: ModelSpec, lay: Layout) -> None:
    """Uneven first/last stages as Megatron-LM accepts them: the other stages divide the rest evenly."""
    f, l, p, L = lay.first_stage_layers, lay.last_stage_layers, lay.pp, model.n_layer
    if f is None and l is None:
        return
    given = " + ".join(f"{name} {v}" for name, v in (("first", f), ("last", l)) if v is not None)
    if p == 1:
        raise UserError(f"--first/--last-stage-layers need --pp > 1 (got pp 1)")
    for name, v in (("first", f), ("last", l)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v < L):
            raise UserError(f"--{name}-stage-layers {v!r}; accepted: 1..{L - 1}")
    rest, others = L - (f or 0) - (l or 0), p - (f is not None) - (l is not None)
    if others == 0 and rest != 0:
        raise UserError(f"--pp {p} with {given} layers: they must add up to n_layer = {L}")
    if others and (rest < others or rest % others):
        raise UserError(f"--pp {p} with {given} layers: the other {others} stages get {rest} layers, not an equal whole number each; "
                        f"accepted: first/last counts that leave a multiple of {others} (and at least {others})")
    if lay.interleave > 1 and others and (rest // others) % lay.interleave:
        raise UserError(f"--interleave {lay.interleave} with {given} layers: the other stages' {rest // others} layers each do not split "
                        f"into {lay.interleave} virtual stages; accepted: an interleave dividing {rest // others}")


def best_of(em: EngineeringModel, base: Layout, global_batch: int, micro_batches: list[int], recomputes: list[str],
            interleaves: list[int] | None = None, requested_batch: int | None = None) -> dict:
    """The fastest fitting prediction over the given micro-batches, recompute policies and
    interleaves; when nothing fits, the one needing the least memory (with fits = False)."""
    best, smallest = None, None
    for b in micro_batches:
        best_b = None
        for rc, v in [(rc, v) for rc in recomputes for v in (interleaves or [base.interleave])]:
            lay = replace(base, micro_batch=b, recompute=rc, interleave=v)
            if v > 1 and (global_batch // (lay.dp * b)) % lay.pp:
                continue
            r = em.evaluate(lay, global_batch, requested_batch)
            if r["fits"] and (best_b is None or r["step_time_s"] < best_b["step_time_s"]):  # ties: less recompute
                best_b = r
            if smallest is None or r["memory_per_gpu_bytes"] < smallest["memory_per_gpu_bytes"]:
                smallest = r
        # Near-ties (0.1%) go to the larger micro-batch (tried later): fewer kernel launches, which
        # the model does not count.
        if best_b and (best is None or best_b["step_time_s"] <= best["step_time_s"] * (1 + 1e-3)):
            best = best_b
    if best is None and smallest is None:
        raise UserError(
            f"no micro-batch works with interleave {base.interleave}: the micro-batches per step must be a multiple of pp = {base.pp}"
        )
    return best or smallest


def interleave_options(model: ModelSpec, pp: int, microbatches: int, first: int | None = None, last: int | None = None) -> list[int]:
    """Virtual stages v the interleaved schedule accepts: pp x v divides n_layer (uneven stages: v
    divides the other stages' equal share; the end stages take what is left of theirs) and, for
    v > 1, the micro-batches per step are a multiple of pp (`--interleave auto` tries them all)."""
    if pp == 1:
        return [1]
    if first is None and last is None:
        return [v for v in divisors(model.n_layer) if model.n_layer % (pp * v) == 0 and (v == 1 or microbatches % pp == 0)]
    others = pp - (first is not None) - (last is not None)
    share = (model.n_layer - (first or 0) - (last or 0)) // others if others else 1
    return [v for v in divisors(share) if v == 1 or microbatches % pp == 0]


def layout_from(chosen: dict) -> Layout:
    """The Layout of a prediction's `chosen` dict or a plan's flat layout row (older saved plans
    lack the newer keys: their defaults)."""
    keys = {f.name for f in fields(Layout)}
    return Layout(**{k: v for k, v in chosen.items() if k in keys})


def layout_text(chosen: dict) -> str:
    """`Layout.text()` of a prediction's `chosen` dict."""
    return layout_from(chosen).text()


def flexible_batch(global_batch: int, dp: int) -> int:
    """The largest multiple of dp not above the requested batch (Calculon's rule), 0 if none."""
    return global_batch - global_batch % dp


def predict(
    model: ModelSpec,
    hardware: HardwareSpec,
    *,
    gpus: int,
    tp: int,
    pp: int,
    global_batch: int,
    dp: int | None = None,
    micro_batch: int | str = "auto",
    seq_len: int | None = None,
    recompute: str = "auto",
    zero: int = 1,
    interleave: int | str = 1,
    sequence_parallel: bool | None = None,
    precision: str = "bf16",
    efficiency: Efficiency | None = None,
    attention: str = "flash",
    dropout: bool = False,
    ep_overlap: bool = False,
    zero3_recompute_gather: bool = False,
    cp: int = 1,
    ep: int = 1,
    first_stage_layers: int | None = None,
    last_stage_layers: int | None = None,
    offload_optimizer: bool = False,
    offload_weights: bool = False,
    offload_activations: bool = False,
    flexible: bool = False,
) -> dict:
    """Predict one layout. `global_batch` counts sequences; "auto" picks the fastest value that
    fits (micro-batch among the divisors of global_batch / dp; recompute none, selective, full;
    interleave among interleave_options). `flexible` runs the largest multiple of dp under a
    global batch dp does not divide (chosen.global_batch_used says which)."""
    if gpus % (tp * pp * cp):
        raise UserError(f"--gpus {gpus} is not a multiple of tp x pp x cp = {tp} x {pp} x {cp}")
    dp_implied = gpus // (tp * pp * cp)
    if dp is not None and dp != dp_implied:
        raise UserError(f"--dp {dp} does not match gpus / (tp x pp x cp) = {gpus} / ({tp} x {pp} x {cp}) = {dp_implied}")
    dp = dp_implied
    if global_batch > MAX_GLOBAL_BATCH_SEQS:
        raise UserError(f"--global-batch {global_batch:.4g}: accepted: at most {MAX_GLOBAL_BATCH_SEQS:,} sequences")
    requested = global_batch
    if global_batch % dp:
        if not flexible or global_batch < dp:
            raise UserError(f"--global-batch {global_batch} is not divisible by dp = {dp}; accepted: a multiple of {dp}"
                            + ("" if flexible else f", or --flexible-batch to run {flexible_batch(global_batch, dp)}" if global_batch >= dp else ""))
        global_batch = flexible_batch(global_batch, dp)
    if seq_len and seq_len != model.seq_len:
        model = model.with_(seq_len=int(seq_len))
    sp = (tp > 1) if sequence_parallel is None else bool(sequence_parallel)
    v_auto = interleave == "auto"
    base = Layout(dp, tp, pp, 1 if micro_batch == "auto" else int(micro_batch), "none" if recompute == "auto" else recompute, zero,
                  1 if v_auto else int(interleave), sp, cp, ep, first_stage_layers, last_stage_layers,
                  offload_optimizer, offload_weights, offload_activations)
    check_layout(model, hardware, base, global_batch)
    em = EngineeringModel(model, hardware, None, precision, efficiency, attention, dropout, ep_overlap, zero3_recompute_gather)
    mbs = divisors(global_batch // dp) if micro_batch == "auto" else [base.micro_batch]
    rcs = list(RECOMPUTE) if recompute == "auto" else [recompute]
    vs = None
    if v_auto:
        vs = interleave_options(model, pp, global_batch // dp, first_stage_layers, last_stage_layers)
    return best_of(em, base, global_batch, mbs, rcs, vs, requested if requested != global_batch else None)
