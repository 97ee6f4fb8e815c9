"""Launch -> first frame of `lsdt-tui` in a real terminal (tmux), against a minimal Textual app
launched the same way. Target (issue #5): lsdt-tui <= 1.3 x the minimal app.

Both start with the venv's Python in a fresh detached tmux session (120x35, private server) and
the clock stops when capture-pane first shows the app's text: "LSDT" (lsdt-tui's header) or the
minimal app's one Static. Runs alternate between the two; medians are compared. The time to the
first computed plan ("FEASIBLE" on screen) is reported too.

    python benchmarks/tui_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MINIMAL_APP = """
from textual.app import App
from textual.widgets import Static


class Minimal(App):
    def compose(self):
        yield Static("MINIMAL-READY")


Minimal().run()
"""


def tmux(sock: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True).stdout


def time_to_text(command: str, markers: list[str], timeout_s: float = 30.0) -> list[float]:
    """Seconds from launching `command` in tmux until each marker is on screen (in order)."""
    sock = f"lsdt-bench-{os.getpid()}-{time.monotonic_ns()}"
    found: list[float] = []
    t0 = time.perf_counter()
    tmux(sock, "new-session", "-d", "-x", "120", "-y", "35", command)
    try:
        while len(found) < len(markers) and time.perf_counter() - t0 < timeout_s:
            if markers[len(found)] in tmux(sock, "capture-pane", "-p"):
                found.append(time.perf_counter() - t0)
                continue
            time.sleep(0.002)
    finally:
        tmux(sock, "kill-server")
    if len(found) < len(markers):
        raise SystemExit(f"timed out waiting for {markers[len(found)]!r} from: {command}")
    return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args()
    bin_dir = Path(sys.executable).parent
    lsdt_tui = bin_dir / "lsdt-tui"
    if not lsdt_tui.exists():
        raise SystemExit(f"{lsdt_tui} not found: pip install -e . first")
    work = Path(tempfile.mkdtemp())
    minimal = work / "minimal_app.py"
    minimal.write_text(MINIMAL_APP)
    env = "TERM=xterm-256color"
    minimal_cmd = f"cd {work} && {env} {sys.executable} {minimal}"
    lsdt_cmd = f"cd {work} && {env} {lsdt_tui} --plans-dir {work / 'plans'}"
    time_to_text(minimal_cmd, ["MINIMAL-READY"])  # warm the page cache for both before timing
    time_to_text(lsdt_cmd, ["LSDT"])
    t_min, t_lsdt, t_plan = [], [], []
    for _ in range(args.runs):
        t_min += time_to_text(minimal_cmd, ["MINIMAL-READY"])
        first, feasible = time_to_text(lsdt_cmd, ["LSDT", "FEASIBLE"])
        t_lsdt.append(first)
        t_plan.append(feasible)
    m_min, m_lsdt, m_plan = (statistics.median(x) for x in (t_min, t_lsdt, t_plan))
    ratio = m_lsdt / m_min
    print(f"launch -> first frame in tmux 120x35, median of {args.runs} (load average {os.getloadavg()[0]:.1f})")
    print(f"  minimal Textual app   {m_min * 1e3:7.0f} ms   (runs: {', '.join(f'{t * 1e3:.0f}' for t in t_min)})")
    print(f"  lsdt-tui              {m_lsdt * 1e3:7.0f} ms   (runs: {', '.join(f'{t * 1e3:.0f}' for t in t_lsdt)})")
    print(f"  lsdt-tui first plan   {m_plan * 1e3:7.0f} ms   (FEASIBLE on screen)")
    print(f"  ratio {ratio:.2f} x   target <= 1.3 x: {'OK' if ratio <= 1.3 else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
