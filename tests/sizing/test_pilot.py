"""Pilot extrapolation: the L(t) = a + b t^-c fit recovers known curves, refuses what it cannot support."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import UserError
from engine.sizing.pilot import MAX_EXTRAPOLATION, project_pilot, read_metrics


def curve(a, b, c, n=2000, t_end=7200.0, noise=0.0, seed=0, metric="loss"):
    rng = random.Random(seed)
    out = []
    for i in range(1, n + 1):
        t = t_end * i / n
        out.append({"step": i, "time": t, metric: a + b * t**-c + rng.gauss(0, noise), "tokens": i * 1000, "tok_per_s": 1e5})
    return out


def truth(a, b, c, t):
    return a + b * t**-c


def test_recovers_noise_free_curve():
    r = project_pilot(curve(2.5, 30.0, 0.4), target=72_000)
    assert r.status == "ok", r.reason
    f = r.fit
    assert f.a == pytest.approx(2.5, rel=1e-3) and f.b == pytest.approx(30.0, rel=1e-2) and f.c == pytest.approx(0.4, rel=1e-3)
    assert r.loss_at_target == pytest.approx(truth(2.5, 30.0, 0.4, 72_000), rel=1e-4)
    assert r.range[0] <= r.loss_at_target <= r.range[1]


def test_noisy_curve_range_covers_truth():
    r = project_pilot(curve(3.0, 20.0, 0.5, noise=0.05, seed=3), target=60_000)
    assert r.status == "ok", r.reason
    lo, hi = r.range
    assert lo <= truth(3.0, 20.0, 0.5, 60_000) <= hi
    assert hi - lo < 0.2 * r.loss_at_target


def test_interpolation_inside_the_pilot():
    r = project_pilot(curve(2.0, 10.0, 0.3), target=3600)
    assert r.status == "ok" and r.extrapolation == pytest.approx(0.5)
    assert r.loss_at_target == pytest.approx(truth(2.0, 10.0, 0.3, 3600), rel=1e-4)


def test_refuses_too_few_points():
    r = project_pilot(curve(2.5, 30.0, 0.4, n=10), target=20_000)
    assert r.status == "refused" and "too short" in r.reason and r.loss_at_target is None


def test_refuses_too_far_ahead():
    r = project_pilot(curve(2.5, 30.0, 0.4, t_end=600), target=600 * (MAX_EXTRAPOLATION + 1))
    assert r.status == "refused" and "x ahead" in r.reason and r.loss_at_target is None


def test_refuses_flat_noise():
    recs = curve(3.0, 0.0, 0.5, noise=0.3, seed=7)
    r = project_pilot(recs, target=72_000)
    assert r.status == "refused" and r.loss_at_target is None and r.range is None


def test_refuses_rising_loss():
    recs = [{"time": t, "loss": 2.0 + t / 1000} for t in range(10, 5000, 10)]
    r = project_pilot(recs, target=50_000)
    assert r.status == "refused" and r.loss_at_target is None


def test_refuses_too_noisy():
    r = project_pilot(curve(2.5, 30.0, 0.4, noise=1.5, n=300, seed=1), target=140_000)
    assert r.status == "refused" and r.loss_at_target is None


def test_no_usable_lines():
    r = project_pilot([{"step": 1, "loss": 3.0}], target=100)
    assert r.status == "refused" and "time" in r.reason


def test_val_loss_metric():
    recs = curve(2.5, 30.0, 0.4, n=200, metric="val_loss")
    assert project_pilot(recs, 50_000, metric="val_loss").status == "ok"
    assert project_pilot(recs, 50_000, metric="loss").status == "refused"
    with pytest.raises(UserError, match="metric"):
        project_pilot(recs, 50_000, metric="bpb")


def test_read_metrics_truncated_tail_and_bad_lines(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in curve(2.5, 30, 0.4, n=50)) + '\n{"step": 51, "ti')
    assert len(read_metrics(p)) == 50
    p.write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(UserError, match=r"metrics.jsonl:2: invalid JSON"):
        read_metrics(p)
    p.write_text('[1, 2]\n{"step": 2}\n')
    with pytest.raises(UserError, match="expected a JSON object"):
        read_metrics(p)
    with pytest.raises(UserError, match="no such file"):
        read_metrics(tmp_path / "missing.jsonl")


@settings(max_examples=25, deadline=None)
@given(a=st.floats(1.0, 4.0), b=st.floats(2.0, 50.0), c=st.floats(0.15, 1.2), ratio=st.floats(1.5, 15))
def test_noise_free_projection_is_exact(a, b, c, ratio):
    t_end = 7200.0
    r = project_pilot(curve(a, b, c, n=400, t_end=t_end), target=t_end * ratio)
    assert r.status == "ok", r.reason
    assert r.loss_at_target == pytest.approx(truth(a, b, c, t_end * ratio), rel=2e-3)
    assert r.range[0] <= r.loss_at_target <= r.range[1]


def test_tokens_axis():
    recs = [{k: v for k, v in r.items() if k != "time"} for r in curve(2.5, 30.0, 0.4, n=400, t_end=4e8)]
    for r, x in zip(recs, range(1, 401)):
        r["tokens"] = 4e8 * x / 400
    from engine.sizing.pilot import pick_axis

    assert pick_axis(recs, "loss") == "tokens"
    r = project_pilot(recs, target=2e9, axis="tokens")
    assert r.status == "ok" and r.unit == "tokens"
    assert r.loss_at_target == pytest.approx(truth(2.5, 30.0, 0.4, 2e9), rel=1e-3)
    assert project_pilot(recs, target=2e9, axis="time").status == "refused"
    assert project_pilot(recs, target=None, axis="tokens").reason == "no target tokens to project to"
    with pytest.raises(UserError, match="axis"):
        project_pilot(recs, 1.0, axis="steps")
