"""The tab registry: adding a tab is one module in app/tabs/ and one line in TABS.

A tab appears only when its module and the engine modules it calls are present in this build, so
a tab whose engine has not landed yet is simply not there (no dead tabs, no dead buttons).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class TabEntry:
    id: str  # TabPane id and command-palette name
    title: str  # the tab's label
    module: str  # app.tabs.<name>, defining `cls`
    cls: str  # a Widget subclass (usually app.tabs.base.LsdtTab)
    needs: tuple[str, ...] = ()  # engine modules the tab calls; missing -> tab hidden


TABS: tuple[TabEntry, ...] = (
    TabEntry("plan", "Plan", "app.tabs.plan", "PlanTab", ("engine.plan",)),
    TabEntry("bands", "Bands", "app.tabs.bands", "BandsTab", ("engine.sizing.bands",)),
    TabEntry("moe", "MoE", "app.tabs.moe", "MoeTab", ("engine.sizing.moe",)),
    TabEntry("probe", "Probe", "app.tabs.probe", "ProbeTab", ("engine.runtime.probe.runner", "engine.commands.probe")),
    TabEntry("train", "Train", "app.tabs.train", "TrainTab", ("engine.runtime.train.loop", "engine.runtime.train.rundir")),
    TabEntry("monitor", "Monitor", "app.tabs.monitor", "MonitorTab", ("engine.runtime.train.rundir", "engine.runtime.monitor.telemetry")),
    TabEntry("quantize", "Quantize", "app.tabs.quantize", "QuantizeTab", ("engine.commands.quantize", "engine.commands.seal", "engine.commands.verify")),
    TabEntry("sparsity", "Sparsity", "app.tabs.sparsity", "SparsityTab", ("engine.runtime.sparsity.artifacts", "engine.commands.sparsity")),
)


def _present(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def available_tabs() -> list[TabEntry]:
    return [t for t in TABS if _present(t.module) and all(_present(m) for m in t.needs)]


def tab_class(entry: TabEntry):
    return getattr(importlib.import_module(entry.module), entry.cls)
