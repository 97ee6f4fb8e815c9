"""Argument types and option groups shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import math
import sys

_SUFFIX = {"k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}


def _number(text: str) -> float:
    text = text.strip().replace("_", "")
    scale = 1.0
    if text and text[-1] in _SUFFIX:
        scale, text = _SUFFIX[text[-1]], text[:-1]
    try:
        value = float(text) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (e.g. 260e9, 1.5T, 4M)") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r}: accepted: a finite number")
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


def fraction(text: str) -> float:
    value = _number(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: accepted: a number in (0, 1]")
    return value


def print_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, allow_nan=False, default=str)
    sys.stdout.write("\n")
