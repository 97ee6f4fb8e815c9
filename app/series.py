"""A bounded time series for live charts that keeps spikes visible (pure Python, no Textual).

A run streams points for hours (20 lines/s is 1.4M points in 20 h); a chart needs a few hundred.
`MinMaxSeries` holds at most `capacity` points. When full, the OLDEST half is compacted: it is cut
into buckets of `bucket` consecutive points and each bucket keeps only its lowest and its highest
point (in their original order). Recent points stay exact, old ones get coarser, and no extreme is
ever dropped: the global minimum and maximum of y are always still there, so a loss spike or a
VRAM peak from hour one remains on the chart (the min/max-per-bucket idea of M4 downsampling,
Jugel et al., VLDB 2014). Each compaction costs O(capacity) and frees capacity/4 slots, so an
append is O(1) amortised.

`view(buckets)` thins the series once more for drawing: min and max per x-bucket over the whole
range, so the plotting cost depends on the chart's width, not on how many points arrived.
"""

from __future__ import annotations

import math
from typing import Iterable

DEFAULT_CAPACITY = 2048  # points kept per series; ~16 KB of floats, plenty for a 200-column chart


def _min_max_of(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The lowest and the highest point of `points` (one point if they are the same), in order."""
    lo = min(range(len(points)), key=lambda i: points[i][1])
    hi = max(range(len(points)), key=lambda i: points[i][1])
    if lo == hi:
        return [points[lo]]
    return [points[lo], points[hi]] if lo < hi else [points[hi], points[lo]]


class MinMaxSeries:
    """Points (x, y) in arrival order, bounded by `capacity`, extremes preserved.

    Non-finite or missing y values are skipped (JSON null, NaN): a chart cannot draw them, and
    the run's events say when a loss went NaN. `version` changes on every accepted append, so a
    redraw timer can tell whether anything new arrived since it last drew.
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, bucket: int = 4) -> None:
        if capacity < 8:
            raise ValueError(f"capacity = {capacity}; accepted: >= 8")
        if bucket < 3:
            raise ValueError(f"bucket = {bucket}; accepted: >= 3 (a bucket keeps 2 points)")
        self.capacity = capacity
        self.bucket = bucket
        self._points: list[tuple[float, float]] = []
        self.version = 0
        self.appended = 0  # points accepted since creation (kept or since compacted away)

    def __len__(self) -> int:
        return len(self._points)

    def append(self, x: float | None, y: float | None) -> bool:
        """Add one point; False (and nothing stored) when x or y is missing or not finite."""
        if x is None or y is None:
            return False
        try:
            xf, yf = float(x), float(y)
        except (TypeError, ValueError):
            return False
        if not (math.isfinite(xf) and math.isfinite(yf)):
            return False
        self._points.append((xf, yf))
        self.appended += 1
        self.version += 1
        if len(self._points) > self.capacity:
            self._compact()
        return True

    def extend(self, points: Iterable[tuple[float | None, float | None]]) -> int:
        return sum(self.append(x, y) for x, y in points)

    def clear(self) -> None:
        self._points.clear()
        self.version += 1

    def _compact(self) -> None:
        """Min/max-per-bucket over the oldest half; the newest half stays exact."""
        half = len(self._points) // 2
        old, recent = self._points[:half], self._points[half:]
        kept: list[tuple[float, float]] = []
        for i in range(0, len(old), self.bucket):
            kept.extend(_min_max_of(old[i:i + self.bucket]))
        self._points = kept + recent

    def points(self) -> list[tuple[float, float]]:
        return list(self._points)

    @property
    def last(self) -> tuple[float, float] | None:
        return self._points[-1] if self._points else None

    def y_range(self) -> tuple[float, float] | None:
        if not self._points:
            return None
        ys = [p[1] for p in self._points]
        return min(ys), max(ys)

    def view(self, buckets: int) -> tuple[list[float], list[float]]:
        """(xs, ys) thinned for drawing: at most 2 x `buckets` points, min and max of y per x-bucket.

        Buckets split the x range evenly (a chart column is a slice of x, not of arrival count).
        With fewer points than 2 x buckets everything is returned as is.
        """
        pts = self._points
        if len(pts) <= 2 * buckets or buckets < 1:
            return [p[0] for p in pts], [p[1] for p in pts]
        x0 = min(p[0] for p in pts)
        x1 = max(p[0] for p in pts)
        width = (x1 - x0) / buckets or 1.0
        groups: dict[int, list[tuple[float, float]]] = {}
        for p in pts:
            groups.setdefault(min(buckets - 1, int((p[0] - x0) / width)), []).append(p)
        out: list[tuple[float, float]] = []
        for key in sorted(groups):
            out.extend(_min_max_of(groups[key]))
        return [p[0] for p in out], [p[1] for p in out]


class Ema:
    """TensorBoard's scalar smoothing: an exponential moving average, debiased for its first points.

    smoothed_n = weight x last + (1 - weight) x y_n, divided by 1 - weight^n so the first points are
    not pulled toward 0 (TensorBoard's vz_line_chart, the "Smoothing" slider; weight 0 = raw).
    """

    def __init__(self, weight: float) -> None:
        if not 0.0 <= weight < 1.0:
            raise ValueError(f"smoothing = {weight}; accepted: 0 <= smoothing < 1")
        self.weight = weight
        self.last = 0.0
        self.n = 0

    def __call__(self, y: float) -> float:
        self.n += 1
        self.last = self.weight * self.last + (1.0 - self.weight) * y
        return self.last / (1.0 - self.weight ** self.n)
