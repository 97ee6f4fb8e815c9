"""Pilot-run extrapolation (seed 001, M2): fit L(t) = a + b * t^-c to a pilot's loss curve and project it.

    read_metrics(path) -> list[dict]                      a run directory's metrics.jsonl
    project_pilot(records, target, metric="loss", axis="time") -> PilotProjection   (.to_dict(): its JSON)

t is the run's wall time in seconds (`time`, seconds since start), or with axis="tokens" the tokens
seen (`tokens`); `target` is in the same unit. The fit is weighted least
squares on the pilot binned into log-spaced time bins (per-step losses are noisy; bin means with
their counts as weights keep the estimate unbiased and the fit cheap). For a fixed c the model is
linear in (a, b), so a and b have a closed form; c is found by a grid over [C_MIN, C_MAX] refined
by golden-section search. Stdlib only.

The uncertainty range is a 95% profile-likelihood range of L(target): every (a, b, c) whose
weighted SSE is within chi2_1(0.95) x sigma^2 of the minimum (sigma^2 = SSE_min / (bins - 3)),
and for each c the extremes of a + b x over that ellipse in closed form. It reflects the fit's
noise and the curve-shape ambiguity the pilot leaves, not a change of learning-rate schedule
between pilot and full run (a warmdown in the pilot bends the curve; pilot with a constant LR).

A pilot that cannot support a projection gets status "refused" with the reason, never a number:
too few points, too short for the horizon, a loss that is not falling, a fit with no floor, or a
range too wide to be useful.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from engine import fmt
from engine.errors import UserError
from engine.specs import read_text, too_deep

MIN_POINTS = 20  # raw points after the warm-up cut; fewer cannot pin three parameters against step noise
MIN_BINS = 8
N_BINS = 40
SKIP_FRACTION = 0.10  # drop the first 10% of the pilot's time: warm-up and the initial transient are no power law
MAX_EXTRAPOLATION = 20.0  # project at most 20x past the pilot's last point (a 24 h run needs a >= ~1 h pilot)
MAX_RELATIVE_HALF_WIDTH = 0.10  # refuse when the 95% range is wider than +-10% of the projected loss
CHI2_1_95 = 3.841  # chi-square quantile, 1 degree of freedom, 95% (the profile-likelihood threshold)
C_MIN, C_MAX, C_GRID = 0.005, 3.0, 160
CONFIDENCE = 0.95


# --------------------------------------------------------------------------- reading


def read_metrics(path: str | Path) -> list[dict]:
    """The JSON objects of a metrics.jsonl, in order. A truncated last line (a run still writing, or
    killed mid-write) is dropped; a bad line elsewhere is a UserError naming file and line."""
    path = Path(path)
    text = read_text(path, "a run's metrics.jsonl", errors="replace")
    lines = [(i + 1, line) for i, line in enumerate(text.splitlines()) if line.strip()]
    # Fast path: one json.loads over the whole file as an array (20,000 lines: ~10x faster than a
    # loads per line); the slow path below only runs to drop a truncated tail or to name a bad line.
    for tail in (len(lines), len(lines) - 1):
        try:
            records = json.loads("[" + ",".join(line for _, line in lines[:max(0, tail)]) + "]")
        except json.JSONDecodeError:
            continue
        except RecursionError:
            raise UserError(too_deep(path, "JSON")) from None
        if len(records) != max(0, tail):
            break  # a line held more than one value: the slow path names it
        for (lineno, _), obj in zip(lines, records):
            if not isinstance(obj, dict):
                raise UserError(f"{path}:{lineno}: expected a JSON object per line, got {type(obj).__name__}")
        return records
    records = []
    for k, (lineno, line) in enumerate(lines):
        try:
            obj = json.loads(line)
        except RecursionError:
            raise UserError(too_deep(path, "JSON")) from None
        except json.JSONDecodeError as exc:
            if k == len(lines) - 1:
                break  # truncated tail
            raise UserError(f"{path}:{lineno}: invalid JSON ({exc.msg}); accepted: one JSON object per line") from None
        if not isinstance(obj, dict):
            raise UserError(f"{path}:{lineno}: expected a JSON object per line, got {type(obj).__name__}")
        records.append(obj)
    return records


AXES = {"time": ("time", "s"), "tokens": ("tokens", "tokens")}
# --pilot-metric / --pilot-axis (and the Bands tab's selects): what each accepts, the first is the default.
PILOT_METRICS = ("loss", "val_loss")
PILOT_AXES = ("auto", "time", "tokens")


def pick_axis(records: list[dict], metric: str) -> str:
    """"time" when some line has a usable time, else "tokens" (the brief's fallback)."""
    return "time" if _points(records, metric, "time") or not _points(records, metric, "tokens") else "tokens"


def _points(records: list[dict], metric: str, axis: str = "time") -> list[tuple[float, float]]:
    out = []
    number = (int, float)  # exact types: a JSON true/false is a bool, never a number here
    key = AXES[axis][0]
    for r in records:
        t, y = r.get(key), r.get(metric)
        if type(t) in number and type(y) in number and t > 0 and math.isfinite(t) and math.isfinite(y):
            out.append((float(t), float(y)))
    out.sort()
    return out


# --------------------------------------------------------------------------- fitting


def _bins(points: list[tuple[float, float]]) -> list[tuple[float, float, float]]:
    """(mean t, mean y, count) over log-spaced time bins; empty bins dropped."""
    t0, t1 = points[0][0], points[-1][0]
    if t1 <= t0:
        return [(t0, sum(y for _, y in points) / len(points), float(len(points)))]
    lo, span = math.log(t0), math.log(t1) - math.log(t0)
    acc: dict[int, list[float]] = {}
    for t, y in points:
        k = min(N_BINS - 1, int((math.log(t) - lo) / span * N_BINS))
        s = acc.setdefault(k, [0.0, 0.0, 0.0])
        s[0] += t
        s[1] += y
        s[2] += 1
    return [(s[0] / s[2], s[1] / s[2], s[2]) for _, s in sorted(acc.items())]


def _solve(data: list[tuple[float, float, float]], c: float) -> dict:
    """Weighted least squares of y = a + b x with x = tau^-c (tau = t / t_last) at fixed c."""
    S0 = Sx = Sxx = Sy = Sxy = 0.0
    for tau, y, w in data:
        x = tau ** -c
        S0 += w
        Sx += w * x
        Sxx += w * x * x
        Sy += w * y
        Sxy += w * x * y
    det = S0 * Sxx - Sx * Sx
    if det <= 0:
        return {"c": c, "a": Sy / S0, "b": 0.0, "sse": sum(w * (y - Sy / S0) ** 2 for _, y, w in data), "det": 0.0}
    b = (S0 * Sxy - Sx * Sy) / det
    a = (Sy - b * Sx) / S0
    sse = sum(w * (y - a - b * tau ** -c) ** 2 for tau, y, w in data)
    return {"c": c, "a": a, "b": b, "sse": sse, "det": det, "S0": S0, "Sx": Sx, "Sxx": Sxx}


def _grid() -> list[float]:
    r = (C_MAX / C_MIN) ** (1 / (C_GRID - 1))
    return [C_MIN * r**i for i in range(C_GRID)]


def fit_power_law(data: list[tuple[float, float, float]]) -> tuple[dict, list[dict]]:
    """Best (a, b, c) on normalised time tau, and every grid solution (for the profile range)."""
    sols = [_solve(data, c) for c in _grid()]
    i = min(range(len(sols)), key=lambda k: sols[k]["sse"])
    lo, hi = sols[max(0, i - 1)]["c"], sols[min(len(sols) - 1, i + 1)]["c"]
    g = (math.sqrt(5) - 1) / 2
    x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
    f1, f2 = _solve(data, x1), _solve(data, x2)
    for _ in range(40):  # golden section on the bracketing interval
        if f1["sse"] < f2["sse"]:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - g * (hi - lo)
            f1 = _solve(data, x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + g * (hi - lo)
            f2 = _solve(data, x2)
    best = min([sols[i], f1, f2], key=lambda s: s["sse"])
    return best, sols + [best]


def _range(sols: list[dict], sse_min: float, sigma2: float, tau_T: float) -> tuple[float, float]:
    """Extremes of a + b tau_T^-c over {SSE <= SSE_min + chi2 sigma^2} (closed form per c)."""
    limit = sse_min + CHI2_1_95 * sigma2
    lo, hi = math.inf, -math.inf
    for s in sols:
        if s["det"] <= 0 or s["sse"] > limit:
            continue
        xT = tau_T ** -s["c"]
        y = s["a"] + s["b"] * xT
        var_dir = (s["Sxx"] - 2 * s["Sx"] * xT + s["S0"] * xT * xT) / s["det"]
        half = math.sqrt(max(0.0, (limit - s["sse"]) * var_dir))
        lo, hi = min(lo, y - half), max(hi, y + half)
    return lo, hi


def _span(x: float, axis: str) -> str:
    return f"{x / 3600:.3g} h" if axis == "time" else f"{x / 1e9:.3g}B tokens"


def project_pilot(records: list[dict], target: float, metric: str = "loss", axis: str = "time") -> PilotProjection:
    """Fit the pilot's `metric` against `axis` (time in s, or tokens) and project it to `target`, or refuse."""
    return PilotProjection.of(_projection_fields(records, target, metric, axis))


def _projection_fields(records: list[dict], target: float, metric: str, axis: str) -> dict:
    """project_pilot's fields, filled as far as the pilot gets before it is refused (or to "ok")."""
    if metric not in ("loss", "val_loss"):
        raise UserError(f"pilot metric = {metric!r}; accepted: loss | val_loss")
    if axis not in AXES:
        raise UserError(f"pilot axis = {axis!r}; accepted: {' | '.join(AXES)}")
    key, unit = AXES[axis]
    out: dict = {"status": "refused", "reason": None, "metric": metric, "axis": axis, "unit": unit, "target": target,
                 "confidence": CONFIDENCE, "points": 0, "bins": 0, "x_first": None, "x_last": None,
                 "extrapolation": None, "last_loss": None, "fit": None, "loss_at_target": None, "range": None}
    if not (isinstance(target, (int, float)) and math.isfinite(target) and target > 0):
        out["reason"] = f"no target {unit} to project to"
        return out
    points = _points(records, metric, axis)
    out["points"] = len(points)
    if not points:
        out["reason"] = f"no line carries both '{key}' > 0 and a numeric '{metric}'"
        return out
    t_last = points[-1][0]
    out.update(x_first=points[0][0], x_last=t_last, extrapolation=target / t_last)
    used = [p for p in points if p[0] >= SKIP_FRACTION * t_last]
    out["points"] = len(used)
    out["last_loss"] = used[-1][1]
    if len(used) < MIN_POINTS:
        out["reason"] = (f"too short: {len(used)} '{metric}' points after the first {SKIP_FRACTION:.0%} of the pilot; "
                         f"need >= {MIN_POINTS}")
        return out
    if target / t_last > MAX_EXTRAPOLATION:
        out["reason"] = (f"too short: the pilot covers {_span(t_last, axis)} of the {_span(target, axis)} target "
                         f"({target / t_last:.0f}x ahead); projecting more than {MAX_EXTRAPOLATION:g}x is not supported "
                         f"(run the pilot >= {_span(target / MAX_EXTRAPOLATION, axis)})")
        return out
    binned = _bins(used)
    out["bins"] = len(binned)
    if len(binned) < MIN_BINS:
        out["reason"] = f"too short: the points span only {len(binned)} log-spaced bins; need >= {MIN_BINS}"
        return out
    data = [(t / t_last, y, w) for t, y, w in binned]
    best, sols = fit_power_law(data)
    b_seconds = best["b"] * t_last ** best["c"]
    n_obs = sum(w for _, _, w in data)
    out["fit"] = {"a": best["a"], "b": b_seconds, "c": best["c"],
                  "rmse": math.sqrt(best["sse"] / n_obs)}
    if best["b"] <= 0:
        out["reason"] = f"the '{metric}' is not falling over the pilot: no decreasing power law to extrapolate"
        return out
    if best["c"] <= C_MIN * 1.0001 or best["c"] >= C_MAX * 0.9999:
        out["reason"] = f"no power-law shape: the exponent c ran to its bound ({best['c']:.3g}); the curve is too flat or too noisy"
        return out
    if best["a"] < 0:
        out["reason"] = (f"the fit's floor a = {best['a']:.3g} is below zero: the pilot shows no flattening yet, "
                         "run it longer")
        return out
    tau_T = target / t_last
    y_T = best["a"] + best["b"] * tau_T ** -best["c"]
    sigma2 = best["sse"] / (len(data) - 3) if len(data) > 3 else math.inf
    lo, hi = _range(sols, best["sse"], sigma2, tau_T)
    lo, hi = min(lo, y_T), max(hi, y_T)
    out["loss_at_target"] = y_T
    out["range"] = [max(0.0, lo), hi]
    half = max(y_T - lo, hi - y_T)
    if not math.isfinite(half) or half > MAX_RELATIVE_HALF_WIDTH * y_T:
        out["reason"] = (f"too noisy: the {CONFIDENCE:.0%} range of the projected '{metric}' is {lo:.3g} to {hi:.3g} "
                         f"(+-{half / y_T:.0%} of {y_T:.3g}, limit +-{MAX_RELATIVE_HALF_WIDTH:.0%}); "
                         "a longer or smoother pilot (or --pilot-metric val_loss) narrows it")
        out["loss_at_target"] = None
        out["range"] = None
        return out
    out["status"] = "ok"
    return out


@dataclass(frozen=True)
class PilotFit:
    """L(x) = a + b x^-c in the axis' unit (seconds or tokens); rmse over the binned points."""

    a: float
    b: float
    c: float
    rmse: float


@dataclass(frozen=True)
class PilotProjection:
    """A pilot's fit and its projection to the target, or why it is refused (then no number).
    `to_dict()` is the `pilot` object of `lsdt bands --json` (docs/bands.md)."""

    status: str  # "ok" | "refused"
    reason: str | None
    metric: str  # "loss" | "val_loss"
    axis: str  # "time" | "tokens"
    unit: str  # "s" | "tokens"
    target: float
    confidence: float
    points: int
    bins: int
    x_first: float | None
    x_last: float | None
    extrapolation: float | None  # target / x_last
    last_loss: float | None
    fit: PilotFit | None
    loss_at_target: float | None
    range: tuple[float, float] | None  # the confidence range of loss_at_target

    @classmethod
    def of(cls, fields: dict) -> PilotProjection:
        fit, rng = fields["fit"], fields["range"]
        return cls(**{**fields, "fit": PilotFit(**fit) if fit else None, "range": tuple(rng) if rng else None})

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["range"] = list(self.range) if self.range else None  # JSON's [lo, hi]
        return d

    def lines(self) -> list[str]:
        """The fit and projection, or the refusal: the words of `lsdt bands` and the Bands tab."""
        if not self.ok:
            return [f"REFUSED: {self.reason}"]
        f = self.fit
        at = fmt.duration if self.axis == "time" else (lambda n: f"{fmt.count(n)} tokens")
        var = "t" if self.axis == "time" else "n"
        return [f"{self.points} '{self.metric}' points to {at(self.x_last)}: L({var}) = {f.a:.3f} + {f.b:.3g} {var}^-{f.c:.3f} "
                f"(rmse {f.rmse:.3g})",
                f"projected at {at(self.target)} ({self.extrapolation:.1f}x ahead): {self.loss_at_target:.3f} "
                f"({self.confidence:.0%} range {self.range[0]:.3f} - {self.range[1]:.3f})"]
