"""`lsdt`: the scriptable CLI, thin over the engine.

Each subcommand lives in engine/commands/<name>.py with `add_arguments(parser)` and
`run(args) -> int`. Only the chosen subcommand's module is imported, so `lsdt plan` never pays
for torch (the runtime commands import it themselves, lazily).

Errors a user can cause raise `UserError`: printed as one line, exit code 2, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import signal
import sys

from engine import __version__
from engine.errors import UserError
from engine.flags import OneLineParser

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("engine.commands.plan", "size a cluster: fewest GPUs (or shortest run, lowest cost, a fixed G) and its layout, with $"),
    "predict": ("engine.commands.predict", "predict step time, MFU and memory of one layout (engineering model)"),
    "export": ("engine.commands.export", "export a saved plan's layout as Megatron-LM / torchtitan / torchrun config"),
    "bands": ("engine.commands.bands", "best model for one GPU in a time window: depth bands, FLOP envelope, curriculum"),
    "moe": ("engine.commands.moe", "MoE cluster sizing; `moe train` / `moe pipeline` run the two-phase MoE"),
    "train": ("engine.commands.train", "train a GPT locally (CPU, one GPU, or torchrun)"),
    "probe": ("engine.commands.probe", "measure tokens/s and peak VRAM per depth x sequence length"),
    "monitor": ("engine.commands.monitor", "show a run's latest metrics and the machine's GPU state"),
    "quantize": ("engine.commands.quantize", "INT8 per-row post-training quantization of a checkpoint"),
    "seal": ("engine.commands.seal", "pack quantized weights into a sealed, hash-verified .s7l file"),
    "verify": ("engine.commands.verify", "verify a sealed .s7l file"),
    "sparsity": ("engine.commands.sparsity", "activation sparsity lab: capture, sparse autoencoders, specialization, dynamic-k"),
}


def available_commands() -> dict[str, tuple[str, str]]:
    """The subcommands whose module is present in this build."""
    return {name: entry for name, entry in COMMANDS.items() if importlib.util.find_spec(entry[0]) is not None}


def build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="lsdt",
        description="LSDT: plan LLM training compute, then run it.",
        epilog="Run `lsdt COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"lsdt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name, (module, help_text) in available_commands().items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is: it unwinds like Ctrl-C, so every atomic write removes
    its temporary file (the default action killed the process and left `.NAME.*.tmp` behind)."""


def _terminate(signum: int, frame) -> None:
    raise Terminated(signum)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    # Commands that stop gracefully (train, probe, moe) install their own handler while they run.
    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    try:
        parser = build_parser(command)
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return 2
        return int(importlib.import_module(COMMANDS[args.command][0]).run(args) or 0)
    except UserError as exc:
        print(f"lsdt: error: {exc}", file=sys.stderr)
        return 2
    except Terminated:
        print("lsdt: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt as exc:  # a run stopped by a signal (engine.runtime.train.signals.Stopped) says which
        signum = getattr(exc, "signum", signal.SIGINT)
        print("lsdt: terminated (SIGTERM)" if signum == signal.SIGTERM else "lsdt: interrupted", file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:  # `lsdt ... | head`
        return 0
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
