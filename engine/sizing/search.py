"""Step-2 layout search: the fastest (dp, tp, pp, cp, ep, stages, micro-batch, recompute, offload,
ZeRO, interleave) that fits in memory and meets the deadline, for a fixed cluster or the smallest
one (auto-size).

    search(model, hardware, goal, G=None, top=10, ...) -> list[dict]
        ranked predictions (refine.PREDICT_KEYS + meets_deadline, t_step_max_s, wall_time_s,
        gpu_hours). Fixed G: every layout of G GPUs that fits, fastest first. Auto-size: the
        layouts of the smallest G that fits and meets the deadline, fastest first. When nothing
        meets the deadline, the fastest layouts that fit are returned with meets_deadline False.
    search_with_stats(...) -> (list[dict], stats)   the same, plus what the search visited.

The space: TP divides n_head and n_kv_head and stays in a node; CP in cp_options (2 cp divides the
sequence, chunks >= 512 tokens); PP is any 1..n_layer (stages get ceil(L/p) layers, or the uneven
first/last splits of stage_options); DP divides the global batch -- with a fixed G, any dp, the
batch rounded down to a multiple of dp (flexible batch; ranked per requested batch, i.e. by time
per token); EP divides n_experts and dp (MoE); micro-batch divides the per-replica batch;
interleave v > 1 where pp x v divides n_layer (uneven stages: v divides the other stages' share)
and the micro-batches are a multiple of pp; offload combinations of offload_options where the profile has a host_link_bw;
sequence parallelism whenever TP > 1 (same traffic as plain TP, less memory and elementwise time).

Pruning is exact, by dominance, so the answer equals the exhaustive one:
  * at fixed (split, v, micro-batch, recompute, offload), step time never falls and memory never
    rises as ZeRO goes 1 -> 2 -> 3 (ZeRO 0 moves as many bytes as ZeRO 1 and keeps more memory, so
    it is tried only where dp x cp = 1, where all stages coincide); so for each recompute policy and
    offload combination only the lowest ZeRO stage that fits is timed;
  * memory never falls as the micro-batch grows, so once the most frugal setting (full recompute,
    the highest ZeRO, the most offload) does not fit, no larger micro-batch is tried;
  * auto-size visits G in increasing order and stops after the first G with a feasible layout;
    a G whose compute alone at peak x eta_gemm misses the deadline, or whose ZeRO-3 state alone
    (without offload) overflows memory, is skipped without timing.
"""

from __future__ import annotations

import math
import time

from engine.errors import UserError
from engine.sizing.design import divisors
from engine.sizing.efficiency import Efficiency
from engine.sizing.physics import physics
from engine.sizing.counts import param_counts
from engine.sizing.refine import RECOMPUTE, EngineeringModel, Layout, flexible_batch, interleave_options
from engine.specs import Goal, HardwareSpec, ModelSpec


def tp_options(model: ModelSpec, hardware: HardwareSpec) -> list[int]:
    """TP divides the heads and the node: a TP group never straddles two nodes (Megatron-LM places
    consecutive ranks in a TP group; with TP not dividing the node size some group would cross
    the slow inter-node link on every layer)."""
    return [t for t in divisors(math.gcd(model.n_head, model.n_kv_head)) if hardware.gpus_per_node % t == 0]


def _interleaves(model: ModelSpec, pp: int, microbatches_max: int, stages: tuple = (None, None)) -> list[int]:
    return interleave_options(model, pp, microbatches_max, *stages)


# The search's CP degrees: 2 cp divides the sequence and each rank keeps >= 4,096 tokens. Published
# CP runs keep chunks of 8k (Llama 3 405B: CP 16 at 131,072 tokens, Dubey et al. 2024, sec. 3.3.2);
# Megatron-LM's docs suggest CP from 8k sequences up. Below that the ring's per-step latency and
# small attention tiles, which this model does not count, would make it look free. `lsdt predict
# --cp` still takes any degree.
MIN_CP_CHUNK_TOKENS = 4096


