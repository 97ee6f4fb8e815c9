"""The reference space of the layout search, enumerated with no pruning: every layout of exactly G
GPUs (CP, EP, uneven stages, offload, ZeRO, the flexible batch). Written from the search's option
lists, not its walk, so the pruned search can be checked against it (tests/sizing/test_refine_search.py)
and timed against it (benchmarks/search_speed.py)."""

from __future__ import annotations

from collections.abc import Iterator

from engine.sizing.design import divisors
from engine.sizing.refine import RECOMPUTE, Layout
from engine.sizing.search import _interleaves, cp_options, ep_options, offload_options, stage_options, tp_options
from engine.specs import HardwareSpec, ModelSpec


def every_layout(model: ModelSpec, hw: HardwareSpec, global_batch_seqs: int, G: int) -> Iterator[tuple[Layout, int]]:
    """(layout, sequences it runs): the batch rounds down to a multiple of dp (Calculon's rule)."""
    B = global_batch_seqs
    for tp in tp_options(model, hw):
        for cp in cp_options(model):
            for pp in range(1, model.n_layer + 1):
                if G % (tp * pp * cp):
                    continue
                dp = G // (tp * pp * cp)
                used = B - B % dp
                if not used:
                    continue
                for ep in ep_options(model, dp):
                    for stages in stage_options(model, pp):
                        for v in _interleaves(model, pp, used // dp, stages):
                            for b in divisors(used // dp):
                                if v > 1 and (used // (dp * b)) % pp:
                                    continue
                                for rc in RECOMPUTE:
                                    for off in offload_options(hw):
                                        for z in ((0, 1, 2, 3) if dp * cp > 1 else (0,)):
                                            yield Layout(dp, tp, pp, b, rc, z, v, tp > 1, cp, ep, *stages, *off), used
