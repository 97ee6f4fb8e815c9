"""engine.config_check: a config dataclass's fields against their annotations (hypothesis)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config_check import check_field_types
from engine.errors import UserError


@dataclass
class _Cfg:
    steps: int
    lr: float
    name: str
    flag: bool
    stages: list
    hours: float | None = None


_ANY = st.one_of(st.none(), st.booleans(), st.integers(-10, 10), st.floats(allow_nan=True, allow_infinity=True),
                 st.text(max_size=3), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))


@given(steps=_ANY, lr=_ANY, name=_ANY, flag=_ANY, stages=_ANY, hours=_ANY)
@settings(max_examples=400, deadline=None)
def test_accepts_exactly_the_annotated_types_with_finite_non_negative_numbers(steps, lr, name, flag, stages, hours):
    cfg = _Cfg(steps, lr, name, flag, stages, hours)

    def number_ok(v, integer):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            return False
        return math.isfinite(v) and v >= 0

    ok = (number_ok(steps, True) and number_ok(lr, False) and isinstance(name, str) and isinstance(flag, bool)
          and isinstance(stages, list) and (hours is None or number_ok(hours, False)))
    if ok:
        check_field_types(cfg, "c.toml")
    else:
        with pytest.raises(UserError) as info:
            check_field_types(cfg, "c.toml")
        assert str(info.value).startswith("c.toml: key '") and "accepted: " in str(info.value)
