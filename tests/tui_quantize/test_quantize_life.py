"""The Quantize tab shows life while its first step starts (issue 17: it sat at 0 % for ~20 s):
the bar pulses until a step reports a share of the work, the status counts seconds and shows the
last line; Enter in the quantize rows quantizes, Enter in the verify field verifies; the calib
field has its label; the button comes after the three fields it uses."""

from __future__ import annotations

from textual.widgets import Input, ProgressBar

from tests.tui.conftest import text_of
from tests.tui_live.conftest import wait_until


async def test_a_run_shows_life_before_its_first_line(quantize_app, dense_run, tmp_path):
    app = quantize_app
    async with app.run_test(size=(120, 35)) as pilot:
        app.query_one("#q-ckpt", Input).value = str(dense_run)
        app.query_one("#q-out", Input).value = str(tmp_path / "m.s7l")
        app.query_one("#q-calib", Input).value = "2"
        app.query_one("#q-calib", Input).focus()
        await pilot.pause()
        await pilot.press("enter")  # Enter in a quantize field quantizes
        tab = app.query_one("#quantize-tab")
        assert tab.running
        bar = app.query_one("#q-progress", ProgressBar)
        assert bar.total is None  # pulsing: nothing measured yet
        await wait_until(pilot, lambda: " 1 s · " in text_of(app.query_one("#q-status")), timeout_s=10, what="a second counted")
        await wait_until(pilot, lambda: not tab.running, timeout_s=180, what="the run to end")
        assert bar.total == 1.0 and bar.progress == 1.0
        assert "sealed and verified" in text_of(app.query_one("#q-status"))


async def test_labels_and_tab_order(quantize_app):
    app = quantize_app
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        chain = [w.id for w in app.screen.focus_chain if w.id and w.id.startswith("q-")]
        assert chain[:6] == ["q-ckpt", "q-out", "q-calib", "q-run", "q-file", "q-verify"]
        labels = [text_of(w) for w in app.query(".q-label, .q-label-short")]
        assert "calib" in labels
