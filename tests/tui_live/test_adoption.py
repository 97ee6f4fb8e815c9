""""use in plan" reaches the Plan and Bands tabs: each handles ProbeAdopted itself (or reads
app.adopted_probe when it is built later). The probe is a hand-written file in the documented
format (docs/probe-telemetry.md), adopted through the button's own handler."""

from __future__ import annotations


from textual.widgets import Input, Select

from app.tabs.bands import BandsTab
from app.tabs.plan import PlanTab
from engine.sizing import bands as B
from engine.specs import load_hardware
from tests.tui.conftest import settle, settle_tab, text_of
from tests.tui_live.conftest import write_probe


async def press_use(app, path):
    """What the "use in plan" button does once a sweep has saved `path`."""
    probe_tab = await app.show_tab("probe")
    probe_tab.out_path = path
    probe_tab.action_use()
    return probe_tab


def row(result: dict, depth: int) -> dict:
    return next(r for r in result.rows if r.depth == depth)


async def test_use_in_plan_reaches_plan_and_built_bands(app_factory, tmp_path):
    path = write_probe(tmp_path / "h100.json", "h100-sxm")
    app = app_factory()
    async with app.run_test(size=(130, 40)) as pilot:
        plan = app.query_one(PlanTab)
        await settle(pilot)
        bands = await app.show_tab("bands")
        await settle_tab(pilot, bands)
        assert row(bands.result, 12).tokens_per_s_source == "estimate"
        await press_use(app, path)
        await settle(pilot)
        await settle_tab(pilot, bands)
        assert app.adopted_probe is not None and app.adopted_probe.path == path
        # Plan: the median MFU of the ok rows (0.42, 0.46), once, with the status saying where it came from
        assert plan.query_one("#input-eta_compute", Input).value == "0.440"
        assert plan.current.eta_compute == 0.44
        # ... and η gemm, the engineering model's (which answers), calibrated as `lsdt plan --calibrate` does
        from engine.sizing.calibrate import calibrated_efficiency

        gemm = calibrated_efficiency(path, load_hardware("h100-sxm")).eta_gemm
        assert plan.query_one("#input-eta_gemm", Input).value == f"{gemm:g}"
        assert plan.current.efficiency_refined.eta_gemm == gemm
        assert f"η seed 0.440 = median MFU, η gemm {gemm:g} calibrated, from probe h100.json" in text_of(plan.query_one("#plan-status"))
        # Bands: re-planned with probe=..., on the probe's hardware, and says the tok/s are measured
        assert bands.query_one("#b-hardware", Select).value == "h100-sxm"
        assert bands.query_one("#input-b_probe", Input).value == str(path)
        want = B.plan_bands(load_hardware("h100-sxm"), probe=B.read_probe(path))
        assert bands.result.rows == want.rows
        assert row(bands.result, 12).tokens_per_s_source == "probe" and row(bands.result, 12).tokens_per_s == 4.1e5
        assert "measured on NVIDIA H100 80GB HBM3" in app.query_one("#bands-table-box").border_title
        assert "measured by the probe" in text_of(app.query_one("#bands-summary"))
        assert "410,000*" in [str(c).strip() for c in app.query_one("#bands-table").get_row_at(0)]
        # the user types over the measured value: the note goes, the value stays theirs
        plan.query_one("#input-eta_compute", Input).value = "0.3"
        await settle(pilot)
        assert "probe" not in text_of(plan.query_one("#plan-status")) and plan.current.eta_compute == 0.3
        assert app.failures == []


async def test_probe_for_other_hardware_leaves_plan_and_sets_later_bands(app_factory, tmp_path):
    path = write_probe(tmp_path / "a100.json", "a100-80g-sxm", device="NVIDIA A100-SXM4-80GB")
    app = app_factory()
    async with app.run_test(size=(130, 40)) as pilot:
        plan = app.query_one(PlanTab)
        await settle(pilot)
        assert not app.query(BandsTab)  # not built yet: it reads app.adopted_probe when it is
        await press_use(app, path)
        await settle(pilot)
        assert plan.query_one("#input-eta_compute", Input).value == ""  # plan is for h100-sxm: unchanged
        assert plan.query_one("#input-eta_gemm", Input).value == ""
        assert plan.current.eta_compute != 0.44
        assert "measured on a100-80g-sxm, not h100-sxm" in text_of(plan.query_one("#plan-status"))
        bands = await app.show_tab("bands")
        await settle_tab(pilot, bands)
        assert bands.query_one("#b-hardware", Select).value == "a100-80g-sxm"
        assert row(bands.result, 14).tokens_per_s_source == "probe"
        assert bands.result.probe_device == "NVIDIA A100-SXM4-80GB"
        # picking another GPU: the engine refuses the probe, and says so under the probe field
        bands.query_one("#b-hardware", Select).value = "h100-sxm"
        await settle_tab(pilot, bands)
        err = text_of(bands.query_one("#field-b_probe").query_one(".field-error"))
        assert "probe was measured on hardware 'a100-80g-sxm'" in err
        assert app.failures == []
