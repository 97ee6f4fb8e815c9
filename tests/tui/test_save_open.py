"""Saving a plan (name prompt, overwrite question), opening one from the list, and --plan FILE."""

from __future__ import annotations

import subprocess
from dataclasses import replace
import sys
import tomllib

from textual.widgets import Button, DataTable, Input

from app.main import main
from app.screens.open_plan import OpenPlanScreen
from app.screens.save import ConfirmScreen, SaveScreen
from app.tabs.plan import PlanTab
from engine.plan import Plan, load_plan
from engine.sizing.physics import default_goal
from engine.specs import load_hardware, load_model
from tests.tui.conftest import settle, text_of


def saved_plan(path, model="gpt2-350m", hardware="a100-80g-sxm", G=None) -> Plan:
    m = load_model(model)
    plan = Plan(model=m, hardware=load_hardware(hardware), goal=default_goal(m), G=G).compute()
    plan.save(path)
    return plan


async def save_as(pilot, name: str) -> None:
    await pilot.press("ctrl+s")
    await pilot.pause()
    assert isinstance(pilot.app.screen, SaveScreen)
    pilot.app.screen.query_one("#save-name", Input).value = ""
    await pilot.press(*name, "enter")
    await pilot.pause()


async def test_save_writes_the_plan_and_asks_before_overwriting(app_factory, plans_dir):
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        current = app.query_one(PlanTab).current
        await save_as(pilot, "first")
        path = plans_dir / "first.toml"
        doc = tomllib.loads(path.read_text())
        assert doc["kind"] == "cluster-plan" and doc["model"]["name"] == "llama-13b"
        assert doc["result"]["G"] == current.result["solution"]["G"]
        if current.refined:  # Step 2's layouts are saved too, as `lsdt plan --save` saves them
            assert doc["refined"]["layouts"][0]["gpus"] == current.refined["layouts"][0]["gpus"]
        reloaded = load_plan(path)
        # inputs in full (a saved [refined.efficiency] comes back explicit: the same numbers, not None)
        assert replace(reloaded, efficiency_refined=None) == replace(current, efficiency_refined=None)
        again = reloaded.compute()
        assert again.result["solution"] == current.result["solution"] and again.refined == current.refined

        before = path.read_text()
        await pilot.press("ctrl+g")  # change the plan: fixed G (empty -> invalid), then G = 64
        app.query_one("#input-G", Input).value = "64"
        await settle(pilot)
        await save_as(pilot, "first")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert path.read_text() == before  # "no" leaves the file alone
        await save_as(pilot, "first")
        await pilot.press("y")
        await pilot.pause()
        assert tomllib.loads(path.read_text())["G"] == 64


async def test_save_name_is_validated_in_the_dialog(app_factory, plans_dir):
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        dialog = app.screen
        assert dialog.query_one("#save-name", Input).value == "llama-13b-h100-sxm"  # suggested name
        dialog.query_one("#save-name", Input).value = "../escape"
        await pilot.pause()
        assert dialog.query_one("#save-ok", Button).disabled
        assert "accepted" in text_of(dialog.query_one("#save-error"))
        await pilot.press("enter")  # refused: still open, nothing written
        assert isinstance(app.screen, SaveScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert list(plans_dir.iterdir()) == []


async def test_open_lists_key_numbers_and_loads_the_plan(app_factory, plans_dir):
    plan = saved_plan(plans_dir / "small.toml")
    (plans_dir / "broken.toml").write_text("kind = 'cluster-plan'\n[model]\n")
    app = app_factory()
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot)
        app.query_one("#hardware-filter", Input).value = "h1"  # an old search, unrelated to the plan opened
        app.query_one("#model-filter", Input).value = "lla"
        await settle(pilot)
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, OpenPlanScreen)
        await app.screen.workers.wait_for_complete()
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        rows = {str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)] for i in range(table.row_count)}
        s = plan.result["solution"]
        a = plan.answer()  # the list shows each plan's one answer
        assert rows["small"][1:4] == ["gpt2-350m", "a100-80g-sxm", "auto"]
        assert rows["small"][4].startswith(f"G {a.gpus} ({a.nodes} node{'s' * (a.nodes != 1)})")
        assert rows["small"][5] == f"{a.dp}x{a.tp}x{a.pp}"
        assert rows["broken"][4] == "unreadable"
        assert "broken.toml" in text_of(app.screen.query_one("#open-note"))
        table.move_cursor(row=list(rows).index("small"))
        await pilot.press("enter")
        await settle(pilot)
        tab = app.query_one(PlanTab)
        assert tab.current == load_plan(plans_dir / "small.toml")  # what was opened, exactly
        assert tab.current.result["solution"] == s and tab.current.refined == plan.refined
        # The form as a user would have typed it: the default tokens (20 x params) stay an empty
        # field with its placeholder, not 260308992000 (issue 17); the searches are cleared.
        tokens = app.query_one("#input-tokens", Input)
        assert tokens.value == "" and tokens.placeholder == "20 x params"
        assert app.query_one("#hardware-filter", Input).value == "" and app.query_one("#model-filter", Input).value == ""


async def test_plan_argument_opens_the_plan(app_factory, plans_dir):
    plan = saved_plan(plans_dir / "fixed.toml", model="llama-7b", hardware="h100-sxm", G=64)
    app = app_factory(plan=load_plan(plans_dir / "fixed.toml"))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        tab = app.query_one(PlanTab)
        assert tab.current == load_plan(plans_dir / "fixed.toml") and tab.current.G == 64
        assert tab.current.result == plan.result and tab.current.refined == plan.refined


def test_bad_plan_file_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("kind = 'cluster-plan'\nG = 0\n")
    assert main(["--plan", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lsdt-tui: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert main(["--plan", str(tmp_path / "missing.toml")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_startup_never_imports_torch(tmp_path):
    """In a fresh interpreter: mount the app, let the first plan compute, then look at sys.modules."""
    code = f"""
import asyncio, sys
from app.app import make_app
from tests.tui.conftest import settle
async def main():
    app = make_app(plans_dir={str(tmp_path)!r}, cursor_blink=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        assert app.query_one("#plan-tab").current is not None
    print("torch" in sys.modules, any(m.startswith("torch.") for m in sys.modules))
asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False"]


async def test_an_enter_typed_before_the_list_arrives_opens_the_first_plan(app_factory, plans_dir, monkeypatch):
    """ctrl+o Enter at full speed (tmux walk at 80x24): the list is read off the UI thread, and an
    Enter that came first was taken by the empty table and lost; now it is kept and opens the plan."""
    import threading

    import app.screens.open_plan as open_plan

    saved_plan(plans_dir / "only.toml")
    gate = threading.Event()
    real = open_plan.list_saved
    monkeypatch.setattr(open_plan, "list_saved", lambda d: (gate.wait(10), real(d))[1])
    app = app_factory()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, OpenPlanScreen) and not app.screen.loaded
        await pilot.press("enter")  # before the rows exist
        gate.set()
        await app.screen.workers.wait_for_complete()
        await settle(pilot)
        assert not isinstance(app.screen, OpenPlanScreen)
        assert app.query_one(PlanTab).current == load_plan(plans_dir / "only.toml")
