"""`lsdt-tui`: the planning workspace. `lsdt-tui --plan FILE` opens a saved plan; `lsdt-tui
--serve [--port N]` serves the same app to a browser on localhost (app/serve.py).

A bad --plan file is reported before the screen opens: one line on stderr, exit 2, no traceback
(the same contract as `lsdt`).
"""

from __future__ import annotations

import argparse
import sys

from engine import __version__
from engine.errors import UserError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = _Parser(prog="lsdt-tui", description="LSDT planning workspace (terminal UI).")
    p.add_argument("--version", action="version", version=f"lsdt-tui {__version__}")
    p.add_argument("--plan", metavar="FILE", help="open a saved plan (TOML written by lsdt-tui or `lsdt plan --save`)")
    p.add_argument("--plans-dir", metavar="DIR", help="where plans are saved and listed (default: $LSDT_PLANS_DIR or ./saved_plans)")
    p.add_argument("--monitor", metavar="RUN_DIR", help="open the Monitor tab attached to this run directory")
    p.add_argument("--serve", action="store_true", help="serve the app to a web browser (textual-serve), on localhost only")
    p.add_argument("--port", type=_port, metavar="N", help="with --serve: the port (default 8000)")
    args = p.parse_args(argv)
    if args.port is not None and not args.serve:
        p.error("--port goes with --serve")
    return args


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: accepted: a TCP port, an integer 1-65535")
    return port


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    plan = None
    if args.plan:
        from engine.plan import load_plan

        try:
            plan = load_plan(args.plan)
        except UserError as exc:
            print(f"lsdt-tui: error: {exc}", file=sys.stderr)
            return 2
    if args.monitor:
        from engine.runtime.monitor.runs import open_run

        try:
            open_run(args.monitor)  # any run the Monitor reads (LSDT, TensorBoard, HF Trainer, Lightning, CSV/JSONL)
        except UserError as exc:
            print(f"lsdt-tui: error: --monitor {exc}", file=sys.stderr)
            return 2
    if args.serve:
        from app.serve import DEFAULT_PORT, app_command, port_free, serve

        port = args.port or DEFAULT_PORT
        if not port_free(port):
            print(f"lsdt-tui: error: --port {port}: already in use on localhost; accepted: a free port (--port N)",
                  file=sys.stderr)
            return 2
        serve(app_command(args.plan, args.plans_dir, args.monitor), port)
        return 0
    from app.app import make_app  # after argument checks: `--help` and bad files answer without loading Textual

    app = make_app(plan=plan, plans_dir=args.plans_dir, monitor=args.monitor)  # opens on the Monitor tab
    result = app.run()
    if app.return_code:  # the app crashed (Textual has printed the traceback): not a success
        return app.return_code
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
