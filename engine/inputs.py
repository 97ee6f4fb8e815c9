"""The one grammar for what a user types: numbers, durations, lists, curricula, and their ranges.

Both the CLI (argparse types, engine/flags.py) and the TUI forms call these, so a value means the
same thing typed on the command line or in a field. Each parser takes the text as typed and the
`field` it belongs to (a flag like '--steps' or a form field like 'tokens'), and raises `UserError`
carrying that field, so the TUI marks the field from `error.field` (never by reading the message).

Numbers: 260e9, 1.5T, 4M, 2k, 1_000 (suffixes k/K = 1e3, M = 1e6, B/G = 1e9, T = 1e12). An integer
field takes only integer text: '161', '2k', '1e6', '1.5k' — not '161.' or '1.5'. The ranges of
every number are listed in docs/bad-input.md; each limit here says why it is where it is.
Stdlib only (engine/sizing uses it).
"""

from __future__ import annotations

import math
from decimal import Decimal

from engine.errors import UserError

_SUFFIX = {"k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}

# The largest count an integer field takes unless it has a tighter range: beyond it every count here
# (layers, batch, sequence length, vocab, GPUs) is a typo, and torch/C APIs take 32-bit ints.
INT_MAX = 2**31 - 1
# The smallest efficiency / share a fraction takes: below one in a million no run is meant, and
# --mfu 1e-308 made every time estimate inf ("inf" in the moe and bands tables).
MIN_FRACTION = 1e-6
# A window longer than a million hours (114 years) is a typo, not a training run; the cap also keeps
# every product downstream (seconds, tokens = seconds x tok/s, FLOP) a finite float.
MAX_HOURS = 1e6
MAX_SECONDS = MAX_HOURS * 3600  # 3.6e9 s: also below threading.TIMEOUT_MAX (9.2e9 s on Linux)
# torch.manual_seed takes at most 2^64 - 1 and numpy's SeedSequence (the data order) no negative
# number: [0, 2^63) suits both.
SEED_LIMIT = 2**63
# CPU threads: the largest machines have a few hundred hardware threads (2 x 192-core EPYC = 768);
# torch.set_num_threads(1e9) tried to start them.
MAX_THREADS = 1024
# Optimizer steps: a billion steps is years at 0.1 s a step; more is a typo (--steps 1e308 ran).
MAX_STEPS = 10**9
# Micro-batches per optimizer step: 10,000 is already minutes per step on a GPU for a small model;
# --grad-accum 1e308 and --batch-tokens 1e308 "hung" in the first step without a word.
MAX_GRAD_ACCUM = 10_000


def _fail(field: str | None, text: str, accepted: str) -> UserError:
    where = f"{field} " if field else ""
    return UserError(f"{where}{text!r}: accepted: {accepted}", field=field)


def number(text: str, field: str | None = None, accepted: str = "a finite number (e.g. 260e9, 1.5T, 4M)") -> float:
    """Any finite number, with an optional k/M/B/G/T suffix. Errors echo what was typed ('abcK') and
    say what the field accepts (`accepted`)."""
    raw = str(text).strip().replace("_", "")
    scale = 1.0
    if raw and raw[-1] in _SUFFIX:
        scale, raw = _SUFFIX[raw[-1]], raw[:-1]
    try:
        value = float(raw) * scale
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise _fail(field, text, accepted)
    return value


def _number_in(text: str, field: str | None, ok, accepted: str) -> float:
    value = number(text, field, accepted)
    if not ok(value):
        raise _fail(field, text, accepted)
    return value


def integer(text: str, field: str | None = None, least: int = 1, most: int | None = INT_MAX) -> int:
    """An integer in [least, most] (most=None: no upper limit), written as an integer: '161', '2k',
    '1e6', '1.5k'; '161.' or '1.5' are refused rather than read as 161 or 1."""
    accepted = f"an integer >= {least:,}" if most is None else f"an integer in [{least:,}, {most:,}]"
    raw = str(text).strip().replace("_", "")
    scale = 1
    if raw and raw[-1] in _SUFFIX:
        scale, raw = int(_SUFFIX[raw[-1]]), raw[:-1]
    if "." in raw and scale == 1 and "e" not in raw.lower():
        raise _fail(field, text, accepted)  # '161.' is not integer text
    try:
        value = Decimal(raw) * scale
        whole = value.is_finite() and value == value.to_integral_value()
    except (ArithmeticError, ValueError):  # InvalidOperation, Overflow
        whole = False
    if not whole or value < least or (most is not None and value > most):
        raise _fail(field, text, accepted)
    return int(value)


def positive_int(text: str, field: str | None = None) -> int:
    return integer(text, field)


def non_negative_int(text: str, field: str | None = None) -> int:
    return integer(text, field, least=0)


def positive_float(text: str, field: str | None = None) -> float:
    return _number_in(text, field, lambda v: v > 0, "a finite number > 0")


def non_negative_float(text: str, field: str | None = None) -> float:
    """A finite number >= 0 (weight decay, dropout, a clip where 0 = off). `float` let inf through:
    --grad-clip inf trained, then its config.toml could not be resumed."""
    return _number_in(text, field, lambda v: v >= 0, "a finite number >= 0")


def fraction(text: str, field: str | None = None) -> float:
    """An efficiency or share in [MIN_FRACTION, 1]."""
    return _number_in(text, field, lambda v: MIN_FRACTION <= v <= 1, f"a number in (0, 1], at least {MIN_FRACTION:g}")


def share_below_one(text: str, field: str | None = None) -> float:
    """A share in [0, 1) (the SFT + eval share of a window: 1 would leave no pretraining)."""
    return _number_in(text, field, lambda v: 0 <= v < 1, "a number in [0, 1), e.g. 0.15")


def gigabytes(text: str, field: str | None = None) -> float:
    """A memory amount in GB >= 0 (finite)."""
    return _number_in(text, field, lambda v: v >= 0, "a number of GB >= 0, e.g. 2")


def hours(text: str, field: str | None = None) -> float:
    """A time window in hours: '24', '36h', '2d', '90min' -> hours, in (0, MAX_HOURS]."""
    return _duration_s(text, field, "h") / 3600.0


def days(text: str, field: str | None = None) -> float:
    """A time window in days: '30', '36h', '2w' -> days, in (0, MAX_HOURS / 24]."""
    return _duration_s(text, field, "d") / 86400.0


def seconds(text: str, field: str | None = None) -> float:
    """A timeout or period in seconds: a number in (0, MAX_SECONDS]."""
    return _number_in(text, field, lambda v: 0 < v <= MAX_SECONDS, f"a number of seconds in (0, {MAX_SECONDS:g}]")


# A duration's unit suffix -> seconds; a bare number takes the field's own unit (the Plan tab's
# deadline and --days: days; --hours and the Bands tab's window: hours).
_DURATION_UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
_UNIT_WORDS = {"h": "hours", "d": "days"}


def _duration_s(text: str, field: str | None, bare_unit: str) -> float:
    """One duration grammar for every time field: a number with a unit s/min/h/d/w, or a bare number
    in `bare_unit`; in (0, MAX_SECONDS] seconds."""
    raw = str(text).strip().lower().replace(" ", "")
    unit = next((u for u in sorted(_DURATION_UNITS, key=len, reverse=True) if raw.endswith(u) and raw[: -len(u)]), bare_unit)
    amount = raw[: -len(unit)] if raw.endswith(unit) and raw[: -len(unit)] else raw
    try:
        value = positive_float(amount, field) * _DURATION_UNITS[unit]
    except UserError:
        value = math.nan
    if not 0 < value <= MAX_SECONDS:
        raise _fail(field, text, f"{_UNIT_WORDS[bare_unit]}, or a number with a unit s/min/h/d/w, up to {MAX_HOURS:g} h")
    return value


def duration_s(text: str, field: str | None = None) -> float:
    """'30' (days), '36h', '90 min', '2w', '1e6s' -> seconds, in (0, MAX_SECONDS]."""
    return _duration_s(text, field, "d")


def seed(text: str, field: str | None = None) -> int:
    """A random seed: an integer in [0, 2^63)."""
    try:
        return integer(text, field, least=0, most=SEED_LIMIT - 1)
    except UserError:
        raise _fail(field, text, "an integer in [0, 2^63)") from None


def threads(text: str, field: str | None = None) -> int:
    return integer(text, field, most=MAX_THREADS)


def steps(text: str, field: str | None = None) -> int:
    return integer(text, field, most=MAX_STEPS)


def grad_accum(text: str, field: str | None = None) -> int:
    return integer(text, field, most=MAX_GRAD_ACCUM)


def path(text: str, field: str | None = None) -> str:
    """A file/directory path or profile name. An empty one was taken as absent (--save '' saved
    nothing and exited 0) or as the current directory (quantize --out '' wrote there)."""
    if not str(text).strip():
        raise _fail(field, text, "a non-empty path or name")
    return text


def int_list(text: str, field: str | None = None, most: int | None = INT_MAX, example: str = "12,14,16") -> list[int]:
    """'12,14, 16' -> [12, 14, 16]: comma-separated integers >= 1, in the order typed."""
    parts = [p for p in str(text).split(",") if p.strip()]
    try:
        values = [integer(p, field, most=most) for p in parts]
    except UserError:
        values = []
    if not values:
        raise _fail(field, text, f"comma-separated integers >= 1, e.g. {example}")
    return values


def token_list(text: str, field: str | None = None) -> list[float]:
    """'20e9,15e9' -> [20e9, 15e9]: comma-separated token counts > 0."""
    parts = [p for p in str(text).split(",") if p.strip()]
    try:
        values = [positive_float(p, field) for p in parts]
    except UserError:
        values = []
    if not values:
        raise _fail(field, text, "comma-separated token counts > 0, e.g. 20e9,15e9,12e9,12e9")
    return values


def curriculum(text: str, field: str | None = "--curriculum") -> list[tuple[int, float]]:
    """Sequence-length stages: '512:0.5,1024:0.3,2048:0.2' (SEQ:FRACTION of the run) or the bare
    list '512,1024,2048' (equal shares). Sequence lengths rise strictly; fractions (all > 0) sum to 1.
    The one syntax of `lsdt bands --curriculum` and `lsdt train --curriculum`."""
    accepted = "SEQ[:FRACTION],... with rising SEQ and fractions summing to 1, e.g. 512:0.5,1024:0.3,2048:0.2"
    where = f"{field} " if field else ""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts:
        raise _fail(field, text, accepted)
    seqs: list[int] = []
    fracs: list[float | None] = []
    for part in parts:
        seq_text, _, frac_text = part.partition(":")
        try:
            seqs.append(integer(seq_text))
            fracs.append(fraction(frac_text) if frac_text else None)
        except UserError:
            raise UserError(f"{where}{text!r}: stage {part!r} is not SEQ[:FRACTION]; accepted: {accepted}", field=field) from None
    if any(b <= a for a, b in zip(seqs, seqs[1:])):
        raise UserError(f"{where}{text!r}: sequence lengths do not rise; accepted: {accepted}", field=field)
    if all(f is None for f in fracs):
        return [(s, 1.0 / len(seqs)) for s in seqs]
    if any(f is None for f in fracs):
        raise UserError(f"{where}{text!r}: give a fraction for every stage or for none; accepted: {accepted}", field=field)
    total = sum(fracs)  # type: ignore[arg-type]
    if abs(total - 1.0) > 1e-6:
        raise UserError(f"{where}{text!r}: fractions sum to {total:g}; accepted: {accepted}", field=field)
    return list(zip(seqs, fracs))  # type: ignore[arg-type]
