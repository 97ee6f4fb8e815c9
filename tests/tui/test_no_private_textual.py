"""The app imports no private Textual module (textual._x): they change without notice between
releases (issue 14: live_chart.py imported textual._context)."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"


def test_no_private_textual_imports():
    found = []
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in getattr(node, "names", [])] if isinstance(node, ast.Import) else []
            found += [f"{path.relative_to(APP.parent)}: {n}" for n in names if n.startswith("textual") and any(p.startswith("_") for p in n.split(".")[1:])]
    assert not found, found
