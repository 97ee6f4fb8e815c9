"""Step 1 — architecture: arrange devices so the Step-0 physics is respected (the seed contract).

`run_design(bundle0, G=None, eta_compute=..., eta_fabric=...) -> dict` with keys `feasible`,
`solution`, `diagnostics` (physics echo + search trace) and `no_solution_reason` (structured; None
when feasible). It only partitions Step-0 quantities and applies efficiency factors:

    bytes_per_device = B_state_min_bytes / DP + B_step_bytes / (TP x PP)
    t_compute_s      = F_step_flop / (G x F_dev x eta_compute)
    t_comm_s         = t_comm_min_s / (TP x PP) / eta_fabric     (0 when DP = 1: nothing to all-reduce)
    t_step_s         = t_compute_s + t_comm_s  <=  t_step_max_s

The seed wrote t_comm = t_comm_min_s / eta_fabric for every layout. That charges each device the
all-reduce of the WHOLE model's gradients even when TP x PP shards them, so a 405B model could
never train faster than one 32 s all-reduce per step. Each device only all-reduces the gradient
shard it owns, B_exchange / (TP x PP): the same Step-0 quantity, partitioned like B_step.

Mode A (G=None, auto-size): the smallest G that closes, then the highest DP.
Mode B (G fixed): the split of G with the most headroom, then the highest DP.

Candidate splits are the sensible ones: TP divides n_head (and n_kv_head) and the node size (a TP
group never straddles two nodes),
PP divides n_layer, DP divides the global batch in sequences (each replica gets whole sequences),
and a profile without an inter-node network is limited to one node. The search is exhaustive over
that finite space, so auto-size is exact: no smaller G satisfies the constraints.
"""

from __future__ import annotations


from engine.errors import UserError
from engine.sizing.physics import PhysicsBundle

DEFAULT_ETA_COMPUTE = 0.40  # sustained / peak FLOP/s; typical MFU of large runs (PaLM 46%, GPT-3 on Megatron ~40%)
DEFAULT_ETA_FABRIC = 0.70  # achieved / nominal link bandwidth; NCCL all-reduce bus bandwidth ~70-80% of line rate


def divisors(n: int) -> list[int]:
    """Every divisor of n, ascending (the one copy Step 1, Step 2 and the search use).

    From n's prime factors (trial division up to the square root of what is left): batch sizes are
    powers of two times small factors, so this is instant where testing every d <= sqrt(n) took
    minutes for a 10^26-sequence batch; the worst case (a large prime) is no slower than that was.
    """
    found = [1]
    rest, p = n, 2
    while p * p <= rest:
        power = 0
        while rest % p == 0:
            rest //= p
            power += 1
        if power:
            found = [d * p**k for d in found for k in range(power + 1)]
        p += 1 if p == 2 else 2
    if rest > 1:
        found += [d * rest for d in found]
    return sorted(found)


def _check_eta(name: str, value: float) -> None:
    if not (0.0 < value <= 1.0):
        raise UserError(f"{name} = {value!r}; accepted: a number in (0, 1]", field=name)


