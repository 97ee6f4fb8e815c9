"""The textual-free layer under the Plan tab: form parsing, saved-plan names and listing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.inputs import FormValues, form_from_plan, parse_duration_s, plan_from_form
from app.saved import describe, list_saved, plan_path, suggest_name
from engine.errors import UserError
from engine.plan import Plan
from engine.sizing.physics import default_goal
from engine.specs import Goal, load_hardware, load_model

MODEL, HW = load_model("llama-7b"), load_hardware("h100-sxm")


@pytest.mark.parametrize("text, seconds", [("30", 30 * 86400), ("36h", 36 * 3600), ("90 min", 5400),
                                           ("2w", 14 * 86400), ("1e6s", 1e6), ("1.5d", 1.5 * 86400)])
def test_durations(text, seconds):
    assert parse_duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "-1", "0h", "soon", "nan"])
def test_bad_durations(text):
    with pytest.raises(UserError):
        parse_duration_s(text)


def test_empty_fields_are_the_documented_defaults():
    result = plan_from_form(FormValues(), MODEL, HW)
    assert result.errors == {}
    assert result.plan.goal == default_goal(MODEL)


def test_every_wrong_field_is_reported_at_once():
    form = FormValues(tokens="lots", deadline="-3", batch="4.5", eta_compute="2", eta_fabric="0", fixed_G=True, G="")
    errors = plan_from_form(form, None, HW).errors
    assert set(errors) == {"tokens", "deadline", "batch", "eta_compute", "eta_fabric", "G", "model"}
    assert all("\n" not in m for m in errors.values())


def test_numbers_use_the_cli_grammar():
    form = FormValues(tokens="1.5T", batch="4M", fixed_G=True, G="1_024")
    plan = plan_from_form(form, MODEL, HW).plan
    assert (plan.goal.tokens, plan.goal.global_batch_tokens, plan.G) == (1.5e12, 4_000_000, 1024)


@settings(max_examples=60, deadline=None)
@given(tokens=st.floats(1e6, 1e14), deadline_s=st.floats(60, 1e8), batch=st.integers(4096, 2**24),
       eta_c=st.floats(0.01, 1.0), eta_f=st.floats(0.01, 1.0), G=st.one_of(st.none(), st.integers(1, 100_000)),
       precision=st.sampled_from(["bf16", "bf16-fp32grad"]))
def test_form_round_trip_is_exact(tokens, deadline_s, batch, eta_c, eta_f, G, precision):
    """A plan shown in the form and read back is the same plan (a reopened plan recomputes the same)."""
    plan = Plan(MODEL, HW, Goal(tokens, deadline_s, batch, precision), G=G, eta_compute=eta_c, eta_fabric=eta_f)
    once = plan_from_form(form_from_plan(plan), MODEL, HW, carried=plan).plan
    assert replace(once, efficiency_refined=None) == plan
    assert once.efficiency_refined is None  # the seed's eta_compute never sets the engineering model's eta_gemm
    assert plan_from_form(form_from_plan(once), MODEL, HW, carried=once).plan == once  # and it is stable


def test_new_fields_seq_gemm_price_objective():
    form = FormValues(seq="2048", eta_gemm="0.5", price="2.5", objective="cost")
    plan = plan_from_form(form, MODEL, HW).plan
    assert plan.model.seq_len == 2048 and plan.efficiency_refined.eta_gemm == 0.5
    assert (plan.price_per_gpu_hour, plan.objective, plan.price) == (2.5, "cost", 2.5)
    again = plan_from_form(form_from_plan(plan), plan.model, HW, carried=plan).plan
    assert again == plan and again.efficiency_refined == plan.efficiency_refined
    bad = plan_from_form(FormValues(seq="161.5", eta_gemm="2", price="-1", objective="cheap"), MODEL, HW).errors
    assert set(bad) == {"seq", "eta_gemm", "price", "objective"}


def test_plan_names(tmp_path):
    assert plan_path(tmp_path, "a-b_c.1") == tmp_path / "a-b_c.1.toml"
    assert plan_path(tmp_path, "x.toml") == tmp_path / "x.toml"
    for bad in ("", "../x", "a/b", ".hidden", "x" * 65, "sp ace"):
        with pytest.raises(UserError):
            plan_path(tmp_path, bad)
    plan = Plan(MODEL, HW, default_goal(MODEL), G=64)
    assert suggest_name(plan) == "llama-7b-h100-sxm-G64"
    plan_path(tmp_path, suggest_name(plan))  # a suggestion is always a valid name


def test_listing_shows_key_numbers_and_unreadable_files(tmp_path):
    plan = Plan(MODEL, HW, default_goal(MODEL)).compute()
    plan.save(tmp_path / "ok.toml")
    Plan(MODEL, HW, default_goal(MODEL), G=1).compute().save(tmp_path / "tiny.toml")
    (tmp_path / "bad.toml").write_text("not = [toml")
    rows = {r.name: r for r in list_saved(tmp_path)}
    a = plan.answer()  # the plan's one answer (the engineering model's), as its header showed
    assert rows["ok"].result.startswith(f"G {a.gpus} ") and rows["ok"].layout == f"{a.dp}x{a.tp}x{a.pp}"
    assert ("$" in rows["ok"].result) == (a.cost_usd is not None)
    best = plan.refined["layouts"][0]
    assert rows["ok"].refined.startswith(f"G {best['gpus']} = {best['dp']}x{best['tp']}x{best['pp']}")
    assert rows["tiny"].result.startswith("no solution: ") and rows["tiny"].mode == "G=1"
    assert rows["bad"].error and "invalid TOML" in rows["bad"].error
    assert list_saved(tmp_path / "absent") == []
    assert describe(tmp_path / "ok.toml").model == "llama-7b"
    old = Path(__file__).resolve().parents[1] / "sizing" / "data" / "plan-before-answer.toml"
    assert describe(old).result.endswith("(seed)")  # a file saved before [answer] says whose answer it holds


def test_opened_plans_keep_their_refined_efficiency_while_the_hardware_stays():
    from engine.sizing.efficiency import efficiency_for

    eff = efficiency_for(HW).with_(eta_gemm=0.5, source="probe")
    opened = Plan(MODEL, HW, default_goal(MODEL), efficiency_refined=eff)
    assert plan_from_form(form_from_plan(opened), MODEL, HW, carried=opened).plan == opened
    other = load_hardware("a100-80g-sxm")
    assert plan_from_form(form_from_plan(opened), MODEL, other, carried=opened).plan.efficiency_refined is None


def test_integer_fields_refuse_non_integer_text():
    """'G 161.' was taken as 161; an integer field takes integer text only (engine/inputs.py)."""
    result = plan_from_form(FormValues(fixed_G=True, G="161.", batch="4M."), MODEL, HW)
    assert result.plan is None
    assert "'161.'" in result.errors["G"] and "an integer" in result.errors["G"]
    assert "an integer" in result.errors["batch"]


def test_an_opened_plan_reads_as_typed():
    """Issue 17: opening a plan showed 260308992000 and 4194304 and turned "20 x params" into a
    fixed count. Defaults stay empty fields (their placeholders show); other counts read short."""
    from app.inputs import human_exact

    default = Plan(model=MODEL, hardware=HW, goal=default_goal(MODEL))
    form = form_from_plan(default)
    assert form.tokens == "" and form.batch == ""
    chosen = Plan(model=MODEL, hardware=HW, goal=default_goal(MODEL, tokens=300e9, global_batch_tokens=2_097_152))
    form = form_from_plan(chosen)
    assert form.tokens == "300B" and form.batch == "2_097_152"
    assert plan_from_form(form, MODEL, HW, carried=chosen).plan == chosen
    assert [human_exact(v) for v in (1.5e12, 2e6, 4096, 123_456_789)] == ["1.5T", "2M", "4_096", "123_456_789"]
