"""The bounded min/max series behind the live charts: bounded, extremes kept, recent points exact."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.series import MinMaxSeries

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=150, deadline=None)
@given(ys=st.lists(finite, min_size=1, max_size=600), capacity=st.integers(8, 64), bucket=st.integers(3, 8))
def test_bounded_extremes_kept_subset_in_order(ys, capacity, bucket):
    s = MinMaxSeries(capacity=capacity, bucket=bucket)
    for i, y in enumerate(ys):
        s.append(i, y)
        assert len(s) <= capacity
    pts = s.points()
    ys_kept = [p[1] for p in pts]
    assert min(ys_kept) == min(ys) and max(ys_kept) == max(ys)  # a spike is never lost
    xs = [p[0] for p in pts]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)  # arrival order, no duplicates
    assert all(ys[int(x)] == y for x, y in pts)  # every kept point is an original point
    assert pts[-1] == (len(ys) - 1, ys[-1])  # the newest point is always there, exact
    assert s.appended == len(ys)


def test_recent_points_stay_exact():
    s = MinMaxSeries(capacity=100)
    for i in range(10_000):
        s.append(i, math.sin(i))
    tail = s.points()[-40:]
    assert tail == [(float(i), math.sin(i)) for i in range(10_000 - 40, 10_000)]


def test_skips_missing_and_non_finite():
    s = MinMaxSeries(capacity=8)
    assert not s.append(1, None)
    assert not s.append(None, 1.0)
    assert not s.append(1, float("nan"))
    assert not s.append(1, float("inf"))
    assert not s.append(1, "abc")
    assert s.append(1, 2) and len(s) == 1 and s.version == 1


@settings(max_examples=100, deadline=None)
@given(ys=st.lists(finite, min_size=1, max_size=400), buckets=st.integers(1, 50))
def test_view_bounded_and_keeps_extremes(ys, buckets):
    s = MinMaxSeries(capacity=1000)
    s.extend(enumerate(ys))
    xs, vy = s.view(buckets)
    assert len(xs) == len(vy) <= max(2 * buckets, len(ys) if len(ys) <= 2 * buckets else 0)
    assert min(vy) == min(ys) and max(vy) == max(ys)
    assert xs == sorted(xs)


def test_bad_sizes_refused():
    with pytest.raises(ValueError):
        MinMaxSeries(capacity=4)
    with pytest.raises(ValueError):
        MinMaxSeries(bucket=2)
