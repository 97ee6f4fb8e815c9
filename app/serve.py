"""`lsdt-tui --serve [--port N]`: the same app in a browser, through textual-serve (the Textual
team's own package). Each browser tab gets its own `lsdt-tui` process, started with this
interpreter and the same --plan / --plans-dir / --monitor.

Bound to localhost: the app reads and writes files and starts training processes as the user who
runs it, so it is not offered to the network (put an authenticating proxy in front to share it).
"""

from __future__ import annotations

import shlex
import socket
import sys

HOST = "localhost"
DEFAULT_PORT = 8000  # textual-serve's own default


def app_command(plan: str | None, plans_dir: str | None, monitor: str | None) -> str:
    """The command textual-serve runs per browser connection: this interpreter's lsdt-tui."""
    argv = [sys.executable, "-m", "app.main"]
    for flag, value in (("--plan", plan), ("--plans-dir", plans_dir), ("--monitor", monitor)):
        if value:
            argv += [flag, value]
    return shlex.join(argv)


def port_free(port: int) -> bool:
    """The port can be bound on localhost (checked first: textual-serve would print a traceback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def serve(command: str, port: int) -> None:
    """Serve until Ctrl+C."""
    from textual_serve.server import Server  # only here: the terminal app never loads aiohttp

    Server(command, host=HOST, port=port, title="LSDT").serve()
