"""Fixtures of the live-tab tests: the app factory (cursor blink off, plans in tmp), a wait that
polls app state instead of sleeping, and a stand-in trainer process writing a run directory."""

from __future__ import annotations

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
