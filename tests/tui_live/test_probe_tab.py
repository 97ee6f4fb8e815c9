"""The Probe tab runs a tiny CPU sweep as a child process: the table and the chart fill per config;
"use in plan" checks the saved file and feeds the measured MFU to the Plan tab."""

from __future__ import annotations

import json

from textual.widgets import DataTable, Input, Select

from app.tabs.probe import ProbeAdopted, ProbeTab, adoption_from_file, probe_command
from tests.tui_live.conftest import wait_until, write_probe


async def test_probe_tab_fills_table_and_chart(app_factory, tmp_path):
    out = tmp_path / "probe.json"
    app = app_factory(initial_tab="probe")
    async with app.run_test(size=(130, 40)) as pilot:
        tab = app.query_one(ProbeTab)
        for name, value in dict(depths="1", seqs="32", steps="1", warmup="0", vocab="256", head_dim="64",
                                max_batch="1", out=str(out)).items():
            tab.query_one(f"#probe-{name}", Input).value = value
        tab.query_one("#probe-device", Select).value = "cpu"
        await pilot.pause()
        tab.action_start()
        # A sign of life before the first config reports: the status counts seconds.
        await wait_until(pilot, lambda: str(tab.query_one("#probe-status").render()).endswith(" s"), timeout_s=5,
                         what="the elapsed seconds")
        table = tab.query_one("#probe-table", DataTable)
        chart = tab.query_one("#probe-chart")
        await wait_until(pilot, lambda: table.row_count == 1 and tab.done, timeout_s=90, what="the probe row")
        await wait_until(pilot, lambda: not tab.running and not tab.query_one("#probe-use").disabled, what="exit")
        row = table.get_row_at(0)
        assert row[0] == 1 and row[1] == 32 and row[-1] == "ok"
        assert "tok/s" in row[4]
        assert list(chart.bars) == ["d1/32"] and chart.bars["d1/32"] > 0
        await wait_until(pilot, lambda: not chart.no_data and chart.redraws > 1, what="the chart drawn")
        assert json.loads(out.read_text())["results"][0]["status"] == "ok"
        assert str(tab.query_one("#probe-status").render()).endswith(f"saved {out}")  # the path whole
        tab.action_use()
        assert app.adopted_probe.path == out and app.adopted_probe.mfu is None  # CPU: no profile, MFU unknown
        assert "MFU n/a" in str(tab.query_one("#probe-status").render())
        assert app.failures == []


async def test_use_in_plan_feeds_measured_mfu(app_factory, tmp_path):
    path = write_probe(tmp_path / "h100.json", "h100-sxm")
    seen = []
    app = app_factory()
    async with app.run_test(size=(130, 40), message_hook=lambda m: seen.append(m)) as pilot:
        tab = await app.show_tab("probe")
        tab.adopt(adoption_from_file(path))
        await pilot.pause()
        assert abs(app.adopted_probe.mfu - 0.44) < 1e-9
        assert app.query_one("#plan-tab").query_one("#input-eta_compute", Input).value == "0.440"
        assert any(isinstance(m, ProbeAdopted) for m in seen)


def test_probe_command_validates_fields():
    form = dict(depths="1,2", seqs="32", steps="2", warmup="0", vocab="256", head_dim="64", max_batch="", device="cpu",
                out="p.json")
    cmd = probe_command(form)
    assert cmd[cmd.index("--depths") + 1] == "1,2" and "--jsonl" in cmd and "--max-batch" not in cmd
    for key, bad in (("depths", "a,b"), ("steps", "0"), ("out", " ")):
        try:
            probe_command({**form, key: bad})
        except Exception as exc:
            assert type(exc).__name__ == "UserError" and (key in str(exc) or "depths" in str(exc))
        else:
            raise AssertionError(key)
