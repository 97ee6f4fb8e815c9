"""Pilot tests of the Plan tab: type, press keys, and compare what is shown with the engine."""

from __future__ import annotations

import json

from textual.widgets import Input, RadioButton

from app.tabs.plan import DEFAULT_HARDWARE, DEFAULT_MODEL, REFINED, PlanTab
from app.widgets.form_field import FormField
from app.widgets.layouts_table import CompareTable, RefinedLayouts, TopLayouts, refined_detail
from app.widgets.profile_picker import ProfilePicker
from app.widgets.result_panel import ResultPanel
from engine.plan import Plan
from engine.sizing.physics import default_goal
from engine.specs import load_hardware, load_model
from tests.tui.conftest import settle, text_of


def engine_plan(model=DEFAULT_MODEL, hardware=DEFAULT_HARDWARE, **goal) -> Plan:
    m = load_model(model)
    return Plan(model=m, hardware=load_hardware(hardware), goal=default_goal(m, **goal)).compute()


async def type_into(pilot, selector: str, text: str) -> None:
    widget = pilot.app.query_one(selector, Input)
    widget.focus()
    widget.value = ""
    await pilot.press(*text)


async def test_keys_reach_the_plan_tab_from_the_first_frame(app_factory, monkeypatch):
    """The first frame already shows the plan, so a key pressed then (ctrl+s) must reach this tab:
    the focus is in the hardware search when that frame is painted, not on the tab bar."""
    from app.app import LsdtApp

    focused_at_first_frame = []
    display = LsdtApp._display

    def first_frame(self, screen, renderable):
        if not focused_at_first_frame:
            focused_at_first_frame.append(screen.focused)
        return display(self, screen, renderable)

    monkeypatch.setattr(LsdtApp, "_display", first_frame)
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        assert focused_at_first_frame and focused_at_first_frame[0] is app.query_one("#hardware-filter")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert type(app.screen).__name__ == "SaveScreen"


async def test_default_plan_is_the_engines(app_factory):
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        tab = app.query_one(PlanTab)
        want = engine_plan()  # empty fields are the CLI's defaults (20 tokens/param, 30 d, 4,194,304-token batch)
        assert tab.current is not None
        assert tab.current.result["solution"] == want.result["solution"]
        s = want.result["solution"]
        shown = text_of(app.query_one(ResultPanel))
        assert f"G = {s['G']:,}" in shown
        assert f"DP {s['dp']} · TP {s['tp']} · PP {s['pp']}" in shown
        if not REFINED:
            assert app.query_one(TopLayouts).row_count == len(want.result["diagnostics"]["search_trace"]["top"])
        else:  # the refined table is the engine's Step 2 for the same inputs (what `lsdt plan` prints)
            layouts = want.refined["layouts"]
            assert tab.current.refined == want.refined
            table = app.query_one(RefinedLayouts)
            assert table.row_count == len(layouts) > 0
            first = [str(c) for c in table.get_row_at(0)]
            c = layouts[0]
            assert first[:3] == [f"{c['gpus']:,}", f"{c['dp']}x{c['tp']}x{c['pp']}", str(c["micro_batch"])]
            assert text_of(app.query_one("#refined-detail")) == refined_detail(layouts[0])
        assert app.failures == []


async def test_typing_tokens_recomputes(app_factory):
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await type_into(pilot, "#input-tokens", "1.5T")
        await settle(pilot)
        tab = app.query_one(PlanTab)
        assert tab.current.goal.tokens == 1.5e12
        want = engine_plan(tokens=1.5e12)
        assert tab.current.result["solution"]["G"] == want.result["solution"]["G"]
        assert f"G = {want.result['solution']['G']:,}" in text_of(app.query_one(ResultPanel))


async def test_bad_value_is_shown_next_to_its_field(app_factory):
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await type_into(pilot, "#input-eta_compute", "1.7")
        await settle(pilot)
        field = app.query_one("#field-eta_compute", FormField)
        assert field.has_class("-invalid")
        message = text_of(field.query_one(".field-error"))
        assert "eta_compute" in message and "(0, 1]" in message
        assert app.query_one(ResultPanel).has_class("-stale")
        assert app.query_one(PlanTab).current.eta_compute <= 1  # the last good plan stays, dimmed
        await type_into(pilot, "#input-eta_compute", "0.5")
        await settle(pilot)
        assert not field.has_class("-invalid")
        assert app.query_one(PlanTab).current.eta_compute == 0.5
        assert app.failures == []


