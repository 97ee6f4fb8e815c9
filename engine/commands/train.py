"""`lsdt train`: train a GPT here (CPU or one GPU); for several GPUs run the same flags under
`torchrun --nproc-per-node N -m engine.runtime.train.loop`.

The flags and their defaults live in engine/runtime/train/config.py (shared with the trainer
process the TUI launches); torch is imported only once training starts.
"""

from __future__ import annotations

import argparse

from engine.runtime.train.config import add_arguments as _add_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    _add_arguments(p)


def run(args: argparse.Namespace) -> int:
    from engine.runtime.train.loop import run_from_args

    return run_from_args(args)