def evaluate(b: PhysicsBundle, dp: int, tp: int, pp: int, eta_compute: float, eta_fabric: float) -> dict:
    """One candidate layout under the Step-1 model: its memory, time and headroom."""
    G = dp * tp * pp
    M = b.hardware.memory_bytes
    bytes_per_device = b.B_state_min_bytes / dp + b.B_step_bytes / (tp * pp)
    t_compute = b.F_step_flop / (G * b.hardware.peak_flops * eta_compute)
    t_comm = b.t_comm_min_s / (tp * pp) / eta_fabric if dp > 1 else 0.0
    t_step = t_compute + t_comm
    memory_ratio = bytes_per_device / M
    time_ratio = t_step / b.t_step_max_s
    return {
        "G": G,
        "dp": dp,
        "tp": tp,
        "pp": pp,
        "nodes": -(-G // b.hardware.gpus_per_node),
        "bytes_per_device": bytes_per_device,
        "t_compute_s": t_compute,
        "t_comm_s": t_comm,
        "t_step_s": t_step,
        "t_step_max_s": b.t_step_max_s,
        "memory_headroom": 1.0 - memory_ratio,
        "time_headroom": 1.0 - time_ratio,
        "memory_ok": memory_ratio <= 1.0,
        "time_ok": time_ratio <= 1.0,
        "feasible": memory_ratio <= 1.0 and time_ratio <= 1.0,
    }


def candidate_splits(b: PhysicsBundle, G: int | None = None) -> list[tuple[int, int, int]]:
    """All sensible (dp, tp, pp); with G given, only those whose product is G."""
    model, hw = b.model, b.hardware
    tps = [t for t in divisors(model.n_head) if model.n_kv_head % t == 0 and hw.gpus_per_node % t == 0]
    pps = divisors(model.n_layer)
    dps = divisors(b.global_batch_seqs)
    max_G = hw.gpus_per_node if hw.inter_node_bw is None else None
    out = []
    for tp in tps:
        for pp in pps:
            if G is not None:
                if G % (tp * pp) or b.global_batch_seqs % (G // (tp * pp)):
                    continue
                splits = [G // (tp * pp)]
            else:
                splits = dps
            for dp in splits:
                if max_G is None or dp * tp * pp <= max_G:
                    out.append((dp, tp, pp))
    return out


def _closest(candidates: list[dict]) -> dict:
    """The candidate that violates its worst constraint by the least."""
    return min(candidates, key=lambda c: (max(1 - c["memory_headroom"], 1 - c["time_headroom"]), c["G"]))


def _no_solution(b: PhysicsBundle, candidates: list[dict], G: int | None) -> dict:
    if not candidates:
        limit = "" if b.hardware.inter_node_bw is not None else (
            f"; profile {b.hardware.name} has no inter_node_bw, so at most {b.hardware.gpus_per_node} GPUs (one node)"
        )
        where = f"G = {G}" if G is not None else "any G"
        return {
            "constraint": "layout",
            "message": (
                f"no valid DP x TP x PP split for {where}: TP must divide n_head = {b.model.n_head} and be "
                f"<= {b.hardware.gpus_per_node}, PP must divide n_layer = {b.model.n_layer}, DP must divide the "
                f"global batch of {b.global_batch_seqs} sequences{limit}"
            ),
            "shortfall": None,
            "closest": None,
        }
    best = _closest(candidates)
    mem_over = 1 - best["memory_headroom"]
    time_over = 1 - best["time_headroom"]
    if mem_over >= time_over:
        constraint = "memory"
        message = (
            f"memory: the closest split (DP {best['dp']} x TP {best['tp']} x PP {best['pp']}) needs "
            f"{best['bytes_per_device'] / 1e9:.1f} GB per device, {mem_over:.3g}x the {b.hardware.memory_bytes / 1e9:.0f} GB available"
        )
        shortfall = mem_over
    else:
        constraint = "time"
        message = (
            f"time: the closest split (DP {best['dp']} x TP {best['tp']} x PP {best['pp']}) needs a "
            f"{best['t_step_s']:.3g} s step, {time_over:.3g}x the {b.t_step_max_s:.3g} s budget"
        )
        shortfall = time_over
        if best["t_comm_s"] > b.t_step_max_s:
            message += f" (its gradient all-reduce alone takes {best['t_comm_s']:.3g} s: raise the batch or the deadline)"
    return {"constraint": constraint, "message": message, "shortfall": shortfall, "closest": best}


def run_design(
    bundle0: PhysicsBundle,
    G: int | None = None,
    eta_compute: float = DEFAULT_ETA_COMPUTE,
    eta_fabric: float = DEFAULT_ETA_FABRIC,
) -> dict:
    """Step 1 (the seed contract): auto-size when G is None, else test the fixed cluster G."""
    _check_eta("eta_compute", eta_compute)
    _check_eta("eta_fabric", eta_fabric)
    if G is not None and (isinstance(G, bool) or not isinstance(G, int) or G < 1):
        raise UserError(f"G = {G!r}; accepted: an integer >= 1", field="G")
    candidates = [
        evaluate(bundle0, dp, tp, pp, eta_compute, eta_fabric) for dp, tp, pp in candidate_splits(bundle0, G)
    ]
    feasible = [c for c in candidates if c["feasible"]]
    if G is None:
        ranked = sorted(feasible, key=lambda c: (c["G"], -c["dp"], -min(c["memory_headroom"], c["time_headroom"])))
    else:
        ranked = sorted(feasible, key=lambda c: (-min(c["memory_headroom"], c["time_headroom"]), -c["dp"]))
    solution = ranked[0] if ranked else None
    return {
        "feasible": solution is not None,
        "solution": solution,
        "diagnostics": {
            "mode": "auto" if G is None else "fixed",
            "G_requested": G,
            "eta_compute": eta_compute,
            "eta_fabric": eta_fabric,
            "physics": bundle0.echo(),
            "search_trace": {
                "candidates_evaluated": len(candidates),
                "feasible": len(feasible),
                "rejected_memory": sum(not c["memory_ok"] for c in candidates),
                "rejected_time": sum(not c["time_ok"] for c in candidates),
                "top": ranked[:5],
            },
        },
        "no_solution_reason": None if solution else _no_solution(bundle0, candidates, G),
    }
