"""Pilot tests of the Quantize tab: real subprocess runs of quantize/seal/verify, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

from textual.widgets import DataTable, Input

from app.tabs.quantize import QuantizeTab, plan_steps
from tests.tui.conftest import text_of


async def _run(pilot, app) -> QuantizeTab:
    tab = app.query_one(QuantizeTab)
    for _ in range(600):
        await app.workers.wait_for_complete()
        await pilot.pause()
        if not tab.running:
            return tab
    raise AssertionError("the Quantize tab never finished")


CHECK = """
import asyncio, json, sys
from app.app import make_app
async def main():
    app = make_app(cursor_blink=False)  # every tab of this build
    async with app.run_test(size=(120, 40)) as pilot:
        tab = await app.show_tab("quantize")
        await pilot.pause()
        ids = [t.id for t in app.tabs]
        mounted = type(tab).__name__
    print(json.dumps([ids, mounted, "torch" in sys.modules]))
asyncio.run(main())
"""


def test_tab_is_registered_and_does_not_import_torch():
    from tests.conftest import REPO

    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    ids, mounted, torch_loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "quantize" in ids and mounted == "QuantizeTab"
    assert torch_loaded is False


async def test_quantize_seal_verify_a_checkpoint(quantize_app, dense_run, tmp_path):
    app = quantize_app
    out = tmp_path / "tiny.s7l"
    async with app.run_test(size=(140, 40)) as pilot:
        app.query_one("#q-ckpt", Input).value = str(dense_run)
        app.query_one("#q-out", Input).value = str(out)
        app.query_one("#q-calib", Input).value = "2"
        await pilot.click("#q-run")
        tab = await _run(pilot, app)
        assert app.failures == []
        r = tab.result
        assert r is not None and r["verify"]["ok"] is True, text_of(app.query_one("#q-status"))
        assert out.is_file()
        root = r["seal"]["merkle_root"]
        assert root in text_of(app.query_one("#q-root"))
        assert app.query_one("#q-error-table", DataTable).row_count == len(r["quantize"]["errors"]) > 0
        ppl = text_of(app.query_one("#q-ppl"))
        assert f"{r['quantize']['perplexity']['delta_pct']:+8.3f}%" in ppl
        assert "sealed and verified" in text_of(app.query_one("#q-status"))
        assert [row[0] for row in tab.check_rows] == [c["check"] for c in r["verify"]["checks"]]

        # verify any .s7l: the sealed file passes; one flipped bit fails and the table says where
        bad = tmp_path / "bad.s7l"
        data = bytearray(out.read_bytes())
        data[-5] ^= 0x10
        bad.write_bytes(bytes(data))
        app.query_one("#q-file", Input).value = str(bad)
        await pilot.click("#q-verify")
        tab = await _run(pilot, app)
        assert tab.verify_result["ok"] is False
        assert "FAILED" in text_of(app.query_one("#q-status"))
        assert any(row[1] == "FAIL" and row[0] == "tensor_hashes" for row in tab.check_rows)
        assert "tensor_hashes" in text_of(app.query_one("#q-checks"))
        assert app.failures == []


async def test_bad_input_is_one_line_and_runs_nothing(quantize_app, tmp_path):
    app = quantize_app
    async with app.run_test(size=(140, 40)) as pilot:
        tab = app.query_one(QuantizeTab)
        await pilot.click("#q-run")
        await pilot.pause()
        assert "pick a checkpoint" in text_of(app.query_one("#q-status")) and not tab.running
        app.query_one("#q-ckpt", Input).value = str(tmp_path / "missing")
        app.query_one("#q-ckpt", Input).focus()
        await pilot.press("enter")  # Enter in the checkpoint field runs, like the button
        await pilot.pause()
        assert "no such file" in text_of(app.query_one("#q-status"))
        app.query_one("#q-ckpt", Input).value = str(tmp_path)
        app.query_one("#q-calib", Input).value = "0"
        await pilot.press("enter")
        await pilot.pause()
        assert "calib" in text_of(app.query_one("#q-status"))
        app.query_one("#q-file", Input).value = str(tmp_path / "nope.s7l")
        app.query_one("#q-file", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert "no such file" in text_of(app.query_one("#q-status")) and not tab.running
        assert len(app.workers) == 0 and app.failures == []


async def test_not_a_checkpoint_shows_the_cli_error(quantize_app, tmp_path):
    """A directory with no checkpoint: the quantize step's one-line error, no crash."""
    app = quantize_app
    async with app.run_test(size=(140, 40)) as pilot:
        app.query_one("#q-ckpt", Input).value = str(tmp_path)
        await pilot.click("#q-run")
        await _run(pilot, app)
        status = text_of(app.query_one("#q-status"))
        assert status.startswith("quantize failed") and "no usable checkpoint" in status
        assert app.failures == []


def test_steps_for_a_moe_run_dir(tmp_path):
    (tmp_path / "moe.toml").write_text("")
    kind, steps = plan_steps(str(tmp_path), "", 8)
    assert kind == "moe" and steps[0][1][-5:] == ["--run-dir", str(tmp_path), "--json", "--calib", "8"]
    assert steps[0][1][3:6] == ["moe", "pipeline", "--resume"]
    kind, steps = plan_steps(str(tmp_path / "moe.toml"), "", 8)
    assert kind == "dense" and [s for s, _ in steps] == ["quantize", "seal", "verify"]


async def test_moe_run_dir_runs_phase_3_and_shows_per_domain_deltas(quantize_app, tmp_path, monkeypatch):
    """A trained (tiny, few-step) MoE directory: the tab runs `lsdt moe pipeline --resume` and shows its answer."""
    import io

    from engine.runtime.moe import train as moe_train
    from engine.runtime.moe.config import write_config
    from tests.moe.conftest import tiny_config

    run = tmp_path / "moe"
    env = {"LSDT_CACHE_DIR": str(tmp_path / "cache")}
    monkeypatch.setenv("LSDT_CACHE_DIR", env["LSDT_CACHE_DIR"])
    cfg = tiny_config(trunk_steps=2, expert_steps=2, router_steps=2)
    write_config(run, cfg)
    moe_train.run_job(cfg, run, "trunk", out=io.StringIO())
    moe_train.run_phase2(cfg, run, workers=1, out=io.StringIO())
    app = quantize_app  # the tab's subprocess inherits LSDT_CACHE_DIR
    async with app.run_test(size=(140, 40)) as pilot:
        app.query_one("#q-ckpt", Input).value = str(run)
        app.query_one("#q-calib", Input).value = "2"
        await pilot.click("#q-run")
        tab = await _run(pilot, app)
        assert app.failures == [], app.failures
        s = tab.result["moe pipeline (quantize + seal + verify)"]
        assert s["verify"]["ok"] and s["artifact"] == str(run / "model.s7l")
        ppl = text_of(app.query_one("#q-ppl"))
        for name, p in s["perplexity"].items():
            assert name in ppl and f"{p['delta_pct']:+8.3f}%" in ppl
        assert s["merkle_root"] in text_of(app.query_one("#q-root"))
        assert app.query_one("#q-error-table", DataTable).row_count == len(s["errors"])
        assert ("V6_determinism", "ok") in [row[:2] for row in tab.check_rows]
