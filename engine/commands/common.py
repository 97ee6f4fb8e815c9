"""Argument types and option groups shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import math
import sys

_SUFFIX = {"k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}


def _number(text: str) -> float:
    given = text  # errors echo what was typed ('abcK', not 'abc' after the suffix came off)
    text = text.strip().replace("_", "")
    scale = 1.0
    if text and text[-1] in _SUFFIX:
        scale, text = _SUFFIX[text[-1]], text[:-1]
    try:
        value = float(text) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"{given!r} is not a number (e.g. 260e9, 1.5T, 4M)") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{given!r}: accepted: a finite number")
    return value


def positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: accepted: a number > 0")
    return value


def positive_int(text: str) -> int:
    value = _number(text)
    if value <= 0 or not float(value).is_integer():
        raise argparse.ArgumentTypeError(f"{text!r}: accepted: an integer > 0")
    return int(value)


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (weight decay, dropout, a clip where 0 = off). `float` let inf through:
    --grad-clip inf trained, then its config.toml could not be resumed."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: accepted: a number >= 0")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text)
    if value < 0 or not float(value).is_integer():
        raise argparse.ArgumentTypeError(f"{text!r}: accepted: an integer >= 0")
    return int(value)


# The smallest efficiency / share a fraction flag takes: below one in a million no run is meant,
# and --mfu 1e-308 made every time estimate inf ("inf" in the moe and bands tables).
MIN_FRACTION = 1e-6


def fraction(text: str) -> float:
    value = _number(text)
    if not MIN_FRACTION <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: accepted: a number in (0, 1], at least {MIN_FRACTION:g}")
    return value


def path_arg(text: str) -> str:
    """A file/directory path or profile name. An empty one was taken as absent (--save '' saved
    nothing and exited 0) or as the current directory (quantize --out '' wrote there)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: accepted: a non-empty path or name")
    return text


# A window longer than a million hours (114 years) is a typo, not a training run; the cap also keeps
# every product downstream (seconds, tokens = seconds x tok/s, FLOP) a finite float.
MAX_HOURS = 1e6


def hours(text: str) -> float:
    """A time window in hours: a number in (0, MAX_HOURS]."""
    value = positive_float(text)
    if value > MAX_HOURS:
        raise argparse.ArgumentTypeError(f"{text!r}: accepted: a number of hours in (0, {MAX_HOURS:g}]")
    return value


def days(text: str) -> float:
    """A time window in days: a number in (0, MAX_HOURS / 24]."""
    value = positive_float(text)
    if value > MAX_HOURS / 24:
        raise argparse.ArgumentTypeError(f"{text!r}: accepted: a number of days in (0, {MAX_HOURS / 24:g}]")
    return value


# torch.manual_seed takes at most 2^64 - 1 and numpy's SeedSequence (the data order) no negative
# number: [0, 2^63) suits both.
SEED_LIMIT = 2**63


def seed(text: str) -> int:
    """A random seed: an integer in [0, 2^63)."""
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        value = -1
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{text!r}: accepted: an integer in [0, 2^63)")
    return value


def print_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, allow_nan=False, default=str)
    sys.stdout.write("\n")
