"""Argument types and option groups shared by the subcommands."""

from __future__ import annotations

import json
import sys

# The argument types are the input grammar's (engine/inputs.py) through argparse (engine/flags.py);
# re-exported here for the subcommands.
from engine.flags import (  # noqa: F401
    days, fraction, hours, non_negative_float, non_negative_int, path_arg, positive_float, positive_int, seconds, seed,
)
from engine.inputs import MAX_HOURS, MIN_FRACTION, SEED_LIMIT  # noqa: F401


def print_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, allow_nan=False, default=str)
    sys.stdout.write("\n")
