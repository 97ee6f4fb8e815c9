"""Sequence-length curricula: train short sequences first, then longer ones, inside one time budget.

A curriculum is a list of stages `(seq_len, time_fraction)`: stage i runs for time_fraction x the
pretraining time at sequence length seq_len. Shorter sequences cost fewer attention FLOPs per token
(the 12 x n_head x head_dim x context term of counts.flops_per_token), so the early stages see more
tokens per second; the seed's 4090 plan ("512 -> 1024 -> 2048 (late)") uses that to buy early
throughput.

Budgets add up by construction: stage times sum to the pretraining time exactly (the last stage
takes the remainder) and stage tokens are whole numbers whose sum is the curriculum's token total,
which the bands planner reports as its pretraining tokens.
"""

from __future__ import annotations

from typing import Callable

from engine.inputs import curriculum as parse_curriculum  # noqa: F401  (the one curriculum grammar)

FIRST_STAGE_SEQ = 512  # the seed's curriculum starts at 512 (seed 001, "Candidate Architecture Bands")


def default_curriculum(seq_len: int) -> list[tuple[int, float]]:
    """512, 1024, ... doubling up to `seq_len` (the last stage is seq_len itself), equal time shares.

    Equal shares because nothing measured yet prefers another split; the seed only says the longest
    stage comes late. Override with --curriculum once a pilot shows better.
    """
    seqs: list[int] = []
    s = FIRST_STAGE_SEQ
    while s < seq_len:
        seqs.append(s)
        s *= 2
    seqs.append(seq_len)
    return [(s, 1.0 / len(seqs)) for s in seqs]


def plan_curriculum(
    stages: list[tuple[int, float]],
    pretrain_s: float,
    tokens_per_s_at: Callable[[int], float],
    flops_per_token_at: Callable[[int], float],
) -> dict:
    """Split `pretrain_s` seconds over the stages; tokens and FLOPs per stage and in total.

    `tokens_per_s_at(seq)` is the throughput at that sequence length (estimated or measured);
    `flops_per_token_at(seq)` the model's training FLOPs per token there.
    """
    out = []
    time_used = 0.0
    for i, (seq, frac) in enumerate(stages):
        time_s = pretrain_s - time_used if i == len(stages) - 1 else frac * pretrain_s
        time_used += time_s
        rate = tokens_per_s_at(seq)
        tokens = int(time_s * rate)
        out.append({
            "seq_len": seq,
            "time_fraction": frac,
            "time_s": time_s,
            "tokens_per_s": rate,
            "tokens": tokens,
            "flop": tokens * flops_per_token_at(seq),
        })
    return {
        "stages": out,
        "time_s": sum(s["time_s"] for s in out),
        "tokens": sum(s["tokens"] for s in out),
        "flop": sum(s["flop"] for s in out),
    }
