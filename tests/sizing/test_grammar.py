"""engine/inputs.py, the one grammar for what users type (CLI flags and TUI fields alike)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import inputs
from engine.errors import UserError


@pytest.mark.parametrize("text, value", [("161", 161), ("2k", 2000), ("1e6", 10**6), ("1.5k", 1500), ("1_000", 1000),
                                         (" 4M ", 4 * 10**6), ("2147483647", 2**31 - 1)])
def test_integer_text(text, value):
    assert inputs.positive_int(text) == value


@pytest.mark.parametrize("text", ["161.", "161.0", "1.5", "2.5e0", "0", "-3", "1e308", "nan", "inf", "0x10", "", "k", "2147483648"])
def test_non_integer_or_out_of_range_text_is_refused_naming_the_field(text):
    with pytest.raises(UserError) as exc:
        inputs.positive_int(text, "--steps")
    assert exc.value.field == "--steps"
    assert str(exc.value).startswith(f"--steps {text!r}: accepted: an integer")


@pytest.mark.parametrize("parse, text, accepted", [
    (inputs.threads, "1025", "[1, 1,024]"), (inputs.steps, "1e308", "[1, 1,000,000,000]"),
    (inputs.grad_accum, "10001", "[1, 10,000]"), (inputs.seed, "-1", "[0, 2^63)"),
    (inputs.seconds, "1e308", "(0, 3.6e+09]"), (inputs.hours, "nan", "hours, or a number with a unit s/min/h/d/w, up to 1e+06 h"),
    (inputs.fraction, "1e-9", "at least 1e-06"), (inputs.gigabytes, "nan", "GB >= 0"),
    (inputs.positive_float, "inf", "a finite number > 0"), (inputs.non_negative_float, "-0.1", "a finite number >= 0"),
])
def test_each_range_is_stated_in_the_refusal(parse, text, accepted):
    with pytest.raises(UserError, match="accepted") as exc:
        parse(text, "field")
    assert accepted in str(exc.value) and exc.value.field == "field"


def test_without_a_field_the_message_starts_with_the_text_as_typed():
    """argparse names the flag itself ('argument --tokens: ...'): the message must not repeat it."""
    with pytest.raises(UserError) as exc:
        inputs.positive_float("abcK")
    assert str(exc.value).startswith("'abcK': accepted") and exc.value.field is None


@pytest.mark.parametrize("text, seconds", [("30", 30 * 86400), ("36h", 36 * 3600), ("90 min", 5400), ("2w", 14 * 86400)])
def test_durations(text, seconds):
    assert inputs.duration_s(text, "deadline") == pytest.approx(seconds)


@pytest.mark.parametrize("text, hours", [("24", 24), ("36h", 36), ("2d", 48), ("90 min", 1.5), ("1w", 168)])
def test_every_time_field_reads_one_duration_grammar_a_bare_number_in_its_own_unit(text, hours):
    """--hours / the Bands window (bare = hours), --days / the Plan deadline (bare = days): '36h'
    means 36 hours in each (the Bands tab refused it while the Plan tab took it)."""
    assert inputs.hours(text, "hours") == pytest.approx(hours)
    bare_days = float(text) if text.replace(".", "").isdigit() else hours / 24
    assert inputs.days(text, "days") == pytest.approx(bare_days)
    assert inputs.duration_s(text, "deadline") == pytest.approx(bare_days * 86400)


@pytest.mark.parametrize("text", ["1e308", "1e308h", "h", "-2d", "soon"])
def test_bad_durations_name_the_field(text):
    with pytest.raises(UserError) as exc:
        inputs.duration_s(text, "deadline")
    assert exc.value.field == "deadline"


def test_lists():
    assert inputs.int_list("12, 14,16") == [12, 14, 16]
    assert inputs.token_list("20e9,15B") == [20e9, 15e9]
    for bad in ("", "a,b", "0,1", "12,1.5"):
        with pytest.raises(UserError, match="comma-separated integers"):
            inputs.int_list(bad, "--depths")
    with pytest.raises(UserError, match="token counts"):
        inputs.token_list("1,-2")


@given(st.text(max_size=12))
def test_any_text_is_a_value_or_one_line_user_error(text):
    for parse in (inputs.positive_int, inputs.positive_float, inputs.fraction, inputs.seconds, inputs.curriculum,
                  inputs.int_list, inputs.duration_s, inputs.seed):
        try:
            parse(text, "f")
        except UserError as exc:
            assert "\n" not in str(exc) and exc.field == "f"
