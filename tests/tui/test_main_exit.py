"""`lsdt-tui` exits non-zero when the app crashed (found in tmux: a tab that failed to import
printed its traceback and the shell saw exit 0, so a script or CI could not tell)."""

from __future__ import annotations

import app.app as app_module
from app.app import LsdtApp
from app.main import main


class _Crashing(LsdtApp):
    def on_mount(self) -> None:
        raise RuntimeError("boom")

    def run(self, **kwargs):
        return super().run(headless=True, **kwargs)


def test_a_crash_is_not_exit_0(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(app_module, "make_app", lambda **kw: _Crashing(plans_dir=tmp_path, only_tabs=("plan",)))
    assert main(["--plans-dir", str(tmp_path)]) == 1
