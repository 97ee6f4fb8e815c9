"""The TUI while a run streams: keypress-to-screen latency and the TUI process's CPU.

Targets (issue #7): with a run streaming 20 metric lines per second, keypress-to-screen p95 < 50 ms
and the TUI process under 15 % of one core.

Setup, as a user would have it: a separate process (tests/tui_live/run_writer.py) appends 20
metrics lines/s to a run directory; the installed `lsdt-tui --monitor RUN_DIR` runs in a real
terminal (a private tmux server, 120x36) and watches it (3 live charts, events, the machine panel).
  * CPU: psutil's CPU time of the lsdt-tui process over a window (default 20 s), as % of one core.
  * Latency: a key is typed into the focused path field ("~", then Backspace, alternately) and
    the pane is captured in a loop until the change shows; the time from `send-keys` to the
    first capture that shows it. Each capture is a tmux subprocess (a few ms), so this is an
    upper bound of what a user sees.

    python benchmarks/tui_stream.py [--rate 20] [--window 20] [--keys 40]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def tmux(server: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", server, *args], capture_output=True, text=True, timeout=20).stdout


def wait_screen(server: str, predicate, timeout_s: float = 60.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        screen = tmux(server, "capture-pane", "-p", "-t", server)
        if predicate(screen):
            return screen
    raise SystemExit(f"timed out; screen:\n{screen}")


def find_tui(server: str) -> psutil.Process:
    shell = psutil.Process(int(tmux(server, "display", "-p", "-t", server, "#{pane_pid}").strip()))
    for p in [shell, *shell.children(recursive=True)]:
        try:
            if any("lsdt-tui" in part for part in p.cmdline()):
                return p
        except psutil.Error:
            continue
    raise SystemExit("lsdt-tui process not found")


def key_latencies(server: str, n: int) -> list[float]:
    """Seconds from send-keys to the first capture showing the change, for n keys."""
    out = []
    for i in range(n):
        typing = i % 2 == 0
        tmux(server, "send-keys", "-t", server, *(["-l", "~"] if typing else ["BSpace"]))
        k0 = time.perf_counter()
        wait_screen(server, (lambda s: "~" in s) if typing else (lambda s: "~" not in s), timeout_s=10)
        out.append(time.perf_counter() - k0)
        time.sleep(0.1)
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=float, default=20.0, help="metric lines per second")
    p.add_argument("--window", type=float, default=20.0, help="seconds of CPU measurement")
    p.add_argument("--keys", type=int, default=40, help="keypresses timed")
    args = p.parse_args()
    if not shutil.which("tmux"):
        raise SystemExit("needs tmux")
    exe = Path(sys.executable).parent / "lsdt-tui"
    tmp = Path(tempfile.mkdtemp(prefix="lsdt-stream-"))
    run = tmp / "run"
    server = f"lsdt-bench-{os.getpid()}"
    writer = subprocess.Popen([sys.executable, str(REPO / "tests/tui_live/run_writer.py"), str(run), "--rate", str(args.rate)])
    try:
        while not (run / "metrics.jsonl").exists():
            time.sleep(0.05)
        tmux(server, "new-session", "-d", "-s", server, "-x", "120", "-y", "36",
             f"cd {tmp} && TERM=xterm-256color {exe} --monitor {run}")
        wait_screen(server, lambda s: "running (pid" in s)
        tui = find_tui(server)
        time.sleep(3.0)  # past start-up: the steady state is what is measured
        c0, t0 = tui.cpu_times(), time.monotonic()
        lines0 = sum(1 for _ in open(run / "metrics.jsonl"))
        time.sleep(args.window)
        c1, t1 = tui.cpu_times(), time.monotonic()
        lines1 = sum(1 for _ in open(run / "metrics.jsonl"))
        cpu_pct = 100.0 * ((c1.user - c0.user) + (c1.system - c0.system)) / (t1 - t0)
        streamed = (lines1 - lines0) / (t1 - t0)

        latencies = key_latencies(server, args.keys)
        # Baseline on this same (shared) machine: the writer stops, the TUI sits on an ended run.
        writer.kill()
        writer.wait()
        wait_screen(server, lambda s: "gone" in s)
        time.sleep(2.0)
        idle_latencies = key_latencies(server, args.keys)
        capture = []
        for _ in range(20):
            c = time.perf_counter()
            tmux(server, "capture-pane", "-p", "-t", server)
            capture.append(time.perf_counter() - c)
    finally:
        tmux(server, "kill-server")
        writer.kill()
        writer.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    ms = [1e3 * v for v in latencies]
    idle = [1e3 * v for v in idle_latencies]
    print(f"lsdt-tui --monitor, a run streaming {streamed:.1f} metric lines/s (target rate {args.rate:g}), tmux 120x36")
    print(f"  TUI process CPU: {cpu_pct:.1f} % of one core over {args.window:g} s (target < 15 %)")
    print(f"  keypress-to-screen: p50 {statistics.median(ms):.1f} ms, p95 {pct(ms, 0.95):.1f} ms, max {max(ms):.1f} ms "
          f"over {len(ms)} keys (target p95 < 50 ms; includes one tmux capture, median {1e3 * statistics.median(capture):.1f} ms)")
    print(f"  same keys, same process, after the writer stopped (nothing streaming): p50 {statistics.median(idle):.1f} ms, "
          f"p95 {pct(idle, 0.95):.1f} ms, max {max(idle):.1f} ms")
    print(f"  machine: {platform.machine()}, {os.cpu_count()} CPUs (load avg {os.getloadavg()[0]:.2f}), Python {platform.python_version()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
