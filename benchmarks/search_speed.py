"""Time the Step-2 layout search (engine/sizing/search.py).

    python benchmarks/search_speed.py [--repeat N]

Targets (issue #3): a fixed G = 4096 search over the full space < 0.5 s; auto-size for llama3-405b
< 2 s. Each case runs N times (default 5) in this process; the median wall time is printed with
what the search covered ("space": (split, interleave, micro-batch, recompute, ZeRO) combinations;
"timed": how many it had to time after exact dominance pruning). For comparison the script also
times every combination of one case with no pruning at all (brute force).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.sizing.physics import default_goal, physics  # noqa: E402
from engine.sizing.refine import RECOMPUTE, EngineeringModel, Layout  # noqa: E402
from engine.sizing.design import divisors  # noqa: E402
from engine.sizing.search import _interleaves, search_with_stats, tp_options  # noqa: E402
from engine.specs import load_hardware, load_model  # noqa: E402

DAY = 86400.0


def cases():
    l405 = load_model("llama3-405b")
    g175 = load_model("gpt3-175b")
    h100, a100 = load_hardware("h100-sxm"), load_hardware("a100-80g-sxm")
    big_goal = default_goal(l405, tokens=15e12, deadline_s=120 * DAY, global_batch_tokens=16 * 2**20)
    return [
        ("fixed G=4096 llama3-405b h100 (default goal, 4M batch)", l405, h100, default_goal(l405), 4096),
        ("fixed G=4096 llama3-405b h100 (15T tok, 120 d, 16M batch)", l405, h100, big_goal, 4096),
        ("fixed G=4096 gpt3-175b a100 (default goal)", g175, a100, default_goal(g175), 4096),
        ("auto-size llama3-405b h100 (default goal: 20 tok/param, 30 d)", l405, h100, default_goal(l405), None),
        ("auto-size llama3-405b h100 (15T tok, 120 d, 16M batch)", l405, h100, big_goal, None),
    ]


def brute_force(model, hw, goal, G):
    """Every layout of G GPUs timed, no pruning; returns (seconds, layouts timed)."""
    t0 = time.perf_counter()
    B = physics(model, hw, goal).global_batch_seqs
    em = EngineeringModel(model, hw, precision=goal.precision)
    n = 0
    for tp in tp_options(model, hw):
        for pp in range(1, model.n_layer + 1):
            if G % (tp * pp) or B % (G // (tp * pp)):
                continue
            dp = G // (tp * pp)
            for v in _interleaves(model, pp, B // dp):
                for b in divisors(B // dp):
                    if v > 1 and (B // (dp * b)) % pp:
                        continue
                    for rc in RECOMPUTE:
                        for z in ((0, 1, 2, 3) if dp > 1 else (0,)):
                            lay = Layout(dp, tp, pp, b, rc, z, v, tp > 1)
                            em.memory_total(lay, B)
                            em.step_time(lay, B)
                            n += 1
    return time.perf_counter() - t0, n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()} "
          f"(load average {os.getloadavg()[0]:.2f}: shared with other work)")
    for name, model, hw, goal, G in cases():
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            results, stats = search_with_stats(model, hw, goal, G)
            times.append(time.perf_counter() - t0)
        best = results[0] if results else None
        answer = "no layout" if best is None else (
            f"G {best['chosen']['gpus']} = {best['chosen']['dp']}x{best['chosen']['tp']}x{best['chosen']['pp']} "
            f"step {best['step_time_s']:.2f} s ({'meets' if best['meets_deadline'] else 'misses'} the {best['t_step_max_s']:.2f} s budget)")
        print(f"{name:62s} median {statistics.median(times) * 1e3:8.1f} ms  (max {max(times) * 1e3:.1f})  "
              f"space {stats['space']:,}  timed {stats['timed']:,}  -> {answer}")
    model, hw = load_model("llama3-405b"), load_hardware("h100-sxm")
    goal = default_goal(model, tokens=15e12, deadline_s=120 * DAY, global_batch_tokens=16 * 2**20)
    seconds, n = brute_force(model, hw, goal, 4096)
    print(f"{'brute force, no pruning: G=4096 llama3-405b (16M batch)':62s} {seconds * 1e3:8.1f} ms for {n:,} layouts "
          f"({seconds / n * 1e6:.0f} us per layout)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
