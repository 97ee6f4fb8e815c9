"""The live tabs never import torch into the TUI process (training and probes are child processes)."""

from __future__ import annotations

import subprocess
import sys

from tests.tui_live.conftest import REPO

CHECK = """
import asyncio, sys
from app.app import make_app
async def main():
    app = make_app(cursor_blink=False, initial_tab="train")
    async with app.run_test(size=(120, 40)) as pilot:
        for tab in ("probe", "train", "monitor"):
            await app.show_tab(tab)  # built on first visit
            await pilot.pause(0.2)
        ids = {t.id for t in app.tabs}
        assert {"probe", "train", "monitor"} <= ids, ids
    print("torch" in sys.modules)
asyncio.run(main())
"""


def test_live_tabs_do_not_import_torch():
    out = subprocess.run([sys.executable, "-c", CHECK], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"
