"""Type checks of a config dataclass read back from a file (config.toml, moe.toml).

A run's saved config is re-read on --resume and by later phases; a hand-edited value of the wrong
type (lr = "x") used to surface as a TypeError deep inside torch. Each field is checked against its
annotation, and every number must be finite and >= 0 (no field of a training config is negative).
Value ranges beyond that stay with the code that resolves the flags.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

from engine.errors import UserError

_TYPES = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
          "dict": "a table", "list": "a list"}


def _matches(value: Any, kind: str) -> bool:
    if kind == "None":
        return value is None
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "dict":
        return isinstance(value, dict)
    if kind == "list":
        return isinstance(value, list)
    return True  # an annotation this checker does not know: left to the code that uses it


def check_field_types(cfg: Any, where: str) -> None:
    """UserError naming `where`, the key and what is accepted, for the first field that is wrong."""
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        kinds = [k.strip() for k in str(f.type).split("|")]
        if not any(_matches(value, k) for k in kinds):
            accepted = " or ".join(_TYPES.get(k, "nothing" if k == "None" else k) for k in kinds if k != "None")
            raise UserError(f"{where}: key '{f.name}' = {value!r}; accepted: {accepted}")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not (math.isfinite(value) and value >= 0):
            raise UserError(f"{where}: key '{f.name}' = {value!r}; accepted: a finite number >= 0")


def config_from_dict(cls: type, raw: dict, where: str, what: str, prepare=None) -> Any:
    """A config dataclass from a file's table: unknown keys and missing fields are one-line errors
    naming `where`, then every field's type is checked. `prepare(cfg)` runs between (it may check
    or normalise the [model] table, raising UserError; a TypeError there is a missing field too)."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise UserError(f"{where}: unknown key '{unknown[0]}' in the {what}; accepted keys: {', '.join(sorted(names))}")
    try:
        cfg = cls(**raw)
        if prepare is not None:
            prepare(cfg)
    except TypeError as exc:
        raise UserError(f"{where}: incomplete {what} ({exc})") from None
    check_field_types(cfg, where)
    return cfg
