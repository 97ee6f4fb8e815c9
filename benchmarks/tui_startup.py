"""Launch -> first frame of `lsdt-tui` in a real terminal (tmux), against a minimal Textual app
launched the same way. Target (issue #5): lsdt-tui <= 1.3 x the minimal app.

Every app starts with the venv's Python in a fresh detached tmux session (120x35, private server)
and the clock stops when capture-pane first shows the app's text. Runs interleave the apps, so
drift in machine load hits them alike; medians are compared. Timed apps:

  minimal        one Static: the reference of the target
  floor: shell   Textual's Header + a 7-pane TabbedContent (the tabs the workspace has), one Static
  floor: controls  the shell + the Plan tab's interactive widgets, bare: two search Inputs with
                 OptionLists of 10 and 19 entries (hardware, models), six one-line Inputs (the goal
                 fields), a Select (precision), a RadioSet of two (auto-size / fixed G); no labels,
                 no containers, no LSDT code, nothing computed
  lsdt-tui       the clock stops at "LSDT" (its header) and again at "FEASIBLE" (the first plan)

The floor apps hold only Textual's own widgets: what any implementation of the Plan tab's first
screen pays before it adds a label, a number or a plan.

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

# Python's default bytecode caching for every app timed (this sandbox exports PYTHONDONTWRITEBYTECODE=1,
# which would recompile lsdt's ~30 editable-install modules at every launch while Textual's were
# byte-compiled by pip at install; a user's machine caches both). The warm-up runs write the cache.
ENV = "env -u PYTHONDONTWRITEBYTECODE TERM=xterm-256color"

REFERENCE_APP = """
import sys
from textual.app import App
from textual.widgets import Static

LEVEL = sys.argv[1]


class Reference(App):
    def compose(self):
        if LEVEL == "minimal":
            yield Static("REFERENCE-READY")
            return
        from textual.widgets import Header, Input, OptionList, RadioButton, RadioSet, Select, TabbedContent, TabPane

        yield Header()
        with TabbedContent():
            for i in range(7):
                with TabPane(f"Tab {i}"):
                    if i:
                        continue
                    yield Static("REFERENCE-READY")
                    if LEVEL == "controls":
                        for n in (10, 19):
                            yield Input(compact=True)
                            yield OptionList(*(f"entry {k}" for k in range(n)), compact=True)
                        for _ in range(6):
                            yield Input(compact=True)
                        yield Select([("bf16", "bf16"), ("bf16-fp32grad", "bf16-fp32grad")], value="bf16",
                                     allow_blank=False, compact=True)
                        with RadioSet(compact=True):
                            yield RadioButton("auto-size", value=True)
                            yield RadioButton("fixed G")


Reference().run()
"""

REFERENCE_LEVELS = ("minimal", "shell", "controls")


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
    lsdt_tui = Path(sys.executable).parent / "lsdt-tui"
    if not lsdt_tui.exists():
        raise SystemExit(f"{lsdt_tui} not found: pip install -e . first")
    work = Path(tempfile.mkdtemp())
    reference = work / "reference_app.py"
    reference.write_text(REFERENCE_APP)
    apps = {level: (f"cd {work} && {ENV} {sys.executable} {reference} {level}", ["REFERENCE-READY"])
            for level in REFERENCE_LEVELS}
    apps["lsdt-tui"] = (f"cd {work} && {ENV} {lsdt_tui} --plans-dir {work / 'plans'}", ["LSDT", "FEASIBLE"])
    for command, markers in apps.values():
        time_to_text(command, markers)  # warm the page and bytecode caches
    times: dict[str, list[list[float]]] = {name: [] for name in apps}
    for _ in range(args.runs):
        for name, (command, markers) in apps.items():
            times[name].append(time_to_text(command, markers))
    median = {name: statistics.median(run[0] for run in runs) for name, runs in times.items()}
    base = median["minimal"]
    labels = {"minimal": "minimal Textual app", "shell": "floor: Header + tabs", "controls": "floor: + Plan controls",
              "lsdt-tui": "lsdt-tui"}
    print(f"launch -> first frame in tmux 120x35, median of {args.runs} (load average {os.getloadavg()[0]:.1f})")
    for name, label in labels.items():
        runs = ", ".join(f"{run[0] * 1e3:.0f}" for run in times[name])
        print(f"  {label:<24} {median[name] * 1e3:5.0f} ms  {median[name] / base:4.2f} x   (runs: {runs})")
    first_plan = statistics.median(run[1] for run in times["lsdt-tui"])
    print(f"  lsdt-tui first plan      {first_plan * 1e3:5.0f} ms            (FEASIBLE on screen)")
    ratio = median["lsdt-tui"] / base
    print(f"  ratio {ratio:.2f} x   target <= 1.3 x: {'OK' if ratio <= 1.3 else 'OVER'}"
          f"   (lsdt-tui / floor with the Plan controls: {median['lsdt-tui'] / median['controls']:.2f} x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
