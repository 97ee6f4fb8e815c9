"""Fixtures of the live-tab tests: the app factory (cursor blink off, plans in tmp), a wait that
polls app state instead of sleeping, a probe file, and a stand-in trainer process writing a run
directory."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.app import make_app

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@pytest.fixture
def app_factory(tmp_path):
    plans = tmp_path / "plans"
    plans.mkdir(exist_ok=True)

    def make(**kwargs):
        kwargs.setdefault("plans_dir", plans)
        return make_app(cursor_blink=False, **kwargs)
    return make


async def wait_until(pilot, predicate, timeout_s: float = 20.0, what: str = "condition") -> None:
    """Let the app run (messages, timers, workers) until `predicate()` holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        if predicate():
            return
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def write_probe(path, hardware: str | None, device: str = "NVIDIA H100 80GB HBM3"):
    """A `lsdt probe` file: two ok depths (MFU 0.42 and 0.46, median 0.44) and one OOM."""
    probe = {"device": device, "hardware": hardware, "results": [
        {"depth": 12, "seq_len": 2048, "device_batch": 16, "tok_per_s": 4.1e5, "step_time_s": 0.08,
         "peak_vram_bytes": 5.1e10, "mfu": 0.42, "status": "ok"},
        {"depth": 14, "seq_len": 2048, "device_batch": 16, "tok_per_s": 3.2e5, "step_time_s": 0.1,
         "peak_vram_bytes": 6.0e10, "mfu": 0.46, "status": "ok"},
        {"depth": 20, "seq_len": 2048, "device_batch": None, "tok_per_s": None, "step_time_s": None,
         "peak_vram_bytes": None, "mfu": None, "status": "oom"}]}
    path.write_text(json.dumps(probe))
    return path


@pytest.fixture
def run_writer():
    """Start tests/tui_live/run_writer.py on a run directory; every process is killed at teardown."""
    procs: list[subprocess.Popen] = []

    def start(run_dir: Path, *args: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, str(HERE / "run_writer.py"), str(run_dir), *args], cwd=REPO)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
