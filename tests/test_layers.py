"""The layers point down only: import-linter checks the contracts in pyproject.toml
([tool.importlinter]; the picture is docs/architecture.md). Beside the import-isolation tests
(tests/sizing/test_plan_cli.py, test_bands.py), which check what a fresh process loads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")


def lint_imports(*args: str) -> subprocess.CompletedProcess:
    assert LINT, "lint-imports is not installed (pip install -e '.[dev]' installs import-linter)"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([LINT, "--no-cache", *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)


def test_layer_contracts_are_kept():
    r = lint_imports()
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert " kept, 0 broken" in r.stdout


def test_a_broken_contract_fails_the_check(tmp_path):
    """The checker really looks: a contract the code breaks (the CLI imports the grammar) fails."""
    config = tmp_path / "contracts.toml"
    config.write_text('[tool.importlinter]\nroot_packages = ["engine", "app"]\n\n'
                      '[[tool.importlinter.contracts]]\nname = "a contract the code breaks"\ntype = "forbidden"\n'
                      'source_modules = ["engine.commands"]\nforbidden_modules = ["engine.inputs"]\n')
    r = lint_imports("--config", str(config))
    assert r.returncode != 0 and "BROKEN" in r.stdout, r.stdout[-2000:]
