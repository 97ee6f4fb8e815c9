"""The Quantize tab's results at 140x42 and 80x24 (issue 17: the `rel` column was cut at 140
columns, at 80x24 the table showed only "tensor s", the Merkle root and the checks' details were
cut). A real checkpoint is quantized, sealed and verified once; then the terminal is resized."""

from __future__ import annotations

from textual.widgets import Input

from tests.tui.conftest import screen_text
from tests.tui_live.conftest import wait_until


async def test_results_are_whole_at_both_sizes(quantize_app, dense_run, tmp_path):
    app = quantize_app
    async with app.run_test(size=(140, 42)) as pilot:
        app.query_one("#q-ckpt", Input).value = str(dense_run)
        app.query_one("#q-out", Input).value = str(tmp_path / "m.s7l")
        app.query_one("#q-calib", Input).value = "2"
        tab = app.query_one("#quantize-tab")
        await pilot.click("#q-run")
        assert tab.running
        await wait_until(pilot, lambda: tab.result is not None or not tab.running, timeout_s=180, what="the run to end")
        r = tab.result
        assert r is not None and r["verify"]["ok"], app.query_one("#q-status").render()
        first = r["quantize"]["errors"][0]
        for size in ((140, 42), (80, 24)):
            await pilot.resize_terminal(*size)
            await pilot.pause(0.3)
            table_row = next(line for line in screen_text(app) if f"{first['max_abs']:.3e}" in line)
            assert f"{first['rel_fro']:.3e}" in table_row, f"{size}: {table_row!r}"  # the rel column is on screen
            assert "rel Frobenius" in "\n".join(screen_text(app))
            side = app.query_one("#q-side")
            seen = ""
            for y in range(0, tab.max_scroll_y + side.max_scroll_y + 40, 3):  # every part of the side panel, scrolled to
                tab.scroll_to(y=min(y, tab.max_scroll_y), animate=False)
                side.scroll_to(y=max(0, y - tab.max_scroll_y), animate=False)
                await pilot.pause(0.05)
                box = side.content_region  # the side panel's own cells (at 140 columns the table is beside it)
                rows = screen_text(app)[max(box.y, 0):max(box.bottom, 0)]
                seen += "".join(row[box.x:box.right].replace(" ", "") for row in rows)
            # Wrapped, never cut: the root and every check's detail are whole once the wrapping is undone.
            assert r["seal"]["merkle_root"] in seen, size
            for check in r["verify"]["checks"]:
                assert (check.get("detail") or "").replace(" ", "") in seen, (size, check)
            assert all(len(line) <= size[0] for line in screen_text(app))
