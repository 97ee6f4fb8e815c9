"""The fault-injection suite (issue 16): every test here is marked `faults` (CI runs them with the rest;
`pytest -m faults` runs only them). Tiny models, few steps: each test takes seconds."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/faults/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.faults)
