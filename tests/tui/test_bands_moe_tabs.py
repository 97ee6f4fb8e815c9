"""Pilot tests of the Bands and MoE tabs: the tables are the engine's numbers for the typed inputs."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, Select, TabbedContent

from app.widgets.form_field import FormField
from engine.sizing import bands as B
from engine.sizing import moe as M
from engine.specs import load_hardware, load_model
from tests.tui.conftest import settle_tab, text_of

pytest.importorskip("app.tabs.bands")
from app.tabs.bands import BandsTab  # noqa: E402
from app.tabs.moe import MoeTab  # noqa: E402


def cells(table: DataTable, row: int) -> list[str]:
    return [str(c).strip() for c in table.get_row_at(row)]


async def set_field(pilot, selector: str, text: str) -> None:
    widget = pilot.app.query_one(selector, Input)
    widget.focus()
    widget.value = ""
    await pilot.press(*text)


async def test_bands_table_highlights_the_recommended_depth(app_factory):
    app = app_factory(initial_tab="bands")
    async with app.run_test(size=(100, 30)) as pilot:
        tab = app.query_one(BandsTab)
        await settle_tab(pilot, tab)
        want = B.plan_bands(load_hardware("rtx4090"))
        table = app.query_one("#bands-table", DataTable)
        assert table.row_count == len(want.rows)
        rec = want.recommended.depth
        rec_row = [r.depth for r in want.rows].index(rec)
        assert cells(table, rec_row)[0] == f"▶ d{rec}"
        assert table.cursor_row == rec_row
        row = want.rows[rec_row]
        # The batch the run uses, the same the curriculum runs at that seq (issue 17: the table
        # showed the largest that fits, 6@2048, beside a curriculum at batch 4); the largest beside it.
        assert cells(table, rec_row)[5] == f"{row.device_batch}@{row.seq_len}"
        assert cells(table, rec_row)[6] == str(row.max_device_batch)
        stage = next(s for s in want.curriculum.stages if s.seq_len == row.seq_len)
        assert stage.device_batch == row.device_batch
        assert cells(table, rec_row)[4] == f"{row.memory_bytes / 1e9:.1f} GB"  # the CLI's memory column
        summary = text_of(app.query_one("#bands-summary"))
        assert f"RECOMMEND d{rec}" in summary
        assert f"d{rec} (band {want.recommended.band})" in summary
        assert row.verdict in text_of(app.query_one("#bands-verdict"))


async def test_bands_recompute_on_new_window_and_hardware(app_factory):
    app = app_factory(initial_tab="bands")
    async with app.run_test(size=(100, 30)) as pilot:
        tab = app.query_one(BandsTab)
        await settle_tab(pilot, tab)
        await set_field(pilot, "#input-b_hours", "72")
        app.query_one("#b-hardware", Select).value = "h100-sxm"
        await settle_tab(pilot, tab)
        want = B.plan_bands(load_hardware("h100-sxm"), hours=72)
        assert tab.result.hours == 72 and tab.result.hardware == "h100-sxm"
        assert tab.result.recommended == want.recommended
        assert "72 h on one h100-sxm" in app.query_one("#bands-table-box").border_title


async def test_bands_bad_depths_show_inline(app_factory):
    app = app_factory(initial_tab="bands")
    async with app.run_test(size=(100, 30)) as pilot:
        tab = app.query_one(BandsTab)
        await settle_tab(pilot, tab)
        await set_field(pilot, "#input-b_depths", "12,x")
        await settle_tab(pilot, tab)
        field = app.query_one("#field-b_depths", FormField)
        assert field.has_class("-invalid") and "comma-separated integers" in text_of(field.query_one(".field-error"))
        assert app.query_one("#bands-body").has_class("-stale")
        await set_field(pilot, "#input-b_depths", "10,12")
        await settle_tab(pilot, tab)
        assert not field.has_class("-invalid") and [r.depth for r in tab.result.rows] == [10, 12]
        assert app.failures == []


async def test_moe_tables_are_the_engines(app_factory):
    app = app_factory(initial_tab="moe")
    async with app.run_test(size=(100, 30)) as pilot:
        tab = app.query_one(MoeTab)
        await settle_tab(pilot, tab)
        want = M.size_moe(load_model(M.SEED_MODEL), load_hardware("a100-40g-sxm"))
        phases = app.query_one("#moe-phases", DataTable)
        first = cells(phases, 0)
        assert first[0] == want["phases"][0]["name"] and first[3] == f"{want['phases'][0]['gpu_hours']:,.1f}"
        comps = app.query_one("#moe-components", DataTable)
        assert comps.row_count == len(want["components"]) + 1
        assert cells(comps, comps.row_count - 1)[1] == f"{want['total_params']:,}"
        totals = text_of(app.query_one("#moe-totals"))
        assert f"{want['total_gpu_hours']:,.1f} GPU-h" in totals and f"${want['cost_usd']:,.0f}" in totals
        layout = app.query_one("#moe-layout", DataTable)
        assert cells(layout, len(want["layout"]["expert_layer"]))[5] == f"{want['layout']['expert_layer_bytes']:,}"
        # the inner tabs switch with the keyboard too
        app.query_one("#moe-tables", TabbedContent).active = "moe-seed-pane"
        await pilot.pause()
        assert app.query_one("#moe-seed", DataTable).row_count == len(want["seed_comparison"])


async def test_moe_price_and_gpus_recompute_and_validate(app_factory):
    app = app_factory(initial_tab="moe")
    async with app.run_test(size=(100, 30)) as pilot:
        tab = app.query_one(MoeTab)
        await settle_tab(pilot, tab)
        await set_field(pilot, "#input-m_price", "4")
        await set_field(pilot, "#input-m_gpus_per_expert", "8")
        await settle_tab(pilot, tab)
        want = M.size_moe(load_model(M.SEED_MODEL), load_hardware("a100-40g-sxm"), price_per_gpu_hour=4.0, gpus_per_expert=8)
        assert tab.result["cost_usd"] == want["cost_usd"] and tab.result["price_source"] == "flag"
        totals = text_of(app.query_one("#moe-totals"))
        assert "typed in the $/GPU-h field" in totals and "flag" not in totals  # the tab's words, not the CLI's
        await set_field(pilot, "#input-m_expert_tokens", "20B,-1")
        await settle_tab(pilot, tab)
        field = app.query_one("#field-m_expert_tokens", FormField)
        assert field.has_class("-invalid") and "accepted" in text_of(field.query_one(".field-error"))
        assert app.failures == []


async def test_hidden_tabs_are_built_on_first_visit(app_factory):
    """Start-up builds only the visible tab; a palette "Go to" builds and shows the next one,
    even while a field of the old tab has focus (it must not pull the old tab back)."""
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        assert not app.query(BandsTab) and app.focused is not None
        go = next(c for c in app.get_system_commands(app.screen) if c.title == "Go to Bands")
        await go.callback()
        await pilot.pause()
        assert app.query_one("#tabs").active == "bands"
        await settle_tab(pilot, app.query_one(BandsTab))
        assert app.query_one(BandsTab).result is not None
        await pilot.click("#--content-tab-moe")  # the mouse works too
        await pilot.pause()
        assert app.query_one("#tabs").active == "moe" and app.query(MoeTab)


def test_small_gpu_hours_are_not_rounded_to_zero():
    from app.tabs.moe import gpu_hours_text

    assert gpu_hours_text(0.0276) == "0.028" and gpu_hours_text(33.64) == "33.6" and gpu_hours_text(0) == "0.0"
