"""Time the Step-2 layout search (engine/sizing/search.py).

    python benchmarks/search_speed.py [--repeat N]

Targets (issue #3): a fixed G = 4096 search over the full space < 0.5 s; auto-size for llama3-405b
< 2 s. Issue #20: a 530B model on 5,000+ GPUs, fixed G, the full space with CP, EP, uneven stages,
offload and the flexible batch, well under 1 s, equal to the brute force over the same space. Each case runs N times (default 5) in this process; the median wall time is printed with
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
from engine.sizing.refine import EngineeringModel, layout_text  # noqa: E402
from engine.sizing.search import search_with_stats  # noqa: E402
from engine.specs import ModelSpec, load_hardware, load_model  # noqa: E402
from tests.sizing.brute_force import every_layout  # noqa: E402  (the test's reference space, not the search's walk)

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
        ("fixed G=5128 mt-nlg-530b a100 (2,520 seqs, flexible batch)", MT_NLG_530B, a100,
         default_goal(MT_NLG_530B, tokens=270e9, deadline_s=90 * DAY, global_batch_tokens=2520 * 2048), 5128),
        ("fixed G=5120 mt-nlg-530b-32k a100 (CP in the space)", MT_NLG_530B_32K, a100,
         default_goal(MT_NLG_530B_32K, tokens=270e9, deadline_s=90 * DAY, global_batch_tokens=640 * 32768), 5120),
        ("fixed G=6144 deepseek-v3 h100 fp8 (EP, CP in the space)", DEEPSEEK_V3, h100,
         default_goal(DEEPSEEK_V3, tokens=14.8e12, deadline_s=60 * DAY, global_batch_tokens=1920 * 8192, precision="fp8"), 6144),
        ("auto-size llama3-405b h100 (default goal: 20 tok/param, 30 d)", l405, h100, default_goal(l405), None),
        ("auto-size llama3-405b h100 (15T tok, 120 d, 16M batch)", l405, h100, big_goal, None),
    ]


def brute_force(model, hw, goal, G):
    """Every layout of G GPUs in the search's whole space (CP, EP, uneven stages, offload, the
    flexible batch) timed, no pruning; returns (seconds, layouts timed, best step time per batch)."""
    t0 = time.perf_counter()
    B = physics(model, hw, goal).global_batch_seqs
    em = EngineeringModel(model, hw, precision=goal.precision)
    n, best = 0, float("inf")
    for lay, used in every_layout(model, hw, B, G):
        fits = em.memory_total(lay, used) <= hw.memory_bytes
        t = em.step_time(lay, used)["step_time_s"] * B / used
        n += 1
        if fits:
            best = min(best, t)
    return time.perf_counter() - t0, n, best


# Megatron-Turing NLG 530B (Smith et al. 2022; the shape of published_runs.toml's 530B rows) on
# 5,128 A100s with 2,520 sequences: Calculon's comparison problem. 5,128 = 8 x 641 (641 prime), so
# no dp divides 2,520: only the flexible batch has an answer.
MT_NLG_530B = ModelSpec(name="mt-nlg-530b", n_layer=105, d_model=20480, n_head=128, vocab_size=51200, seq_len=2048)
# The same 530B shape at 32k context, where context parallelism is in the space (CP 1..8), and
# DeepSeek-V3 (profiles/models/deepseek-v3.toml; 671B, 256 routed experts: EP in the space) at 8k.
MT_NLG_530B_32K = MT_NLG_530B.with_(name="mt-nlg-530b-32k", seq_len=32768)
DEEPSEEK_V3 = load_model("deepseek-v3").with_(seq_len=8192)


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
            f"G {best['chosen']['gpus']} = {layout_text(best['chosen'])}, batch {best['chosen']['global_batch_used']}: "
            f"step {best['step_time_s']:.2f} s ({'meets' if best['meets_deadline'] else 'misses'} the {best['t_step_max_s']:.2f} s budget)")
        print(f"{name:62s} median {statistics.median(times) * 1e3:8.1f} ms  (max {max(times) * 1e3:.1f})  "
              f"space {stats['space']:,}  timed {stats['timed']:,}  -> {answer}")
    for name, model, hw, goal, G in cases():
        if G != 5128:
            continue
        seconds, n, best = brute_force(model, hw, goal, G)
        results, _ = search_with_stats(model, hw, goal, G)
        r = results[0]
        pruned = r["step_time_s"] * r["chosen"]["global_batch"] / r["chosen"]["global_batch_used"]
        print(f"brute force, no pruning: {name:37s} {seconds * 1e3:8.1f} ms for {n:,} layouts "
              f"({seconds / n * 1e6:.0f} us per layout); best {best:.3f} s per 2,520 seqs, search {pruned:.3f} s "
              f"({'equal' if abs(pruned / best - 1) < 2e-3 else 'DIFFERENT'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
