"""What "best" means for an auto-sized plan: `--objective gpus | time | cost`.

    gpus  the fewest GPUs that meet the deadline (search.py's auto-size answer; the default)
    time  the shortest run: the fastest layout of any cluster in [G_gpus, SPAN x G_gpus]
    cost  the fewest GPU-hours (= the lowest bill at one price per GPU-hour) in the same range

The cheapest run is not always the smallest cluster: the smallest G that fits may need full
activation recompute (a third more compute) where twice the GPUs run without it. Past SPAN x the
smallest cluster, more GPUs only add pipeline bubbles and communication per token (and time is
no longer the goal the deadline asked for); a larger cluster can still be tested with a fixed G.
With a fixed G every objective is the same answer: the fastest layout of G GPUs (at one G, the
shortest run is also the fewest GPU-hours).

The range is searched as fixed-G searches (search.py, unchanged), one per cluster size that has
a valid split, so each candidate is exactly what `--G N` would answer.
"""

from __future__ import annotations

from engine.sizing.design import divisors
from engine.sizing.efficiency import Efficiency
from engine.sizing.physics import physics
from engine.sizing.search import search_with_stats, tp_options
from engine.specs import Goal, HardwareSpec, ModelSpec

OBJECTIVES = ("gpus", "time", "cost")
OBJECTIVE_WORDS = {"gpus": "fewest GPUs", "time": "shortest run", "cost": "lowest cost"}
# Clusters up to 8x the smallest feasible one are compared (8x: one HGX node -> 8 nodes; the
# bubble and all-reduce share per token only grows past that).
SPAN = 8
# The most cluster sizes timed for one answer (keeps `--objective cost` near a second on a CPU).
MAX_SIZES = 48
_KEY = {"time": lambda r: (r["wall_time_s"], r["chosen"]["gpus"]), "cost": lambda r: (r["gpu_hours"], r["wall_time_s"])}


def cluster_sizes(model: ModelSpec, hardware: HardwareSpec, goal: Goal, low: int, high: int) -> list[int]:
    """Every G in (low, high] with at least one split search.py would try (TP per node and head,
    PP <= n_layer, DP dividing the global batch)."""
    B = physics(model, hardware, goal).global_batch_seqs
    limit = high if hardware.inter_node_bw is not None else min(high, hardware.gpus_per_node)
    sizes = {dp * tp * pp for tp in tp_options(model, hardware) for dp in divisors(B) if dp * tp <= limit
             for pp in range(1, min(model.n_layer, limit // (dp * tp)) + 1)}
    return sorted(g for g in sizes if low < g <= limit)


def search_objective(model: ModelSpec, hardware: HardwareSpec, goal: Goal, G: int | None, top: int,
                     efficiency: Efficiency | None, objective: str = "gpus") -> tuple[list[dict], dict]:
    """search_with_stats ranked by `objective` (see the module docstring); stats gain "objective"
    and "sizes" (cluster sizes compared)."""
    layouts, stats = search_with_stats(model, hardware, goal, G, top=top, efficiency=efficiency)
    stats = {**stats, "objective": objective, "sizes": 1}
    if objective == "gpus" or G is not None or not stats["feasible"]:
        return layouts, stats
    G_min = layouts[0]["chosen"]["gpus"]
    pool = [r for r in layouts if r["meets_deadline"]]
    sizes = cluster_sizes(model, hardware, goal, G_min, SPAN * G_min)[:MAX_SIZES]
    for g in sizes:
        more, more_stats = search_with_stats(model, hardware, goal, g, top=top, efficiency=efficiency)
        pool += [r for r in more if r["meets_deadline"]]
        for k in ("splits", "space", "memory_checks", "timed"):
            stats[k] += more_stats[k]
    stats["sizes"] += len(sizes)
    pool.sort(key=_KEY[objective])
    return pool[:top], stats
