"""argparse over the input grammar (engine/inputs.py): the one-line parser and the flag types.

Used by the CLI (engine/cli.py, engine/commands/) and by the runtime's own `python -m` entry
points (the trainer, a MoE job), which parse the same flags without importing the CLI layer.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from engine import inputs
from engine.errors import UserError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage dump) and exits 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def flag_type(parse: Callable, **limits) -> Callable[[str], object]:
    """An argparse `type=` from a grammar parser: its UserError becomes argparse's one-line
    'argument --flag: ...' error (argparse names the flag, so the message does not repeat it)."""

    def convert(text: str):
        try:
            return parse(text, None, **limits)
        except UserError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__  # argparse names the type in some of its own messages
    convert.grammar = parse  # which grammar parser a flag uses (tests/sizing/test_bad_input.py sweeps them)
    return convert


positive_int = flag_type(inputs.positive_int)
non_negative_int = flag_type(inputs.non_negative_int)
positive_float = flag_type(inputs.positive_float)
non_negative_float = flag_type(inputs.non_negative_float)
fraction = flag_type(inputs.fraction)
hours = flag_type(inputs.hours)
days = flag_type(inputs.days)
seconds = flag_type(inputs.seconds)
seed = flag_type(inputs.seed)
threads = flag_type(inputs.threads)
steps = flag_type(inputs.steps)
grad_accum = flag_type(inputs.grad_accum)
path_arg = flag_type(inputs.path)
depth_list = flag_type(inputs.int_list)
token_list = flag_type(inputs.token_list)
share_below_one = flag_type(inputs.share_below_one)
gigabytes = flag_type(inputs.gigabytes)
