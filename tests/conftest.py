"""Shared test fixtures. Area-specific fixtures live in each tests/<area>/conftest.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# ../shared next to the checkout (tests may read it; the product never does).
SHARED = Path(os.environ.get("LSDT_SHARED", REPO.parent / "shared"))


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    """GPU tests are skipped without a GPU (never faked); tmux tests without tmux; browser tests
    without Chromium (an OS package: `apt-get install chromium`)."""
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU; none on this machine")
    skip_tmux = pytest.mark.skip(reason="needs tmux on PATH")
    skip_browser = pytest.mark.skip(reason="needs chromium on PATH (apt-get install chromium)")
    has_tmux = shutil.which("tmux") is not None
    has_browser = shutil.which("chromium") is not None
    gpu = None
    for item in items:
        if "gpu" in item.keywords:
            if gpu is None:
                gpu = _has_cuda()
            if not gpu:
                item.add_marker(skip_gpu)
        if "tmux" in item.keywords and not has_tmux:
            item.add_marker(skip_tmux)
        if "browser" in item.keywords and not has_browser:
            item.add_marker(skip_browser)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared/ not found at {SHARED}")
    return SHARED


def run_lsdt(*args: str, timeout: float = 60, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the CLI as a user would: a subprocess, text output."""
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd or REPO,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def tmux(request):
    """A tmux session on a private server (tests/tui/test_tmux_e2e.Tmux), killed after the test."""
    import time

    from tests.tui.test_tmux_e2e import Tmux

    module = request.node.module.__name__.rsplit(".", 1)[-1]
    session = Tmux(f"lsdt-{module}-{os.getpid()}-{time.monotonic_ns() % 10**9}")
    yield session
    if session.alive():
        session.run("kill-server")


@pytest.fixture
def lsdt():
    return run_lsdt
