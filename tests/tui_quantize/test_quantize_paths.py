"""Paths typed in the Quantize tab are relative to the directory lsdt-tui runs in, while the CLI
steps run in the repository's (found in tmux: from /tmp/x, checkpoint 'runs/RUN' failed with
'runs/RUN: no such checkpoint file or run directory', though the tab had just checked it exists)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Input

from app.tabs.quantize import QuantizeTab, plan_steps


def test_relative_checkpoint_and_out_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "r1" / "checkpoints").mkdir(parents=True)
    for out, where in (("", tmp_path / "runs" / "r1"), ("art/m.s7l", tmp_path / "art")):
        kind, steps = plan_steps("runs/r1", out, 8)
        assert kind == "dense"
        paths = [a for _, argv in steps for a in argv[4:] if "/" in a]
        assert paths and all(Path(p).is_absolute() for p in paths), paths
        assert Path(steps[0][1][4]) == tmp_path / "runs" / "r1"  # quantize's checkpoint argument
        assert Path(steps[1][1][-2]).parent == where  # seal --out


async def test_verify_takes_a_relative_file_from_the_tuis_directory(quantize_app, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.s7l").write_bytes(b"")
    ran: list = []
    monkeypatch.setattr(QuantizeTab, "run_steps", lambda self, kind, steps: ran.append(steps))
    app = quantize_app
    async with app.run_test(size=(140, 40)) as pilot:
        app.query_one("#q-file", Input).value = "m.s7l"
        app.query_one("#q-file", Input).focus()
        await pilot.press("enter")
        await pilot.pause()
        (name, argv), = ran[0]
        assert name == "verify" and Path(argv[4]) == tmp_path / "m.s7l"
