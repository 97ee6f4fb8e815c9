"""The Bands tab's pilot field (`lsdt bands --pilot/--pilot-metric/--pilot-axis`): the fit and the
projection under the recommendation, a refusal shown as a result, a bad file marked at its field,
and the file read once per (path, mtime, size)."""

from __future__ import annotations

import json
import os

import pytest
from textual.widgets import Input, Select

from app.widgets.form_field import FormField
from engine.sizing import bands as B
from engine.sizing import pilot as P
from engine.sizing.pilot import read_metrics
from engine.specs import load_hardware
from tests.sizing.test_pilot import curve
from tests.tui.conftest import settle_tab, text_of

pytest.importorskip("app.tabs.bands")
from app.tabs.bands import BandsTab  # noqa: E402


def write_jsonl(path, records) -> str:
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return str(path)


def error_of(app, name: str) -> str:
    field = app.query_one(f"#field-{name}", FormField)
    return text_of(field.query_one(".field-error")).strip() if field.has_class("-invalid") else ""


async def set_value(pilot, tab, name: str, value: str) -> None:
    tab.query_one(f"#input-{name}", Input).value = value
    await settle_tab(pilot, tab)


async def test_pilot_fit_and_projection_shown_like_the_cli(app_factory, tmp_path):
    path = write_jsonl(tmp_path / "metrics.jsonl", curve(2.5, 30.0, 0.4, n=500, t_end=4 * 3600))
    app = app_factory(initial_tab="bands")
    async with app.run_test(size=(100, 30)) as pilot:
        tab = app.query_one(BandsTab)
        await settle_tab(pilot, tab)
        await set_value(pilot, tab, "b_pilot", path)
        want = B.plan_bands(load_hardware("rtx4090"), pilot=read_metrics(path)).pilot
        assert want.ok and tab.result.pilot == want
        summary = text_of(app.query_one("#bands-summary"))
        f = want.fit
        assert (f"pilot     {want.points} 'loss' points to 4 h: L(t) = {f.a:.3f} + {f.b:.3g} t^-{f.c:.3f}"
                in summary)
        assert f"projected at 20.4 h ({want.extrapolation:.1f}x ahead): {want.loss_at_target:.3f}" in summary
        assert error_of(app, "b_pilot") == ""
        # --pilot-axis tokens: projected to the recommended depth's pretraining tokens
        app.query_one("#b-pilot-axis", Select).value = "tokens"
        await settle_tab(pilot, tab)
        p = tab.result.pilot
        assert p.axis == "tokens" and p.target == tab.result.split.pretrain_tokens
        assert p == B.plan_bands(load_hardware("rtx4090"), pilot=read_metrics(path), pilot_axis="tokens").pilot
        assert app.failures == []


async def test_refused_pilot_is_a_result_not_an_error(app_factory, tmp_path):
    path = write_jsonl(tmp_path / "short.jsonl", curve(2.5, 30.0, 0.4, n=100, t_end=600))  # 10 min for a 20 h target
    app = app_factory(initial_tab="bands")
    async with app.run_test(size=(100, 30)) as pilot:
        tab = app.query_one(BandsTab)
        await settle_tab(pilot, tab)
        await set_value(pilot, tab, "b_pilot", path)
        p = tab.result.pilot
        assert p.status == "refused" and p.reason.startswith("too short")
        assert f"pilot     REFUSED: {p.reason[:40]}" in text_of(app.query_one("#bands-summary"))
        assert error_of(app, "b_pilot") == "pilot refused: see Recommendation"
        assert not app.query_one("#bands-body").has_class("-stale") and tab.result.recommended is not None
        # --pilot-metric val_loss on a file that logs none: refused with the engine's reason
        write_jsonl(tmp_path / "long.jsonl", curve(2.5, 30.0, 0.4, n=500, t_end=4 * 3600))
        await set_value(pilot, tab, "b_pilot", str(tmp_path / "long.jsonl"))
        assert tab.result.pilot.status == "ok" and error_of(app, "b_pilot") == ""
        app.query_one("#b-pilot-metric", Select).value = "val_loss"
        await settle_tab(pilot, tab)
        assert tab.result.pilot.status == "refused" and "'val_loss'" in tab.result.pilot.reason
        assert "REFUSED" in text_of(app.query_one("#bands-summary"))
        assert app.failures == []


async def test_bad_pilot_file_is_marked_at_its_field(app_factory, tmp_path):
    app = app_factory(initial_tab="bands")
    async with app.run_test(size=(100, 30)) as pilot:
        tab = app.query_one(BandsTab)
        await settle_tab(pilot, tab)
        missing = tmp_path / "nope.jsonl"
        await set_value(pilot, tab, "b_pilot", str(missing))
        assert error_of(app, "b_pilot") == f"{missing}: no such file"
        assert app.query_one("#bands-body").has_class("-stale")
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"time": 1, "loss": 3}\n{"time": 2, loss\n{"time": 3, "loss": 2.9}\n')
        await set_value(pilot, tab, "b_pilot", str(bad))
        assert error_of(app, "b_pilot").startswith(f"{bad}:2: invalid JSON")
        await set_value(pilot, tab, "b_pilot", str(tmp_path))
        assert error_of(app, "b_pilot").startswith(f"{tmp_path}: is a directory")
        await set_value(pilot, tab, "b_pilot", "")
        assert error_of(app, "b_pilot") == "" and tab.result.pilot is None
        assert not app.query_one("#bands-body").has_class("-stale")
        assert [f.field_name for f in app.query(FormField) if f.has_class("-invalid")] == []
        assert app.failures == []


async def test_pilot_file_read_once_until_it_changes(app_factory, tmp_path, monkeypatch):
    reads = []

    def counting(path):
        reads.append(str(path))
        return read_metrics(path)

    monkeypatch.setattr(P, "read_metrics", counting)
    path = tmp_path / "metrics.jsonl"
    write_jsonl(path, curve(2.5, 30.0, 0.4, n=300, t_end=4 * 3600))
    app = app_factory(initial_tab="bands")
    async with app.run_test(size=(100, 30)) as pilot:
        tab = app.query_one(BandsTab)
        await settle_tab(pilot, tab)
        await set_value(pilot, tab, "b_pilot", str(path))
        await set_value(pilot, tab, "b_hours", "12")
        await set_value(pilot, tab, "b_hours", "24")
        assert reads == [str(path)] and tab.result.pilot.status == "ok"
        before = tab.result.pilot.points
        write_jsonl(path, curve(2.5, 30.0, 0.4, n=400, t_end=4 * 3600))  # the run logged more lines
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
        await set_value(pilot, tab, "b_hours", "23")
        assert reads == [str(path)] * 2
        want = B.plan_bands(load_hardware("rtx4090"), hours=23, pilot=read_metrics(path)).pilot
        assert tab.result.pilot == want and want.points > before
        assert app.failures == []
