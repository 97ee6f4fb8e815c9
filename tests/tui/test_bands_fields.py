"""The Bands tab's shape and probe fields (head dim, kv heads, window pattern, probe file): the
result is `plan_bands` with the same values, and a refused value is marked at its own field."""

from __future__ import annotations

import json

import pytest
from textual.widgets import Input

from app.widgets.form_field import FormField
from engine.sizing import bands as B
from engine.specs import load_hardware
from tests.tui.conftest import settle_tab, text_of

pytest.importorskip("app.tabs.bands")
from app.tabs.bands import BandsTab  # noqa: E402


def error_of(app, name: str) -> str:
    field = app.query_one(f"#field-{name}", FormField)
    return text_of(field.query_one(".field-error")) if field.has_class("-invalid") else ""


async def set_value(pilot, tab, name: str, value: str) -> None:
    tab.query_one(f"#input-{name}", Input).value = value
    await settle_tab(pilot, tab)


async def test_shape_fields_reach_the_engine(app_factory):
    app = app_factory(initial_tab="bands")
    async with app.run_test(size=(100, 30)) as pilot:
        tab = app.query_one(BandsTab)
        await settle_tab(pilot, tab)
        await set_value(pilot, tab, "b_depths", "12,16")
        await set_value(pilot, tab, "b_head_dim", "64")
        await set_value(pilot, tab, "b_kv", "2")
        await set_value(pilot, tab, "b_window", "sssl")
        want = B.plan_bands(load_hardware("rtx4090"), depths=[12, 16], head_dim=64, n_kv_head=2, window_pattern="SSSL")
        assert tab.result["rows"] == want["rows"] and tab.result["shape"]["window_pattern"] == "SSSL"
        assert all(r["n_kv_head"] == 2 for r in tab.result["rows"])
        assert app.failures == []


async def test_refused_values_are_marked_at_their_field(app_factory, tmp_path):
    app = app_factory(initial_tab="bands")
    async with app.run_test(size=(100, 30)) as pilot:
        tab = app.query_one(BandsTab)
        await settle_tab(pilot, tab)
        await set_value(pilot, tab, "b_head_dim", "0")
        assert "head dim" in error_of(app, "b_head_dim") and app.query_one("#bands-body").has_class("-stale")
        await set_value(pilot, tab, "b_head_dim", "128")
        await set_value(pilot, tab, "b_kv", "5")  # the engine: 5 does not divide d12's 6 heads
        assert error_of(app, "b_kv").startswith("kv-heads = 5 does not divide n_head = 6")
        await set_value(pilot, tab, "b_kv", "")
        assert error_of(app, "b_kv") == "" and not app.query_one("#bands-body").has_class("-stale")
        await set_value(pilot, tab, "b_window", "SXL")
        assert "window_pattern = 'SXL'" in error_of(app, "b_window")
        await set_value(pilot, tab, "b_window", "L")
        missing = tmp_path / "nope.json"
        await set_value(pilot, tab, "b_probe", str(missing))
        assert str(missing) in error_of(app, "b_probe")
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"device": "x", "hardware": None, "results": "many"}))
        await set_value(pilot, tab, "b_probe", str(bad))
        assert "results" in error_of(app, "b_probe")
        await set_value(pilot, tab, "b_probe", "")
        assert not any(f.has_class("-invalid") for f in app.query(FormField)) and tab.result["probe_device"] is None
        assert app.failures == []


async def test_probe_file_typed_in_gives_measured_rows(app_factory, tmp_path):
    path = tmp_path / "cpu.json"  # a device that matched no profile: hardware null, MFU null
    path.write_text(json.dumps({"device": "cpu", "hardware": None, "results": [
        {"depth": 12, "seq_len": 2048, "device_batch": 4, "tok_per_s": 1234.0, "step_time_s": 6.6,
         "peak_vram_bytes": None, "mfu": None, "status": "ok"}]}))
    app = app_factory(initial_tab="bands")
    async with app.run_test(size=(100, 30)) as pilot:
        tab = app.query_one(BandsTab)
        await settle_tab(pilot, tab)
        await set_value(pilot, tab, "b_probe", str(path))
        d12 = next(r for r in tab.result["rows"] if r["depth"] == 12)
        assert d12["tokens_per_s_source"] == "probe" and d12["tokens_per_s"] == 1234.0
        assert "1,234*" in [str(c).strip() for c in app.query_one("#bands-table").get_row_at(0)]
        assert "measured on cpu" in app.query_one("#bands-table-box").border_title
