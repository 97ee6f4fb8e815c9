"""A newcomer's walk through the installed lsdt-tui in a real terminal, at 80x24 and 140x42
(issue 17): type into the Plan fields at full speed, save the plan, switch tabs by key, train a
tiny model on the CPU and stop it, open the saved plan again; then the captured screens are
checked: nothing lost (the typed values are there), nothing cut (no line wider than the
terminal, every tab's own words whole), nothing contradictory (a run that ran is not "not
started"; a stop is "stopped", not a crash)."""

from __future__ import annotations


import pytest

from tests.tui.test_tmux_e2e import installed_entry_point
from tests.tui.test_tmux_keys import field, wait_fields
from tests.tui_live.test_train_tab import tiny_inputs

pytestmark = [pytest.mark.tmux, pytest.mark.slow]

# What each tab shows whole at any size (its first words), by its F key.
TAB_WORDS = {"F3": "hardware", "F4": "trunk tok", "F5": "seq lengths", "F6": "model (name or file)",
             "F7": "recent runs", "F8": "checkpoint"}



def check_screen(screen: str, width: int) -> None:
    assert "Traceback" not in screen
    for line in screen.splitlines():
        assert len(line) <= width, line


@pytest.mark.parametrize("size", [(80, 24), (140, 42)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_newcomer_walk(tmux, tmp_path, size):
    width, height = size
    model, data = tiny_inputs(tmp_path)
    exe = installed_entry_point()
    # The short sleep: tmux sizes a detached window just after starting its command, and a resize
    # that lands while Textual starts is sometimes missed (the app then drew 80x24 in 140x42).
    tmux.run("new-session", "-d", "-s", tmux.name, "-x", str(width), "-y", str(height),
             f"sleep 0.5; cd {tmp_path} && LSDT_CACHE_DIR={tmp_path / 'cache'} TERM=xterm-256color {exe} --plans-dir {tmp_path / 'plans'}")
    check_screen(tmux.wait_for("FEASIBLE", timeout=60), width)
    assert len(tmux.capture().splitlines()[2]) == width  # the tab bar's rule spans the terminal: the app has its size

    # Plan: every goal field typed at full speed in one burst (search boxes and lists first).
    # batch -> seq -> precision -> best -> price -> η gemm -> η seed, then η fabric
    # At 80x24 the Goal box scrolls inside its border to the focused field, so the first three
    # are checked before the focus moves on to the η fields.
    tmux.keys("Tab", "Tab", "Tab", "Tab", "C-u", "300B", "Tab", "C-u", "21", "Tab", "C-u", "2M")
    wait_fields(tmux, {"tokens": "300B", "deadline": "21", "batch": "2M"})
    tmux.keys("Tab", "Tab", "Tab", "Tab", "Tab", "Tab", "C-u", "0.45", "Tab", "C-u", "0.8")
    wait_fields(tmux, {"η seed": "0.45", "η fabric": "0.8"})
    check_screen(tmux.wait_for("FEASIBLE"), width)
    tmux.keys("C-s")
    tmux.wait_for(".toml")
    tmux.keys("C-u", "walk", "Enter")
    tmux.wait_for("saved plans/walk.toml")
    assert (tmp_path / "plans" / "walk.toml").exists()

    # Every tab by its key: its own words show whole.
    for key, words in TAB_WORDS.items():
        tmux.keys(key)
        check_screen(tmux.wait_for(words), width)

    # Train a tiny model on the CPU, then stop it.
    tmux.keys("F6")
    tmux.wait_for("model (name or file)")
    tmux.keys("-l", str(model))
    tmux.wait_for("tiny.toml")
    tmux.keys("Tab", "Tab")
    tmux.keys("-l", str(data))
    tmux.wait_for("corpus.txt")
    tmux.keys("Tab", "C-u", "5000", "C-r")
    tmux.wait_re(r"step\s+[\d,]+\s+loss \d+\.\d{4}", timeout=120)
    tmux.keys("C-t")
    screen = tmux.wait_re(r"press resume \(ctrl\+y\)", timeout=90).string
    check_screen(screen, width)
    assert "--resume" not in screen  # the TUI says which key continues, not the CLI's flag
    assert "not started" not in screen and "did not start" not in screen
    assert "out-of-memory" not in screen and "✗" not in screen

    # Back to Plan by key; open the saved plan: the form reads as it was typed.
    tmux.keys("F2")
    tmux.wait_for("FEASIBLE")
    tmux.keys("C-u", "999", "C-o")  # a change after saving, which opening the plan replaces
    tmux.wait_for("walk")
    tmux.keys("Enter")
    screen = wait_fields(tmux, {"tokens": "300B", "deadline": "21", "batch": "2M"})
    check_screen(screen, width)
    tmux.keys(*["Tab"] * 13)  # from the hardware search to η fabric: the Goal box shows it
    check_screen(wait_fields(tmux, {"η seed": "0.45", "η fabric": "0.8"}), width)
    tmux.keys("C-q")
