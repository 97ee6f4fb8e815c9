"""LR schedule and curriculum: properties over random settings (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import UserError
from engine.runtime.train.schedule import lr_at, parse_curriculum, seq_len_at

settings = st.fixed_dictionaries({
    "lr": st.floats(1e-6, 1.0), "warmup": st.integers(0, 50), "steps": st.integers(51, 2000),
    "min_lr_frac": st.floats(0.0, 1.0), "decay": st.sampled_from(["cosine", "linear", "constant"]),
})


def _lrs(s):
    out = []
    for step in range(s["steps"]):
        progress = (step - s["warmup"]) / max(1, s["steps"] - s["warmup"])
        out.append(lr_at(step, progress, s["lr"], s["warmup"], s["min_lr_frac"], s["decay"]))
    return out


@given(settings)
def test_lr_stays_between_floor_and_peak_and_never_rises_after_warmup(s):
    lrs = _lrs(s)
    floor = s["lr"] * s["min_lr_frac"]
    assert all(0 < x <= s["lr"] * (1 + 1e-12) for x in lrs)
    after = lrs[s["warmup"]:]
    assert all(x >= floor * (1 - 1e-12) for x in after)
    assert all(b <= a * (1 + 1e-12) for a, b in zip(after, after[1:]))
    assert all(b >= a for a, b in zip(lrs[: s["warmup"]], lrs[1: s["warmup"]]))  # warm-up rises
    if s["warmup"]:
        assert lrs[s["warmup"] - 1] == pytest.approx(s["lr"])


@given(st.lists(st.tuples(st.integers(1, 8192), st.integers(1, 100)), min_size=1, max_size=5,
                unique_by=lambda stage: stage[0]).map(sorted))
def test_curriculum_visits_stages_in_order_with_their_share(stages):
    total = sum(w for _, w in stages)
    text = ",".join(f"{seq}:{w / total!r}" for seq, w in stages)
    cur = parse_curriculum(text)
    n = 1000
    seen = [seq_len_at(cur, i / n) for i in range(n)]
    # each stage occupies (about) its fraction of the run, in the order given
    for k, (seq, frac) in enumerate(cur):
        start = round(sum(f for _, f in cur[:k]) * n)
        end = round(sum(f for _, f in cur[: k + 1]) * n)
        inner = seen[start + 1: end - 1]
        assert all(s == seq for s in inner)
    assert seq_len_at(cur, 1.0) == cur[-1][0]


@pytest.mark.parametrize("text", ["512:0.5,1024", "a:1", "512:0.5,1024:0.6", "0:1", "512:-1,1024:2", "1024:0.5,512:0.5", "512.:1"])
def test_bad_curricula_are_user_errors(text):
    with pytest.raises(UserError, match="--curriculum"):
        parse_curriculum(text)


def test_train_and_bands_share_one_curriculum_grammar():
    """`lsdt train --curriculum` and `lsdt bands --curriculum` read the same text the same way; the
    bare list (bands' old form) is equal shares."""
    from engine.sizing.curriculum import parse_curriculum as bands_curriculum

    assert parse_curriculum is bands_curriculum
    assert parse_curriculum("512,1024") == [(512, 0.5), (1024, 0.5)]
    assert parse_curriculum("512:0.25,2048:0.75") == [(512, 0.25), (2048, 0.75)]
