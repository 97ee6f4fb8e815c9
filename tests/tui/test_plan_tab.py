"""Pilot tests of the Plan tab: type, press keys, and compare what is shown with the engine."""

from __future__ import annotations

import json

from textual.widgets import Input, RadioButton

from app.tabs.plan import DEFAULT_HARDWARE, DEFAULT_MODEL, PlanTab
from app.widgets.form_field import FormField
from app.widgets.layouts_table import CompareTable, RefinedLayouts, refined_detail
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
        assert tab.current.answer() == want.answer() and want.answer().model == "engineering"
        a = want.answer()
        shown = text_of(app.query_one(ResultPanel))
        # One headline: the engineering model's (what `lsdt plan` prints as its result), the seed
        # model's answer one dim line below, labelled.
        assert f"G = {a.gpus:,}" in shown and app.query_one("#plan-result").border_title == "Result · engineering model"
        assert f"DP {a.dp} · TP {a.tp} · PP {a.pp}" in shown and f"mb {a.micro_batch}" in shown
        assert f"seed model: G = {want.result['solution']['G']:,} =" in shown
        assert f"G = {a.gpus:,}" in text_of(app.query_one("#plan-status"))
        layouts = want.refined["layouts"]  # the layouts table is the same Step 2 (#1 is the answer)
        assert tab.current.refined == want.refined
        table = app.query_one(RefinedLayouts)
        assert table.row_count == len(layouts) > 0
        first = [str(c) for c in table.get_row_at(0)]
        c = layouts[0]
        assert first[0] == f"{c['gpus']:,}" and first[1].startswith(f"{c['dp']}x{c['tp']}x{c['pp']}x{c['cp']}x{c['ep']}")
        assert first[2] == str(c["micro_batch"]) and first[3].endswith(f"/Z{c['zero']}")
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
        assert tab.current.answer() == want.answer()
        assert f"G = {want.answer().gpus:,}" in text_of(app.query_one(ResultPanel))


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


async def test_goal_refusals_land_on_their_field_from_the_errors_field(app_factory):
    """Fewer tokens than one global batch (was "1 steps") and a G typed as '161.' (was taken as 161)
    are marked at their field: the engine's UserError.field / the grammar's, not the message text."""
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await type_into(pilot, "#input-tokens", "21")
        await settle(pilot)
        field = app.query_one("#field-tokens", FormField)
        assert field.has_class("-invalid")
        assert "less than one global batch" in text_of(field.query_one(".field-error"))
        await type_into(pilot, "#input-tokens", "")
        await settle(pilot)
        assert not field.has_class("-invalid")
        assert app.failures == []


async def test_fixed_G_mode_and_no_solution(app_factory):
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        tab = app.query_one(PlanTab)
        auto_G = tab.current.answer().gpus
        await pilot.press("ctrl+g")
        assert app.query_one("#mode-fixed", RadioButton).value
        await settle(pilot)
        # Fixed G starts from the current answer (it was an error: "fixed-G mode needs a device count").
        assert app.query_one("#input-G", Input).value == str(auto_G) and tab.current.G == auto_G
        assert tab.current.answer().feasible
        await type_into(pilot, "#input-G", "2")
        await settle(pilot)
        assert tab.current.G == 2
        want = Plan(model=tab.current.model, hardware=tab.current.hardware, goal=tab.current.goal, G=2).compute()
        assert tab.current.answer() == want.answer() and not want.answer().feasible
        shown = text_of(app.query_one(ResultPanel))
        assert "NO SOLUTION" in shown and want.answer().constraint in shown
        assert "no solution" in text_of(app.query_one("#plan-status"))
        await type_into(pilot, "#input-G", "4099")  # prime, above the batch and the layer count: no split at all
        await settle(pilot)
        assert "NO SOLUTION (layout)" in text_of(app.query_one(ResultPanel))
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
        assert tab.current.model.name == "tiny"  # named after its directory, not model_type "llama"
        assert "seq 1,024 (HF config" in text_of(app.query_one(ResultPanel))


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
        assert rows[1][4] == f"{tab.current.answer().gpus:,}"  # the answer the header showed
        assert rows[1][11] == f"{tab.current.answer().gpu_hours:,.0f}" or rows[1][11].endswith("k")
        assert rows[1][12] != "-"  # a100-80g-sxm ships a dated list price
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
        assert all(line == "PlanTab/form-compute: RuntimeError: engine exploded" for line in app.failures)
        await settle(pilot)  # a failed computation still counts as answered: the tab is not stuck
        assert app.query_one(ResultPanel).has_class("-stale")
        assert app.is_running


async def test_seq_price_and_objective_fields(app_factory):
    app = app_factory()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        tab = app.query_one(PlanTab)
        await type_into(pilot, "#input-seq", "1024")
        await type_into(pilot, "#input-price", "2")
        await settle(pilot)
        assert tab.current.model.seq_len == 1024 and tab.current.answer().price_per_gpu_hour == 2
        assert "seq 1,024" in text_of(app.query_one(ResultPanel)) and "at $2/GPU-h" in text_of(app.query_one(ResultPanel))
        from textual.widgets import Select

        app.query_one("#objective", Select).value = "cost"
        await settle(pilot)
        want = Plan(model=tab.current.model, hardware=tab.current.hardware, goal=tab.current.goal,
                    objective="cost", price_per_gpu_hour=2).compute()
        assert tab.current.objective == "cost" and tab.current.answer() == want.answer()
        await type_into(pilot, "#input-tokens", "21")  # fewer tokens than one global batch
        await settle(pilot)
        assert app.query_one("#field-tokens", FormField).has_class("-invalid")
        assert "less than one global batch" in text_of(app.query_one("#field-tokens").query_one(".field-error"))
