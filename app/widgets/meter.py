"""A text bar for 'used / available' (memory per device vs capacity, step time vs budget)."""

from __future__ import annotations

from rich.text import Text

FULL, EMPTY = "█", "░"


def meter(used: float, capacity: float, width: int = 14) -> Text:
    """`width` cells filled in proportion to used/capacity; beyond capacity the bar is full and red,
    near it (over 90%) it is yellow, so the eye finds the binding constraint first."""
    ratio = used / capacity if capacity > 0 else float("inf")
    filled = width if ratio >= 1 else max(0, min(width, round(ratio * width)))
    style = "bold red" if ratio > 1 else "yellow" if ratio > 0.9 else "green"
    return Text.assemble((FULL * filled, style), (EMPTY * (width - filled), "dim"))