def cp_options(model: ModelSpec) -> list[int]:
    s = model.seq_len
    return [c for c in divisors(s) if s % (2 * c) == 0 and s // c >= MIN_CP_CHUNK_TOKENS] or [1]


def ep_options(model: ModelSpec, dp: int) -> list[int]:
    """Expert-parallel degrees: divide n_experts and dp (routed-expert MoE models only)."""
    if not param_counts(model).n_moe_layers:
        return [1]
    return divisors(math.gcd(model.n_experts, dp))


def stage_options(model: ModelSpec, pp: int) -> list[tuple[int | None, int | None]]:
    """(first_stage_layers, last_stage_layers) the search tries for pp stages: the even split
    (None, None), and for pp >= 3 the two uneven ones closest to it that lighten the ends -- the
    largest k with first = last = k, and the largest with only last = k -- each leaving an exact
    equal share > k to every other stage (Megatron's rule; 126 layers on 16 stages: 7 + 14 x 8 + 7)."""
    out: list[tuple[int | None, int | None]] = [(None, None)]
    L = model.n_layer
    if pp < 3:
        return out
    both = [k for k in range(1, -(-L // pp)) if (L - 2 * k) % (pp - 2) == 0 and (L - 2 * k) // (pp - 2) > k]
    last = [k for k in range(1, -(-L // pp)) if (L - k) % (pp - 1) == 0 and (L - k) // (pp - 1) > k]
    if both:
        out.append((both[-1], both[-1]))
    if last:
        out.append((None, last[-1]))
    return out


def offload_options(hardware: HardwareSpec) -> list[tuple[bool, bool, bool]]:
    """(optimizer, weights, activations) offload combinations, least offload first; none without a
    host_link_bw in the profile. Each adds host traffic and frees GPU memory."""
    if not hardware.host_link_bw:
        return [(False, False, False)]
    return [(False, False, False), (True, False, False), (True, False, True), (True, True, True)]


def _tie(seconds: float) -> float:
    """Step time to 4 significant digits: layouts this close rank by the larger micro-batch, which
    amortises the per-kernel launch overheads the model does not count."""
    return float(f"{seconds:.4g}")


def _best_for_split(em: EngineeringModel, B: int, dp: int, tp: int, pp: int, stats: dict, cp: int = 1, ep: int = 1,
                    stages: tuple = (None, None), offloads: list | None = None) -> list[tuple[float, Layout]]:
    """Every (micro-batch, v) of one split with its fastest fitting (recompute, offload, ZeRO)."""
    M = em.hw.memory_bytes
    zeros = (1, 2, 3) if dp * cp > 1 else (0,)
    sp = tp > 1
    offloads = offloads or [(False, False, False)]
    out: list[tuple[float, Layout]] = []
    per_replica = B // dp
    n_choices = len(RECOMPUTE) * len(offloads) * (4 if dp * cp > 1 else 1)  # recompute x offload x ZeRO
    for v in _interleaves(em.model, pp, per_replica, stages):
        mbs = [b for b in divisors(per_replica) if v == 1 or (per_replica // b) % pp == 0]
        stats["space"] += len(mbs) * n_choices
        for b in mbs:
            base = Layout(dp, tp, pp, b, "full", zeros[-1], v, sp, cp, ep, *stages, *offloads[-1])
            stats["memory_checks"] += 1
            if em.memory_total(base, B) > M:
                break  # larger micro-batches need more memory still
            best = None
            for rc in RECOMPUTE:
                for off in offloads:
                    for z in zeros:
                        lay = Layout(dp, tp, pp, b, rc, z, v, sp, cp, ep, *stages, *off)  # replace() costs 4x
                        stats["memory_checks"] += 1
                        if em.memory_total(lay, B) <= M:
                            stats["timed"] += 1
                            t = em.step_time(lay, B)["step_time_s"]
                            if best is None or t < best[0]:  # ties keep less recompute, less offload
                                best = (t, lay)
                            break  # higher ZeRO stages are no faster
            if best:
                out.append(best)
    return out


def _finish(em: EngineeringModel, goal_steps: int, t_max: float, B: int, ranked: list[tuple[float, Layout]], top: int) -> list[dict]:
    results = []
    for _, lay in ranked[:top]:
        used = flexible_batch(B, lay.dp)
        r = em.evaluate(lay, used, B if used != B else None)
        # A rounded-down batch takes more steps for the same tokens: the deadline and wall time
        # are per token, so scale the step by B / used.
        r["t_step_max_s"] = t_max * used / B
        r["meets_deadline"] = r["step_time_s"] <= r["t_step_max_s"]
        r["wall_time_s"] = r["step_time_s"] * goal_steps * B / used
        r["gpu_hours"] = r["wall_time_s"] * lay.gpus / 3600.0
        results.append(r)
    return results


class _LayoutSearch:
    """One search's fixed inputs (the engineering model, the batch, the deadline, the option lists)
    and its counters; the fixed-G and the auto-size walks are its methods."""

    def __init__(self, em: EngineeringModel, global_batch_seqs: int, t_step_max_s: float,
                 max_gpus: int, flexible: bool, mode: str) -> None:
        model, hardware = em.model, em.hw
        self.em, self.model, self.hardware = em, model, hardware
        self.B, self.t_max, self.flexible = global_batch_seqs, t_step_max_s, flexible
        self.tps, self.cps, self.offloads = tp_options(model, hardware), cp_options(model), offload_options(hardware)
        self.limit = hardware.gpus_per_node if hardware.inter_node_bw is None else max_gpus
        self.stats = {"mode": mode, "splits": 0, "memory_checks": 0, "timed": 0,
                      "space": 0}  # space: (split, v, micro-batch, recompute, offload, ZeRO) combinations covered
        # Lower bounds for skipping a split untimed: 6 N_active FLOPs per token at peak x eta_gemm
        # (attention, recompute, bubbles and comm only add), and ZeRO-3 state of the slowest stage.
        self.flops_step = 6.0 * em.counts.matmul_active * self.B * em.seq
        self.peak_flops = hardware.peak_flops_fp8 if em.fp8 else hardware.peak_flops
        # With the optimizer offloaded the gradients stream to the host too (refine's
        # _gradients_to_host): no per-parameter state need stay, so no G is skipped for memory.
        self.min_state_bytes_per_param = 0.0 if self.offloads[-1][0] else 16.0

    def splits_of(self, g: int) -> list[tuple[int, int, int, int, int, int]]:
        """Every (G, dp, tp, pp, cp, B used) split of exactly g GPUs; the batch rounds down to a
        multiple of dp when `flexible`."""
        B, out = self.B, []
        for tp in self.tps:
            for cp in self.cps:
                for pp in range(1, self.model.n_layer + 1):
                    if g % (tp * pp * cp) == 0:
                        dp = g // (tp * pp * cp)
                        used = flexible_batch(B, dp) if self.flexible else (B if B % dp == 0 else 0)
                        if used and g <= self.limit:
                            out.append((g, dp, tp, pp, cp, used))
        return out

    def exact_splits(self) -> list[tuple[int, int, int, int, int, int]]:
        """Auto-size: every cluster size an exact split of the batch gives, smallest G first."""
        L, B = self.model.n_layer, self.B
        return sorted((dp * tp * pp * cp, dp, tp, pp, cp, B) for tp in self.tps for cp in self.cps
                      for pp in range(1, L + 1) for dp in divisors(B) if dp * tp * pp * cp <= self.limit)

    def visit(self, dp: int, tp: int, pp: int, cp: int, used: int) -> list[tuple[float, Layout]]:
        """The best layouts of one split over its EP degrees and stage splits, timed per requested batch."""
        found = []
        for ep in ep_options(self.model, dp):
            for stages in stage_options(self.model, pp):
                self.stats["splits"] += 1
                for t, lay in _best_for_split(self.em, used, dp, tp, pp, self.stats, cp, ep, stages, self.offloads):
                    found.append((t * self.B / used, lay))  # per requested batch: comparable across roundings
        return found

    def cannot_work(self, g: int, dp: int, tp: int, pp: int, cp: int) -> bool:
        """A split the lower bounds rule out untimed: its compute alone at peak x eta_gemm misses the
        deadline, or its ZeRO-3 state alone overflows memory. Every stage option keeps at least
        ceil(L/p) layers on some stage; under ZeRO-3 (with or without EP: experts shard over dp cp / ep
        of tp ep ranks) that stage holds >= 16 B per parameter / (dp cp); with everything offloaded
        nothing per parameter need stay."""
        if self.flops_step / (g * self.peak_flops * self.em.eff.eta_gemm) > self.t_max:
            return True
        stage_state = self.min_state_bytes_per_param * -(-self.model.n_layer // pp) * self.em.layer_params
        return stage_state / (tp * dp * cp) > self.hardware.memory_bytes

    def fixed(self, G: int) -> list[tuple[float, Layout]]:
        """Every fitting layout of G GPUs."""
        return [x for _, dp, tp, pp, cp, used in sorted(self.splits_of(G)) for x in self.visit(dp, tp, pp, cp, used)]

    def auto_size(self) -> tuple[list[tuple[float, Layout]], int | None]:
        """(the layouts of the smallest G that meets the deadline, that G), or, when none does, (the
        fastest layouts of the largest clusters, None)."""
        splits = self.exact_splits()
        ranked: list[tuple[float, Layout]] = []
        feasible_G = None
        for g, dp, tp, pp, cp, used in splits:
            if feasible_G is not None and g > feasible_G:
                break
            if self.cannot_work(g, dp, tp, pp, cp):
                continue
            found = self.visit(dp, tp, pp, cp, used)
            ranked.extend(found)
            if any(t <= self.t_max for t, _ in found):
                feasible_G = g
        if feasible_G is not None:
            if self.flexible:
                # The smallest G is found over exact splits; its layouts are then ranked as a fixed G of
                # that size ranks them, rounded batches included, so `--G <the answer>` (the Plan tab's
                # ctrl+g) answers the same layout instead of a faster one the auto-size never looked at.
                for _, dp, tp, pp, cp, used in self.splits_of(feasible_G):
                    if used != self.B:  # the exact splits were visited above
                        ranked.extend(self.visit(dp, tp, pp, cp, used))
            return [(t, lay) for t, lay in ranked if lay.gpus == feasible_G and t <= self.t_max], feasible_G
        # Nothing meets the deadline: report the fastest layouts of the largest clusters the
        # model can use (what comes closest), timing the splits the bounds skipped.
        for _, dp, tp, pp, cp, used in splits[-64:]:
            ranked.extend(self.visit(dp, tp, pp, cp, used))
        return sorted(set(ranked), key=lambda x: x[0]), None


def _one_per_split(ranked: list[tuple[float, Layout]]) -> list[tuple[float, Layout]]:
    """One entry per split (dp, tp, pp, cp, ep, v, stages): its best micro-batch / recompute / offload /
    ZeRO. Micro-batch variants of one split differ by a few percent and would crowd out the real
    alternatives."""
    seen, distinct = set(), []
    for t, lay in ranked:
        key = (lay.dp, lay.tp, lay.pp, lay.cp, lay.ep, lay.interleave, lay.first_stage_layers, lay.last_stage_layers)
        if key not in seen:
            seen.add(key)
            distinct.append((t, lay))
    return distinct


def search_with_stats(
    model: ModelSpec,
    hardware: HardwareSpec,
    goal: Goal,
    G: int | None = None,
    top: int = 10,
    efficiency: Efficiency | None = None,
    attention: str = "flash",
    dropout: bool = False,
    max_gpus: int = 1 << 20,
    flexible: bool = True,
) -> tuple[list[dict], dict]:
    t0 = time.perf_counter()
    if G is not None and (isinstance(G, bool) or not isinstance(G, int) or G < 1):
        raise UserError(f"G = {G!r}; accepted: an integer >= 1", field="G")
    b0 = physics(model, hardware, goal)
    em = EngineeringModel(model, hardware, None, goal.precision, efficiency, attention, dropout)
    walk = _LayoutSearch(em, b0.global_batch_seqs, b0.t_step_max_s, max_gpus, flexible,
                         "fixed" if G else "auto")
    ranked, feasible_G = (walk.fixed(G), None) if G is not None else walk.auto_size()
    ranked.sort(key=lambda x: (x[1].gpus if feasible_G else 0, _tie(x[0]), -x[1].micro_batch, x[0], -x[1].dp))
    results = _finish(em, b0.n_steps, walk.t_max, walk.B, _one_per_split(ranked), top)
    stats = walk.stats
    stats["seconds"] = time.perf_counter() - t0
    stats["feasible"] = bool(results) and results[0]["meets_deadline"]
    stats["G_min_physics"] = b0.G_min
    return results, stats


def search(model: ModelSpec, hardware: HardwareSpec, goal: Goal, G: int | None = None, top: int = 10, **kw) -> list[dict]:
    """Ranked refined layouts (see the module docstring)."""
    return search_with_stats(model, hardware, goal, G, top, **kw)[0]
