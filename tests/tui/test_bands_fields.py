"""The Bands tab's shape, probe, curriculum, reserve and min tokens/param fields: the result is
`plan_bands` with the same values, and a refused value is marked at its own field."""

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
        assert tab.result.rows == want.rows and tab.result.shape.window_pattern == "SSSL"
        assert all(r.n_kv_head == 2 for r in tab.result.rows)
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
        assert error_of(app, "b_kv").startswith("model d12: n_kv_head = 5 does not divide n_head = 6")
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
        assert not any(f.has_class("-invalid") for f in app.query(FormField)) and tab.result.probe_device is None
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
        d12 = next(r for r in tab.result.rows if r.depth == 12)
        assert d12.tokens_per_s_source == "probe" and d12.tokens_per_s == 1234.0
        assert "1,234*" in [str(c).strip() for c in app.query_one("#bands-table").get_row_at(0)]
        assert "measured on cpu" in app.query_one("#bands-table-box").border_title


async def test_curriculum_reserve_and_min_ratio_reach_the_engine(app_factory):
    app = app_factory(initial_tab="bands")
    async with app.run_test(size=(100, 30)) as pilot:
        tab = app.query_one(BandsTab)
        await settle_tab(pilot, tab)
        assert [s.seq_len for s in tab.result.curriculum.stages] == [512, 1024, 2048]  # empty: the CLI's default
        await set_value(pilot, tab, "b_curriculum", "512:0.6, 2048:0.4")
        await set_value(pilot, tab, "b_reserve", "6")
        hw = load_hardware("rtx4090")
        want = B.plan_bands(hw, curriculum=[(512, 0.6), (2048, 0.4)], reserve_bytes=6e9)
        assert tab.result.curriculum == want.curriculum and tab.result.rows == want.rows
        assert tab.result.usable_memory_bytes == hw.memory_bytes - 6e9
        assert "18.0 GB usable" in app.query_one("#bands-table-box").border_title
        summary = text_of(app.query_one("#bands-summary"))
        assert "seq   512   60%" in summary and "seq  2048   40%" in summary and "seq  1024" not in summary
        await set_value(pilot, tab, "b_min_ratio", "4")
        want = B.plan_bands(hw, curriculum=[(512, 0.6), (2048, 0.4)], reserve_bytes=6e9, min_tokens_per_param=4)
        assert tab.result.recommended == want.recommended
        assert f"RECOMMEND d{want.recommended.depth}" in text_of(app.query_one("#bands-summary"))
        assert app.failures == []


@pytest.mark.parametrize("name, value, needle", [
    ("b_curriculum", "2048,512", "--curriculum '2048,512': sequence lengths do not rise; accepted: SEQ[:FRACTION]"),
    ("b_curriculum", "512:0.5,2048:0.4", "fractions sum to 0.9"),
    ("b_reserve", "-1", "'-1': accepted: a number of GB >= 0"),
    ("b_reserve", "nan", "'nan': accepted: a number of GB >= 0"),
    ("b_min_ratio", "0", "'0'"),
    ("b_batch", "1024", "global batch = 1024 tokens is shorter than one sequence"),  # the engine's check, at its field
])
async def test_bad_curriculum_reserve_min_ratio_are_marked_at_their_field(app_factory, name, value, needle):
    app = app_factory(initial_tab="bands")
    async with app.run_test(size=(100, 30)) as pilot:
        tab = app.query_one(BandsTab)
        await settle_tab(pilot, tab)
        await set_value(pilot, tab, name, value)
        message = error_of(app, name)
        assert needle in message and message.count("\n") <= 1  # one line (text_of ends it with a newline)
        assert app.query_one("#bands-body").has_class("-stale")
        assert [f.field_name for f in app.query(FormField) if f.has_class("-invalid")] == [name]
        await set_value(pilot, tab, name, {"b_curriculum": "", "b_reserve": "2", "b_min_ratio": "8", "b_batch": "524288"}[name])
        assert error_of(app, name) == "" and not app.query_one("#bands-body").has_class("-stale")
        assert app.failures == []


async def test_an_empty_window_field_is_the_clis_default(app_factory):
    """Empty means the default, as in every other field: `lsdt bands` without --window-pattern."""
    app = app_factory(initial_tab="bands")
    async with app.run_test(size=(100, 30)) as pilot:
        tab = app.query_one(BandsTab)
        await settle_tab(pilot, tab)
        await set_value(pilot, tab, "b_window", "")
        assert error_of(app, "b_window") == ""
        assert tab.result.rows == B.plan_bands(load_hardware("rtx4090")).rows
        assert app.failures == []
