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

from dataclasses import asdict, dataclass, replace

from engine.errors import UserError
from engine.sizing import collectives as coll
from engine.sizing import memory as mem
from engine.sizing.counts import attention_context, flops_per_token, param_counts
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
    """A fully resolved parallel layout of one training step."""

    dp: int
    tp: int
    pp: int
    micro_batch: int
    recompute: str = "none"
    zero: int = 1
    interleave: int = 1
    sequence_parallel: bool = True

    @property
    def gpus(self) -> int:
        return self.dp * self.tp * self.pp

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _LayerCost:
    """Seconds for one layer and one micro-batch on one GPU (given tp, sp, micro-batch)."""

    gemm_f: float
    attn_f: float
    attn_b: float
    elem_f: float
    tp_f: float  # one forward's TP collectives
    head_f: float  # logits + cross-entropy forward (last stage)
    head_b: float
    embed: float  # embedding gather + scatter-add (first stage), forward + backward


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
    ):
        if precision not in PRECISIONS:
            raise UserError(f"precision = {precision!r}; accepted: {' | '.join(PRECISIONS)}")
        if attention not in ATTENTION_KERNELS:
            raise UserError(f"attention = {attention!r}; accepted: {' | '.join(ATTENTION_KERNELS)}")
        if seq_len and seq_len != model.seq_len:  # windows and context follow the trained length
            model = model.with_(seq_len=int(seq_len))
        self.model, self.hw = model, hardware
        self.seq = model.seq_len
        self.precision, self.attention, self.dropout = precision, attention, dropout
        self.eff = efficiency or efficiency_for(hardware)
        counts = param_counts(model)
        self.counts = counts
        L, h, V = model.n_layer, model.d_model, model.vocab_size
        head_matmul = V * h
        # Average parameters per layer: all of them (memory) and those a token multiplies (time).
        self.layer_params = (counts.matmul_total - head_matmul) / L
        self.layer_params_active = (counts.matmul_active - head_matmul) / L
        # Tied embeddings: one matrix when the first and last stage are the same GPU, a copy each
        # (Megatron's shared-embedding group) when they are not.
        self.embed_params = counts.embedding
        self.head_params = head_matmul
        self.terms = mem.activation_terms(model, self.seq, attention, dropout)
        # Attention keys per query, summed over layers: causal for flash (skips masked tiles),
        # full s x s for unfused kernels (they compute the masked half too).
        self.ctx_kernel = attention_context(model, self.seq, causal=(attention == "flash")) / L
        self.ctx_model = attention_context(model, self.seq, causal=False) / L
        self.fpt_model = flops_per_token(model, self.seq)  # F72 / PaLM convention, no recompute
        self.block_factor = mem._active_mlp_factor(model) if counts.trunk_layers else 1.0
        self._cache: dict[tuple, _LayerCost] = {}

    # ------------------------------------------------------------------ per-layer costs

    def _layer(self, tp: int, sp: bool, micro_batch: int) -> _LayerCost:
        key = (tp, sp, micro_batch)
        got = self._cache.get(key)
        if got is not None:
            return got
        m, hw, eff = self.model, self.hw, self.eff
        h, f, V = m.d_model, m.d_ff, m.vocab_size
        n = micro_batch * self.seq  # tokens in one micro-batch
        q_w = m.n_head * m.head_dim
        kv_w = m.n_kv_head * m.head_dim
        u = 2 if m.ffn == "swiglu" else 1
        # Forward GEMMs of one layer (backward = dgrad + wgrad = 2x, same shapes transposed).
        gemm = gemm_time_s(n, h, (q_w + 2 * kv_w) / tp, hw, eff) + gemm_time_s(n, q_w / tp, h, hw, eff)
        counts = self.counts
        if counts.n_moe_layers:  # Mixtral style: k of E experts per token, each expert its own GEMM
            E, k = m.n_experts, m.experts_per_token
            n_e = n * k / E
            gemm += gemm_time_s(n_e, h, u * f / tp, hw, eff, E) + gemm_time_s(n_e, f / tp, h, hw, eff, E)
            gemm += gemm_time_s(n, h, E, hw, eff)  # router
        else:
            gemm += gemm_time_s(n, h, u * f / tp, hw, eff) + gemm_time_s(n, f / tp, h, hw, eff)
        gemm *= self.block_factor
        # Attention core, per (micro-batch x local head).
        heads = micro_batch * m.n_head / tp
        ctx = self.ctx_kernel
        if self.attention == "flash":
            # One fused kernel: compute bound; FlashAttention-2's backward re-forms QK^T, 2.5x the
            # forward matmul FLOPs (Dao 2023, sec. 3.1).
            attn_f = 4.0 * n * ctx * q_w / tp / (hw.peak_flops * eff.eta_gemm)
            attn_b = 2.5 * attn_f
        else:
            # QK^T and AV as batched GEMMs (memory bound at head_dim 64-128) plus scale-mask-softmax
            # and dropout kernels over the s x ctx scores: read 2 + write 2 bytes per score, and
            # dropout's read 2 + write 2 + mask 1 (Korthikanti's 5 a s^2 b are what these write).
            scores_gemms = gemm_time_s(self.seq, m.head_dim, ctx, hw, eff, heads) + gemm_time_s(self.seq, ctx, m.head_dim, hw, eff, heads)
            elem_bytes = (9.0 if self.dropout else 4.0) * heads * self.seq * ctx
            attn_f = scores_gemms + mem_time_s(elem_bytes, hw, eff)
            attn_b = 2.0 * attn_f
        # Memory-bound elementwise kernels per token, forward: two layer norms (read 2h, write 2h),
        # two residual adds (read 4h, write 2h; + a 1-byte dropout mask each), the activation
        # (GELU/ReLU^2 read 2f write 2f; SwiGLU read 4f write 2f) -- replicated across TP ranks
        # unless sequence parallel splits them.
        resid = 7 * h if self.dropout else 6 * h
        replicated = 2 * (4 * h) + 2 * resid
        act = (6 * f if m.ffn == "swiglu" else 4 * f) * (mem._active_mlp_factor(m) if m.is_moe else 1.0)
        elem_f = mem_time_s(n * (replicated / (tp if sp else 1) + act / tp), hw, eff)
        # Two TP collectives per layer and pass (after attention and after the MLP): all-reduce, or
        # with SP a reduce-scatter + all-gather pair of the same total volume (Korthikanti sec. 4.2.2).
        tp_bw = coll.link_bw(hw, eff, inter_node=False)
        tp_f = 2 * coll.all_reduce_s(2.0 * n * h, tp, tp_bw)
        head_f = gemm_time_s(n, h, V / tp, hw, eff) + mem_time_s(n * CROSS_ENTROPY_BYTES_PER_LOGIT / 2 * V / tp, hw, eff)
        head_b = 2 * gemm_time_s(n, h, V / tp, hw, eff) + mem_time_s(n * CROSS_ENTROPY_BYTES_PER_LOGIT / 2 * V / tp, hw, eff)
        embed = mem_time_s(n * 3 * 2.0 * h, hw, eff)  # gather (write 2h) + scatter-add (read 2h, rw 2h)
        cost = _LayerCost(gemm, attn_f, attn_b, elem_f, tp_f, head_f, head_b, embed)
        self._cache[key] = cost
        return cost

    # ------------------------------------------------------------------ memory

    def _stage_layers(self, pp: int) -> int:
        return -(-self.model.n_layer // pp)

    def _stage_params(self, pp: int, tp: int) -> tuple[float, float]:
        """(parameters per GPU on the first stage, on the last stage)."""
        layers = self._stage_layers(pp) * self.layer_params
        if pp == 1:
            p = layers + self.embed_params + (self.counts.lm_head)
            return p / tp, p / tp
        return (layers + self.embed_params) / tp, (layers + self.head_params) / tp

    def memory(self, lay: Layout, microbatches: int) -> dict:
        """Bytes per GPU by part, on the stage that needs the most."""
        tp, pp, v, b = lay.tp, lay.pp, lay.interleave, lay.micro_batch
        tokens = b * self.seq
        Ls = self._stage_layers(pp)
        first_p, last_p = self._stage_params(pp, tp)
        per_layer = mem.layer_activation_bytes(self.terms, tokens, tp, lay.sequence_parallel, lay.recompute)
        working = 0.0
        if lay.recompute == "full":  # one layer's activations re-formed during its backward
            working = mem.layer_activation_bytes(self.terms, tokens, tp, lay.sequence_parallel, "none")
        acts_first = per_layer * mem.inflight_layers(Ls, pp, v, microbatches) + working
        acts_last = per_layer * Ls + working  # the last stage holds one micro-batch
        logits = mem.FP32_LOGIT_BYTES * tokens * self.model.vocab_size / tp
        gather = 0.0
        if lay.zero >= 3:  # the gathered full weights of the layer being run and the one prefetched
            gather = 2 * mem.WEIGHT_BYTES * self.layer_params / tp
        parts = []
        for params, acts, lg in ((first_p, acts_first, logits if pp == 1 else 0.0), (last_p, acts_last, logits)):
            state = mem.state_bytes(params, lay.dp, lay.zero, self.precision)
            parts.append({**state, "zero3_gather": gather, "activations": acts, "logits": lg})
        first, last = parts
        return first if sum(first.values()) >= sum(last.values()) else last

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

    def step_time(self, lay: Layout, global_batch: int) -> dict:
        """Seconds of one optimizer step and its parts (the search calls this alone)."""
        m = global_batch // (lay.dp * lay.micro_batch)  # micro-batches per step per replica
        c = self._layer(lay.tp, lay.sequence_parallel, lay.micro_batch)
        Ls = self._stage_layers(lay.pp)
        hw, eff = self.hw, self.eff
        layer_f = c.gemm_f + c.attn_f + c.elem_f
        layer_b = 2 * c.gemm_f + c.attn_b + 2 * c.elem_f
        if lay.recompute == "full":
            recompute, recompute_tp = Ls * layer_f, Ls * c.tp_f
        elif lay.recompute == "selective" and self.attention == "unfused":
            recompute, recompute_tp = Ls * c.attn_f, 0.0
        else:  # flash attention recomputes its scores inside its own backward already
            recompute, recompute_tp = 0.0, 0.0
        # The last stage (logits + cross-entropy) is the slowest with pp > 1; with pp = 1 one GPU
        # also runs the embedding.
        extra_f = c.head_f + (c.embed if lay.pp == 1 else 0.0)
        extra_b = c.head_b
        compute_f = Ls * layer_f + extra_f
        compute_b = Ls * layer_b + extra_b + recompute
        tp_mb = Ls * 2 * c.tp_f + recompute_tp  # forward + backward (same volume) + recompute
        t_f = compute_f + Ls * c.tp_f
        t_b = compute_b + Ls * c.tp_f + recompute_tp
        t_mb = t_f + t_b
        bubble_chunks = (lay.pp - 1) / lay.interleave
        pipeline = (m + bubble_chunks) * t_mb

        # Pipeline point-to-point sends.
        pp_comm = 0.0
        if lay.pp > 1:
            bw = coll.link_bw(hw, eff, coll.pp_spans_nodes(hw, lay.tp, lay.dp, lay.pp))
            boundary = 2.0 * lay.micro_batch * self.seq * self.model.d_model / lay.tp
            pp_comm = 2 * (lay.interleave * m + lay.pp - 1) * coll.p2p_s(boundary, bw)

        # Data-parallel collectives and what of them the compute does not hide.
        first_p, last_p = self._stage_params(lay.pp, lay.tp)
        p_local = max(first_p, last_p)
        g_bytes = p_local * mem.GRAD_BYTES[self.precision]
        w_bytes = p_local * mem.WEIGHT_BYTES
        d = lay.dp
        bw = coll.link_bw(hw, eff, coll.dp_spans_nodes(hw, lay.tp, d))
        rs_g, ag_w = coll.reduce_scatter_s(g_bytes, d, bw), coll.all_gather_s(w_bytes, d, bw)
        exposed = self._exposed
        if lay.zero == 0:
            dp_comm = coll.all_reduce_s(g_bytes, d, bw)
            dp_exposed = exposed(dp_comm, t_b)
        elif lay.zero == 1:
            dp_comm = rs_g + ag_w
            dp_exposed = exposed(rs_g, t_b) + exposed(ag_w, t_f)
        elif lay.zero == 2:
            dp_comm = m * rs_g + ag_w
            dp_exposed = m * exposed(rs_g, t_b) + exposed(ag_w, t_f)
        else:
            dp_comm = m * (2 * ag_w + rs_g)
            dp_exposed = m * (exposed(ag_w, t_f) + exposed(ag_w + rs_g, t_b))

        sharded = lay.dp if lay.zero >= 1 else 1
        optimizer = mem_time_s(p_local / sharded * (OPTIMIZER_STREAM_BYTES + mem.GRAD_BYTES[self.precision]), hw, eff)
        step = pipeline + pp_comm + dp_exposed + optimizer
        return {
            "step_time_s": step,
            "compute_s": m * (compute_f + compute_b),
            "recompute_s": m * recompute,
            "bubble_s": bubble_chunks * t_mb,
            "tp_comm_s": m * tp_mb,
            "pp_comm_s": pp_comm,
            "dp_comm_s": dp_comm,
            "dp_comm_exposed_s": dp_exposed,
            "exposed_comm_s": m * tp_mb + pp_comm + dp_exposed,
            "optimizer_s": optimizer,
            "bubble_fraction": bubble_chunks / m,
            "microbatches": m,
        }

    def memory_total(self, lay: Layout, global_batch: int) -> float:
        return sum(self.memory(lay, global_batch // (lay.dp * lay.micro_batch)).values())

    def evaluate(self, lay: Layout, global_batch: int) -> dict:
        """The full prediction (PREDICT_KEYS) of a resolved layout."""
        t = self.step_time(lay, global_batch)
        step, m = t.pop("step_time_s"), t.pop("microbatches")
        hw = self.hw
        G = lay.gpus
        tokens = global_batch * self.seq
        model_flops = self.fpt_model * tokens
        recompute_flops = 0.0
        attn_fwd_per_token = 4.0 * self.model.n_head * self.model.head_dim * self.ctx_model * self.model.n_layer
        if lay.recompute == "full":
            recompute_flops = (2.0 * self.layer_params_active * self.model.n_layer + attn_fwd_per_token) * tokens
        elif lay.recompute == "selective" and self.attention == "unfused":
            recompute_flops = attn_fwd_per_token * tokens  # flash attention has no scores to recompute
        memory = self.memory(lay, m)
        memory_total = sum(memory.values())
        return {
            "step_time_s": step,
            "tokens_per_s_per_gpu": tokens / step / G,
            "model_tflops_per_gpu": model_flops / step / G / 1e12,
            "hardware_tflops_per_gpu": (model_flops + recompute_flops) / step / G / 1e12,
            "mfu": model_flops / step / G / hw.peak_flops,
            "memory_per_gpu_bytes": memory_total,
            "fits": memory_total <= hw.memory_bytes,
            "chosen": {**lay.to_dict(), "gpus": G, "global_batch": global_batch, "microbatches": m, "seq_len": self.seq},
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
        if model.n_layer % (lay.pp * lay.interleave):
            raise UserError(f"--interleave {lay.interleave}: n_layer = {model.n_layer} is not divisible by pp x interleave = {lay.pp * lay.interleave}")
        if (global_batch // (lay.dp * lay.micro_batch)) % lay.pp:
            raise UserError(f"--interleave {lay.interleave}: the micro-batches per step must be a multiple of pp = {lay.pp} (Megatron's interleaved schedule)")
    if lay.recompute not in RECOMPUTE:
        raise UserError(f"recompute = {lay.recompute!r}; accepted: {' | '.join(RECOMPUTE)}")
    if lay.zero not in ZERO_STAGES:
        raise UserError(f"zero = {lay.zero!r}; accepted: 0 | 1 | 2 | 3")


def best_of(em: EngineeringModel, base: Layout, global_batch: int, micro_batches: list[int], recomputes: list[str]) -> dict:
    """The fastest fitting prediction over the given micro-batches and recompute policies; when
    nothing fits, the one needing the least memory (with fits = False)."""
    best, smallest = None, None
    for b in micro_batches:
        best_b = None
        for rc in recomputes:
            lay = replace(base, micro_batch=b, recompute=rc)
            if base.interleave > 1 and (global_batch // (lay.dp * b)) % lay.pp:
                continue
            r = em.evaluate(lay, global_batch)
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
    interleave: int = 1,
    sequence_parallel: bool | None = None,
    precision: str = "bf16",
    efficiency: Efficiency | None = None,
    attention: str = "flash",
    dropout: bool = False,
) -> dict:
    """Predict one layout. `global_batch` counts sequences; "auto" picks the fastest value that
    fits (micro-batch among the divisors of global_batch / dp; recompute none, selective, full)."""
    if gpus % (tp * pp):
        raise UserError(f"--gpus {gpus} is not a multiple of tp x pp = {tp} x {pp}")
    dp_implied = gpus // (tp * pp)
    if dp is not None and dp != dp_implied:
        raise UserError(f"--dp {dp} does not match gpus / (tp x pp) = {gpus} / ({tp} x {pp}) = {dp_implied}")
    dp = dp_implied
    if global_batch > MAX_GLOBAL_BATCH_SEQS:
        raise UserError(f"--global-batch {global_batch:.4g}: accepted: at most {MAX_GLOBAL_BATCH_SEQS:,} sequences")
    if global_batch % dp:
        raise UserError(f"--global-batch {global_batch} is not divisible by dp = {dp}; accepted: a multiple of {dp}")
    sp = (tp > 1) if sequence_parallel is None else bool(sequence_parallel)
    base = Layout(dp, tp, pp, 1 if micro_batch == "auto" else int(micro_batch), "none" if recompute == "auto" else recompute, zero, interleave, sp)
    check_layout(model, hardware, base, global_batch)
    em = EngineeringModel(model, hardware, seq_len, precision, efficiency, attention, dropout)
    mbs = divisors(global_batch // dp) if micro_batch == "auto" else [base.micro_batch]
    rcs = list(RECOMPUTE) if recompute == "auto" else [recompute]
    return best_of(em, base, global_batch, mbs, rcs)
