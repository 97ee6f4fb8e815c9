"""End to end in a real terminal: the installed lsdt-tui trains from the Train tab (and is stopped
from it), and `lsdt-tui --monitor` watches a run another process writes and then abandons."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from engine.runtime.train import rundir
from tests.tui.test_tmux_e2e import installed_entry_point
from tests.tui_live.conftest import HERE
from tests.tui_live.test_train_tab import tiny_inputs

pytestmark = pytest.mark.tmux





def test_train_from_the_tui_then_stop(tmux, tmp_path):
    model, data = tiny_inputs(tmp_path)
    exe = installed_entry_point()
    tmux.run("new-session", "-d", "-s", tmux.name, "-x", "120", "-y", "36",
             f"cd {tmp_path} && LSDT_CACHE_DIR={tmp_path / 'cache'} TERM=xterm-256color {exe} --plans-dir {tmp_path / 'plans'}")
    tmux.wait_for("Train")
    tmux.keys("C-p")
    tmux.wait_for("Search for commands")
    tmux.keys("-l", "Go to Train")
    time.sleep(0.5)
    tmux.keys("Enter")
    tmux.wait_for("model (name or file)")
    # Tab order: model, depth, data, steps, ... Each typed value is seen on screen before the Tab
    # that leaves its field: keys that reach Textual in one chunk are read as a paste (the Tab is lost).
    for text, shown in ((str(model), "tiny.toml"), (None, None), (str(data), "corpus.txt"), ("5000", "5000")):
        if text:
            tmux.keys("-l", text)
            tmux.wait_for(shown)
        time.sleep(0.3)
        tmux.keys("Tab")
        time.sleep(0.3)
    tmux.keys("C-r")
    m = tmux.wait_re(r"step\s+([\d,]+)\s+loss (\d+\.\d{4})", timeout=90)
    assert float(m.group(2)) > 0
    tmux.keys("C-t")
    tmux.wait_re(r"ended: signal", timeout=60)
    runs = [d for d in (tmp_path / "runs").iterdir() if rundir.is_run_dir(d)]
    assert len(runs) == 1 and runs[0].name.endswith("-tiny")  # the default run dir: runs/<time>-<model file>
    run = runs[0]
    events = rundir.read_events(run)
    assert events[-1]["event"] == "end" and events[-1]["reason"] == "signal"
    assert rundir.list_checkpoints(run), "the graceful stop wrote a checkpoint"
    assert len(rundir.read_metrics(run)) >= 1
    tmux.keys("C-q")


def test_monitor_flag_follows_a_run_until_its_writer_dies(tmux, tmp_path):
    run = tmp_path / "ext"
    writer = subprocess.Popen([sys.executable, str(HERE / "run_writer.py"), str(run), "--rate", "20"])
    try:
        deadline = time.monotonic() + 20
        while not (run / rundir.METRICS_FILE).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        exe = installed_entry_point()
        tmux.run("new-session", "-d", "-s", tmux.name, "-x", "120", "-y", "36",
                 f"cd {tmp_path} && TERM=xterm-256color {exe} --monitor {run}")
        first = int(tmux.wait_re(r"step\s+([\d,]+)\s+loss", timeout=60).group(1).replace(",", ""))
        assert "running (pid" in tmux.capture()
        deadline = time.monotonic() + 30
        while True:  # the screen follows the new lines
            later = int(tmux.wait_re(r"step\s+([\d,]+)\s+loss").group(1).replace(",", ""))
            if later > first + 10 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert later > first + 10
        writer.kill()
        writer.wait()
        tmux.wait_re(r"gone: process_gone", timeout=30)
        final = int(tmux.wait_re(r"step\s+([\d,]+)\s+loss").group(1).replace(",", ""))
        assert final == rundir.read_metrics(run)[-1]["step"]  # the last line written is the last shown
        tmux.keys("C-q")
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
