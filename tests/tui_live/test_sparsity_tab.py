"""The Sparsity tab: runs `lsdt sparsity` as a child process on a real tiny training run and fills
its tables and charts from the artifact; bad fields give a one-line status; start-up imports no torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from textual.widgets import DataTable, Input, Select

from app.tabs.sparsity import SparsityTab, sparsity_command
from tests.sparsity.conftest import gpt_run, sparsity_cache, task_spec  # noqa: F401 (fixtures: a real tiny run, tasks)
from tests.tui_live.conftest import REPO, wait_until


@pytest.mark.slow  # the whole lab (capture, 2 SAEs x 4 L1, SI, dynamic-k) in a child process: ~1 min on 2 idle cores
async def test_sparsity_tab_runs_the_lab_and_fills_the_view(app_factory, tmp_path, gpt_run, task_spec):
    out = tmp_path / "art"
    app = app_factory(initial_tab="sparsity")
    async with app.run_test(size=(160, 48)) as pilot:
        tab = app.query_one(SparsityTab)
        for name, value in dict(model=str(gpt_run), tasks=task_spec, layers="all", max_tokens="256", sae_steps="10",
                                k="0.5,1.0", out=str(out)).items():
            tab.query_one(f"#sp-{name}", Input).value = value
        tab.query_one("#sp-device", Select).value = "cpu"
        await pilot.pause()
        tab.action_start()
        assert tab.running
        await wait_until(pilot, lambda: "done · artifact" in str(tab.query_one("#sp-status").render()) or "✗" in str(tab.query_one("#sp-status").render()),
                         timeout_s=600, what="the lab to finish")
        assert "done · artifact" in str(tab.query_one("#sp-status").render()), str(tab.query_one("#sp-status").render())
        layers = tab.query_one("#sp-layertable", DataTable)
        assert layers.row_count == 2 and layers.get_row_at(0)[0] == "0"
        assert set(tab.query_one("#sp-frac").bars) == {"0", "1"}
        si = tab.query_one("#sp-si").bars
        from engine.runtime.sparsity.artifacts import read_csv

        live = [r for r in read_csv(out / "si_units.csv") if r["unit"] == "neuron"]
        assert len(si) == 20 and sum(v for k, v in si.items() if not k.endswith("n")) == len(live) > 200  # every live neuron binned
        q_line = str(tab.query_one("#sp-q").render())
        assert "Q" in q_line and q_line.rstrip().endswith("communities)")  # whole, in 3 significant digits
        assert tab.query_one("#sp-q").region.height >= 1
        assert tab.query_one("#sp-sae").n_points > 0
        k_rows = [tab.query_one("#sp-ktable", DataTable).get_row_at(i) for i in range(2)]
        assert k_rows[1][0] == "1" and k_rows[1][4] == "+0.00%"
        assert (out / "dynamic_k.csv").is_file()
        assert app.failures == []


async def test_bad_model_is_a_one_line_status(app_factory, tmp_path):
    app = app_factory(initial_tab="sparsity")
    async with app.run_test(size=(160, 48)) as pilot:
        tab = app.query_one(SparsityTab)
        tab.query_one("#sp-model", Input).value = ""
        tab.action_start()
        await pilot.pause()
        assert not tab.running and "✗ model: empty" in str(tab.query_one("#sp-status").render())
        tab.query_one("#sp-model", Input).value = str(tmp_path / "missing")
        tab.query_one("#sp-out", Input).value = str(tmp_path / "a")
        tab.query_one("#sp-device", Select).value = "cpu"
        tab.action_start()
        await wait_until(pilot, lambda: not tab.running and "✗" in str(tab.query_one("#sp-status").render()),
                         timeout_s=60, what="the child's error")
        status = str(tab.query_one("#sp-status").render())
        assert "no such file or directory" in status and "exit code 2" in status
        assert not (tmp_path / "a").exists()


def test_command_for_each_stage():
    form = dict(model="run", tasks="", layers="", max_tokens="100", sae_steps="5", k="0.5", out="o", stage="capture", device="cpu")
    cmd = sparsity_command(form)
    assert cmd[cmd.index("sparsity") + 1] == "capture" and "--sae-steps" not in cmd and "--k" not in cmd
    assert cmd[cmd.index("--tasks") + 1] == "builtin" and cmd[cmd.index("--layers") + 1] == "auto"
    cmd = sparsity_command({**form, "stage": "run"})
    assert "--sae-steps" in cmd and "--k" in cmd


CHECK = """
import asyncio, sys
from app.app import make_app
async def main():
    app = make_app(cursor_blink=False, initial_tab="sparsity")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.3)
        assert "sparsity" in {t.id for t in app.tabs}
    print("torch" in sys.modules)
asyncio.run(main())
"""


def test_sparsity_tab_does_not_import_torch():
    out = subprocess.run([sys.executable, "-c", CHECK], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_si_numbers_in_three_significant_digits():
    from app.tabs.sparsity import _g

    assert _g("0.0037427151") == "0.00374" and _g(0.41) == "0.41" and _g("n/a") == "n/a"
