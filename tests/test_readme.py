"""The README's two commands and .ci/run stay in sync."""

from __future__ import annotations

import re

from tests.conftest import REPO


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```bash\n# \d\. [^\n]*\n([^\n]+)\n```", text)


def test_readme_has_the_two_commands():
    install_and_start, install_and_test = _readme_commands()[:2]
    assert "torch==2.13.0" in install_and_start and install_and_start.rstrip().endswith("lsdt-tui")
    assert "torch==2.13.0" in install_and_test and "pytest" in install_and_test


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    test_step = _readme_commands()[1].split("&& pip install ", 1)[1]  # after the venv + activation
    assert "pip install -q torch==2.13.0" in ci
    pip_args, pytest_cmd = test_step.split(" && ", 1)
    assert pytest_cmd in ci and '-e ".[dev]"' in ci
