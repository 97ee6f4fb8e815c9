"""Learning-rate schedule and sequence-length curriculum: pure functions of training progress (torch-free).

Both are functions of (step, progress) only, never of history, so a resumed run follows exactly the
schedule an uninterrupted one would. `progress` in [0, 1] is step / steps for a step budget, or
elapsed training seconds / budget seconds for an --hours budget.
"""

from __future__ import annotations

import math

from engine.errors import UserError
from engine.inputs import curriculum as parse_curriculum  # noqa: F401  (the one curriculum grammar, as `lsdt bands`)

DECAYS = ("cosine", "linear", "constant")


def lr_at(step: int, progress: float, lr: float, warmup: int, min_lr_frac: float, decay: str) -> float:
    """Linear warm-up over `warmup` steps, then decay from lr to lr x min_lr_frac as progress goes 0 -> 1.

    Cosine: Loshchilov & Hutter 2017 (SGDR) without restarts, as in GPT-3 (Brown et al. 2020, App. B,
    which decays to 10 % of the peak: min_lr_frac = 0.1). Linear: straight line to the same floor.
    `progress` is measured over the post-warm-up part of the run.
    """
    if step < warmup:
        return lr * (step + 1) / warmup
    q = min(1.0, max(0.0, progress))
    if decay == "constant":
        return lr
    if decay == "linear":
        shape = 1.0 - q
    elif decay == "cosine":
        shape = 0.5 * (1.0 + math.cos(math.pi * q))
    else:
        raise UserError(f"--decay {decay!r}; accepted: {' | '.join(DECAYS)}")
    return lr * (min_lr_frac + (1.0 - min_lr_frac) * shape)


def seq_len_at(curriculum: tuple[tuple[int, float], ...], progress: float) -> int:
    """The stage's sequence length at `progress` of the whole run (stages in the order given)."""
    edge = 0.0
    for seq, frac in curriculum:
        edge += frac
        if progress < edge - 1e-12:
            return seq
    return curriculum[-1][0]
