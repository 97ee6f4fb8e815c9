"""Snapshot tests (pytest-textual-snapshot) of the main planning screens at a fixed terminal size.

A modest set (they are slow on 2 cores): the Plan tab at 100x30 (the smallest supported size),
a no-solution plan with pinned designs at 120x35, the Bands tab, the Open dialog. Update with
`pytest tests/tui/test_snapshots.py --snapshot-update` after a deliberate UI change, and look at
the report before committing the new SVGs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from app.app import make_app
from engine.plan import Plan
from engine.sizing.physics import default_goal
from engine.specs import load_hardware, load_model
from tests.tui.conftest import PLANNING_TABS, settle, settle_tab


def fixed_dir(name: str) -> Path:
    """A fixed path (it is shown on screen, so it must not vary between runs), emptied first."""
    d = Path("/tmp") / f"lsdt-snapshot-{name}"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def app_for(name: str, **kwargs):
    return make_app(plans_dir=fixed_dir(name), cursor_blink=False, only_tabs=PLANNING_TABS, **kwargs)


def test_plan_tab_100x30(snap_compare):
    async def run_before(pilot):
        await settle(pilot)

    assert snap_compare(app_for("plan"), terminal_size=(100, 30), run_before=run_before)


def test_plan_no_solution_and_compare_120x35(snap_compare):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("ctrl+t")  # pin the auto-size design
        await pilot.press("ctrl+g")
        pilot.app.query_one("#input-G").value = "8"
        await settle(pilot)
        await pilot.press("ctrl+t")  # pin the 8-GPU attempt beside it

    assert snap_compare(app_for("nosolution"), terminal_size=(120, 35), run_before=run_before)


def test_bands_tab_100x30(snap_compare):
    async def run_before(pilot):
        from app.tabs.bands import BandsTab

        await settle_tab(pilot, pilot.app.query_one(BandsTab))

    assert snap_compare(app_for("bands", initial_tab="bands"), terminal_size=(100, 30), run_before=run_before)


def test_open_dialog_100x30(snap_compare):
    app = app_for("open")
    m = load_model("gpt2-350m")
    Plan(m, load_hardware("a100-80g-sxm"), default_goal(m)).compute().save(app.plans_dir / "gpt2-350m-a100.toml")

    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("ctrl+o")
        await pilot.pause()
        await pilot.app.screen.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


# Every planning tab at the smallest size it must be usable at (80x24: reflowed, nothing clipped)
# and MoE at 100x30 too; the live tabs are checked for clipping at both sizes by
# tests/tui_live/test_screen_sizes.py (their screens hold times and machine load: no snapshot).
def test_plan_tab_80x24(snap_compare):
    async def run_before(pilot):
        await settle(pilot)

    assert snap_compare(app_for("plan80"), terminal_size=(80, 24), run_before=run_before)


def test_bands_tab_80x24(snap_compare):
    async def run_before(pilot):
        from app.tabs.bands import BandsTab

        await settle_tab(pilot, pilot.app.query_one(BandsTab))

    assert snap_compare(app_for("bands80", initial_tab="bands"), terminal_size=(80, 24), run_before=run_before)


def _moe():
    async def run_before(pilot):
        from app.tabs.moe import MoeTab

        await settle_tab(pilot, pilot.app.query_one(MoeTab))

    return run_before


def test_moe_tab_80x24(snap_compare):
    assert snap_compare(app_for("moe80", initial_tab="moe"), terminal_size=(80, 24), run_before=_moe())


def test_moe_tab_100x30(snap_compare):
    assert snap_compare(app_for("moe100", initial_tab="moe"), terminal_size=(100, 30), run_before=_moe())
