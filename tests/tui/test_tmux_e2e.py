"""End to end: the INSTALLED `lsdt-tui` entry point in a real terminal (tmux), driven by keys."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from engine.plan import load_plan

pytestmark = pytest.mark.tmux


def installed_entry_point() -> str:
    """.venv/bin/lsdt-tui (next to this interpreter), else whatever is on PATH."""
    candidate = Path(sys.executable).parent / "lsdt-tui"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("lsdt-tui")
    if not found:
        pytest.skip("lsdt-tui is not installed (pip install -e .)")
    return found


class Tmux:
    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, *args: str) -> str:
        # A private server (-L): another tmux on the machine, with its own options, cannot resize us.
        return subprocess.run(["tmux", "-L", self.name, *args], capture_output=True, text=True, timeout=20).stdout

    def capture(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name)

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.name, *keys)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; screen:\n{screen}")

    def wait_re(self, pattern: str, timeout: float = 60.0) -> re.Match:
        """The first match of `pattern` on the screen (match.string is that screen)."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            m = re.search(pattern, screen)
            if m:
                return m
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} never appeared; screen:\n{screen}")

    def alive(self) -> bool:
        return subprocess.run(["tmux", "-L", self.name, "has-session", "-t", self.name], capture_output=True).returncode == 0


def test_installed_tui_saves_a_plan(tmux, tmp_path):
    plans = tmp_path / "plans"
    exe = installed_entry_point()
    # A clean environment apart from what a terminal needs; the plans directory by flag.
    command = f"cd {tmp_path} && TERM=xterm-256color {exe} --plans-dir {plans}"
    tmux.run("new-session", "-d", "-s", tmux.name, "-x", "120", "-y", "35", command)
    tmux.wait_for("FEASIBLE")
    tmux.keys("C-s")
    tmux.wait_for("llama-13b-h100-sxm.toml")  # the dialog is up, its suggested name selected
    tmux.keys("-l", "from-tmux")  # typing replaces the selected suggestion
    tmux.wait_for("from-tmux.toml")
    tmux.keys("Enter")
    path = plans / "from-tmux.toml"
    deadline = time.monotonic() + 20
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert path.exists(), tmux.capture()
    doc = tomllib.loads(path.read_text())
    assert doc["model"]["name"] == "llama-13b" and doc["hardware"]["name"] == "h100-sxm"
    assert doc["result"]["feasible"] is True
    plan = load_plan(path)
    assert plan.compute().result["solution"]["G"] == doc["result"]["G"]
    screen = tmux.wait_for("saved plans/from-tmux.toml")  # the status line says where it went
    assert len(screen.splitlines()[0]) <= 120 and "Traceback" not in screen
    tmux.keys("C-q")
    deadline = time.monotonic() + 10
    while tmux.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tmux.alive()


def test_installed_tui_rejects_a_bad_plan_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("G = 'many'\n")
    out = subprocess.run([installed_entry_point(), "--plan", str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.startswith("lsdt-tui: error: ") and out.stderr.count("\n") == 1
    assert "Traceback" not in out.stderr and out.stdout == ""
