"""A probe the user chose to plan with ("use in plan" on the Probe tab), and the message that
tells the other tabs about it.

Separate from app/tabs/probe.py so that the tabs reacting to it (Plan, Bands) need only
engine.sizing.bands, not the runtime the Probe tab drives. The App keeps the adopted probe
(`LsdtApp.adopted_probe`) for tabs built later; each tab owns its own reaction to `ProbeAdopted`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from textual.message import Message


@dataclass(frozen=True)
class ProbeAdoption:
    """A probe the user chose to plan with: the file, its checked contents, and the median MFU of
    its ok rows (None when the device matched no hardware profile, so MFU is unknown)."""

    path: Path
    probe: dict  # engine.sizing.bands.check_probe() output
    mfu: float | None
    hardware: str | None  # the hardware profile the probe's device matched, or None
    device: str


class ProbeAdopted(Message):
    """Posted to every built tab when the user presses "use in plan" (LsdtApp.adopt_probe)."""

    def __init__(self, adoption: ProbeAdoption) -> None:
        super().__init__()
        self.adoption = adoption


def adoption_from_file(path: str | Path) -> ProbeAdoption:
    """Read and check a `lsdt probe` JSON (engine.sizing.bands.read_probe); UserError otherwise."""
    from engine.sizing.bands import read_probe

    path = Path(path)
    probe = read_probe(path)
    mfus = [r["mfu"] for r in probe["results"] if r["status"] == "ok" and r.get("mfu") is not None]
    return ProbeAdoption(path, probe, statistics.median(mfus) if mfus else None, probe["hardware"], probe["device"])