async def test_engine_user_error_lands_on_the_batch_field(app_factory):
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await type_into(pilot, "#input-batch", "100")  # less than one 2048-token sequence
        await settle(pilot)
        field = app.query_one("#field-batch", FormField)
        assert field.has_class("-invalid")
        assert "global_batch_tokens" in text_of(field.query_one(".field-error"))


async def test_fixed_G_mode_and_no_solution(app_factory):
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+g")
        assert app.query_one("#mode-fixed", RadioButton).value
        await settle(pilot)
        assert app.query_one("#field-G", FormField).has_class("-invalid")  # fixed G needs a number
        await type_into(pilot, "#input-G", "8")
        await settle(pilot)
        tab = app.query_one(PlanTab)
        assert tab.current.G == 8
        want = Plan(model=tab.current.model, hardware=tab.current.hardware, goal=tab.current.goal, G=8).compute()
        assert tab.current.result["feasible"] == want.result["feasible"] is False
        shown = text_of(app.query_one(ResultPanel))
        assert "NO SOLUTION" in shown and want.result["no_solution_reason"]["constraint"] in shown
        await pilot.press("ctrl+g")
        await settle(pilot)
        assert tab.current.G is None and tab.current.result["feasible"]


async def test_hardware_search_and_arrow_keys(app_factory):
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await type_into(pilot, "#hardware-filter", "4090")
        await pilot.press("enter")
        await settle(pilot)
        tab = app.query_one(PlanTab)
        assert tab.current.hardware.name == "rtx4090"
        await type_into(pilot, "#model-filter", "gpt2")
        await pilot.press("down", "down")  # into the list, then the next entry
        await settle(pilot)
        assert tab.current.model.name == app.query_one("#model", ProfilePicker).spec.name
        assert tab.current.model.name.startswith("gpt2")


async def test_model_from_hf_config_path_and_bad_path(app_factory, tmp_path):
    cfg = tmp_path / "tiny" / "config.json"
    cfg.parent.mkdir()
    cfg.write_text(json.dumps({"model_type": "llama", "hidden_size": 512, "num_hidden_layers": 8,
                               "num_attention_heads": 8, "vocab_size": 32000, "max_position_embeddings": 1024,
                               "intermediate_size": 1408, "hidden_act": "silu"}))
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await type_into(pilot, "#model-filter", str(tmp_path / "missing.json"))
        await pilot.press("enter")
        await settle(pilot)
        picker = app.query_one("#model", ProfilePicker)
        assert picker.has_class("-invalid") and "no such file" in text_of(picker.query_one(".picker-error"))
        await type_into(pilot, "#model-filter", str(cfg))
        await pilot.press("enter")
        await settle(pilot)
        tab = app.query_one(PlanTab)
        assert not picker.has_class("-invalid")
        assert tab.current.model.d_model == 512 and tab.current.model.ffn == "swiglu"


async def test_pin_designs_side_by_side(app_factory):
    app = app_factory()
    async with app.run_test(size=(120, 35)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+t")
        await type_into(pilot, "#hardware-filter", "a100-80g-sxm")
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("ctrl+t")
        table = app.query_one(CompareTable)
        assert table.row_count == 2
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(2)]
        assert rows[0][2] == "h100-sxm" and rows[1][2] == "a100-80g-sxm"
        tab = app.query_one(PlanTab)
        assert rows[1][4] == f"{tab.current.result['solution']['G']:,}"
        # Enter on the first row restores that design into the form
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("enter")
        await settle(pilot)
        assert tab.current.hardware.name == "h100-sxm"
        await pilot.press("delete")
        assert table.row_count == 1


async def test_help_screen_and_palette_commands(app_factory):
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        from app.screens.help import HelpScreen

        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        app.query_one("#hardware-list").focus()
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in ("Plan: save plan", "Plan: open plan", "Plan: pin design", "Help", "Go to Plan"):
            assert title in titles


async def test_worker_failure_is_one_line_not_a_crash(app_factory, monkeypatch):
    def boom(self):
        raise RuntimeError("engine exploded\nsecond line")

    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        monkeypatch.setattr(Plan, "compute", boom)
        await type_into(pilot, "#input-tokens", "1T")
        for _ in range(50):
            await pilot.pause(0.02)
            await app.workers.wait_for_complete()
            if app.failures:
                break
        assert app.failures  # one line per failed computation ("1", then "1T" may both run)
        assert all(line == "PlanTab/plan-compute: RuntimeError: engine exploded" for line in app.failures)
        await settle(pilot)  # a failed computation still counts as answered: the tab is not stuck
        assert app.query_one(ResultPanel).has_class("-stale")
        assert app.is_running
