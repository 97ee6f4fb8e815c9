"""Bands says each thing once and the same way everywhere (issue 17): no "room for a deeper model"
beside a recommendation that calls the deeper depth undertrained; a fallback of none says why;
the curriculum's token figure says why it differs from the table's."""

from __future__ import annotations

from engine import fmt
from engine.commands.bands import render
from engine.sizing import bands as B
from engine.specs import load_hardware


def test_no_room_for_a_deeper_model_when_the_deeper_one_is_undertrained():
    r = B.plan_bands(load_hardware("rtx4090"), hours=24)
    rec = r.recommended.depth
    rows = {row.depth: row for row in r.rows}
    deeper = min(d for d in rows if d > rec)
    assert rows[deeper].tokens_per_param < 8  # the recommendation's own reason
    assert "room for a deeper model" not in rows[rec].verdict
    assert f"d{deeper} would be undertrained" in rows[rec].verdict
    for depth, row in rows.items():
        if "room for a deeper model" in row.verdict:
            nxt = min(d for d in rows if d > depth)
            assert rows[nxt].fits and rows[nxt].tokens_per_param >= 8


def test_the_batch_in_each_verdict_is_the_batch_the_run_uses():
    r = B.plan_bands(load_hardware("rtx4090"), hours=24)
    for row in r.rows:
        assert f"device batch {row.device_batch} x {row.grad_accum} accum" in row.verdict
        if row.max_device_batch != row.device_batch:
            assert f"fits up to {row.max_device_batch}" in row.verdict


def test_fallback_none_says_why():
    r = B.plan_bands(load_hardware("rtx4090"), hours=8)
    assert r.recommended.depth == min(row.depth for row in r.rows) and r.fallback is None
    why = r.no_fallback_reason()
    assert "shallowest depth asked for" in why
    assert f"fallback  {why}" in render(r)


def test_one_pretraining_token_figure_per_basis():
    r = B.plan_bands(load_hardware("rtx4090"), hours=8)
    text = render(r)
    c = r.curriculum
    row = next(x for x in r.rows if x.depth == c.depth)
    assert fmt.count(row.pretrain_tokens) in text.splitlines()[4]  # the table's pretrain column
    assert row.tokens_per_param * row.params == row.pretrain_tokens or abs(
        row.tokens_per_param * row.params / row.pretrain_tokens - 1) < 1e-9
    note = r.curriculum_note(fmt.count)
    assert note and fmt.count(row.pretrain_tokens) in note
    assert f"{fmt.count(c.tokens)} pretraining tokens in" in text and note in text
