"""Step-2 layout search: the fastest (dp, tp, pp, micro-batch, recompute, ZeRO, interleave) that
fits in memory and meets the deadline, for a fixed cluster or the smallest one (auto-size).

    search(model, hardware, goal, G=None, top=10, ...) -> list[dict]
        ranked predictions (refine.PREDICT_KEYS + meets_deadline, t_step_max_s, wall_time_s,
        gpu_hours). Fixed G: every layout of G GPUs that fits, fastest first. Auto-size: the
        layouts of the smallest G that fits and meets the deadline, fastest first. When nothing
        meets the deadline, the fastest layouts that fit are returned with meets_deadline False.
    search_with_stats(...) -> (list[dict], stats)   the same, plus what the search visited.

The space: TP divides n_head and n_kv_head and stays in a node; PP is any 1..n_layer (stages get
ceil(L/p) layers); DP divides the global batch; micro-batch divides the per-replica batch;
interleave v > 1 where pp x v divides n_layer and the micro-batches are a multiple of pp;
sequence parallelism whenever TP > 1 (same traffic as plain TP, less memory and elementwise time).

Pruning is exact, by dominance, so the answer equals the exhaustive one:
  * at fixed (dp, tp, pp, v, micro-batch), step time never falls and memory never rises as recompute
    goes none -> selective -> full, nor as ZeRO goes 1 -> 2 -> 3 (ZeRO 0 moves as many bytes as
    ZeRO 1 and keeps more memory, so it is tried only where dp = 1, where all stages coincide);
    so for each recompute policy only the lowest ZeRO stage that fits is timed;
  * memory never falls as the micro-batch grows, so once the most frugal setting (full recompute,
    the highest ZeRO) does not fit, no larger micro-batch is tried;
  * auto-size visits G in increasing order and stops after the first G with a feasible layout;
    a G whose compute alone at peak x eta_gemm misses the deadline, or whose ZeRO-3 state alone
    overflows memory, is skipped without timing.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

from engine.errors import UserError
from engine.sizing.design import divisors
from engine.sizing.efficiency import Efficiency
from engine.sizing.physics import physics
from engine.sizing.refine import RECOMPUTE, EngineeringModel, Layout
from engine.specs import Goal, HardwareSpec, ModelSpec


def tp_options(model: ModelSpec, hardware: HardwareSpec) -> list[int]:
    """TP divides the heads and the node: a TP group never straddles two nodes (Megatron-LM places
    consecutive ranks in a TP group; with TP not dividing the node size some group would cross
    the slow inter-node link on every layer)."""
    return [t for t in divisors(math.gcd(model.n_head, model.n_kv_head)) if hardware.gpus_per_node % t == 0]


def _interleaves(model: ModelSpec, pp: int, microbatches_max: int) -> list[int]:
    if pp == 1:
        return [1]
    return [v for v in divisors(model.n_layer) if model.n_layer % (pp * v) == 0 and (v == 1 or microbatches_max % pp == 0)]


def _tie(seconds: float) -> float:
    """Step time to 4 significant digits: layouts this close rank by the larger micro-batch, which
    amortises the per-kernel launch overheads the model does not count."""
    return float(f"{seconds:.4g}")


def _best_for_split(em: EngineeringModel, B: int, dp: int, tp: int, pp: int, stats: dict) -> list[tuple[float, Layout]]:
    """Every (micro-batch, v) of one split with its fastest fitting (recompute, ZeRO)."""
    M = em.hw.memory_bytes
    zeros = (1, 2, 3) if dp > 1 else (0,)
    sp = tp > 1
    out: list[tuple[float, Layout]] = []
    per_replica = B // dp
    n_choices = len(RECOMPUTE) * (4 if dp > 1 else 1)  # recompute x ZeRO (all stages coincide at dp = 1)
    for v in _interleaves(em.model, pp, per_replica):
        mbs = [b for b in divisors(per_replica) if v == 1 or (per_replica // b) % pp == 0]
        stats["space"] += len(mbs) * n_choices
        for b in mbs:
            base = Layout(dp, tp, pp, b, "full", zeros[-1], v, sp)
            stats["memory_checks"] += 1
            if em.memory_total(base, B) > M:
                break  # larger micro-batches need more memory still
            best = None
            for rc in RECOMPUTE:
                for z in zeros:
                    lay = replace(base, recompute=rc, zero=z)
                    stats["memory_checks"] += 1
                    if em.memory_total(lay, B) <= M:
                        stats["timed"] += 1
                        t = em.step_time(lay, B)["step_time_s"]
                        if best is None or t < best[0]:  # ties keep less recompute
                            best = (t, lay)
                        break  # higher ZeRO stages are no faster
            if best:
                out.append(best)
    return out


def _finish(em: EngineeringModel, goal_steps: int, t_max: float, B: int, ranked: list[tuple[float, Layout]], top: int) -> list[dict]:
    results = []
    for _, lay in ranked[:top]:
        r = em.evaluate(lay, B)
        r["t_step_max_s"] = t_max
        r["meets_deadline"] = r["step_time_s"] <= t_max
        r["wall_time_s"] = r["step_time_s"] * goal_steps
        r["gpu_hours"] = r["wall_time_s"] * lay.gpus / 3600.0
        results.append(r)
    return results


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
) -> tuple[list[dict], dict]:
    t0 = time.perf_counter()
    if G is not None and (isinstance(G, bool) or not isinstance(G, int) or G < 1):
        raise UserError(f"G = {G!r}; accepted: an integer >= 1", field="G")
    b0 = physics(model, hardware, goal)
    B, t_max = b0.global_batch_seqs, b0.t_step_max_s
    em = EngineeringModel(model, hardware, None, goal.precision, efficiency, attention, dropout)
    stats = {"mode": "fixed" if G else "auto", "splits": 0, "memory_checks": 0, "timed": 0,
             "space": 0}  # space: (split, v, micro-batch, recompute, ZeRO) combinations covered
    tps = tp_options(model, hardware)
    limit = hardware.gpus_per_node if hardware.inter_node_bw is None else max_gpus
    splits = []
    for tp in tps:
        for pp in range(1, model.n_layer + 1):
            for dp in divisors(B):
                g = dp * tp * pp
                if (G is None and g <= limit) or g == G:
                    splits.append((g, dp, tp, pp))
    if G is not None and G > limit:
        splits = []
    splits.sort()
    # Lower bounds for skipping a split untimed: 6 N_active FLOPs per token at peak x eta_gemm
    # (attention, recompute, bubbles and comm only add), and ZeRO-3 state of the slowest stage.
    flops_step = 6.0 * em.counts.matmul_active * B * em.seq
    ranked: list[tuple[float, Layout]] = []
    feasible_G = None
    for g, dp, tp, pp in splits:
        if feasible_G is not None and g > feasible_G:
            break
        if G is None:
            if flops_step / (g * hardware.peak_flops * em.eff.eta_gemm) > t_max:
                continue
            first_p, last_p = em._stage_params(pp, tp)
            if max(first_p, last_p) * 16.0 / dp > hardware.memory_bytes:
                continue
        stats["splits"] += 1
        found = _best_for_split(em, B, dp, tp, pp, stats)
        ranked.extend(found)
        if G is None and any(t <= t_max for t, _ in found):
            feasible_G = g
    if G is None and feasible_G is not None:
        ranked = [(t, lay) for t, lay in ranked if lay.gpus == feasible_G and t <= t_max]
    elif G is None:
        # Nothing meets the deadline: report the fastest layouts of the largest clusters the
        # model can use (what comes closest), timing the splits the bounds skipped.
        for g, dp, tp, pp in splits[-64:]:
            stats["splits"] += 1
            ranked.extend(_best_for_split(em, B, dp, tp, pp, stats))
        ranked = sorted(set(ranked), key=lambda x: x[0])
    ranked.sort(key=lambda x: (x[1].gpus if feasible_G else 0, _tie(x[0]), -x[1].micro_batch, x[0], -x[1].dp))
    # One entry per split (dp, tp, pp, v): its best micro-batch / recompute / ZeRO. Micro-batch
    # variants of one split differ by a few percent and would crowd out the real alternatives.
    seen, distinct = set(), []
    for t, lay in ranked:
        key = (lay.dp, lay.tp, lay.pp, lay.interleave)
        if key not in seen:
            seen.add(key)
            distinct.append((t, lay))
    ranked = distinct
    results = _finish(em, b0.n_steps, t_max, B, ranked, top)
    stats["seconds"] = time.perf_counter() - t0
    stats["feasible"] = bool(results) and results[0]["meets_deadline"]
    stats["G_min_physics"] = b0.G_min
    return results, stats


def search(model: ModelSpec, hardware: HardwareSpec, goal: Goal, G: int | None = None, top: int = 10, **kw) -> list[dict]:
    """Ranked refined layouts (see the module docstring)."""
    return search_with_stats(model, hardware, goal, G, top, **kw)[0]
