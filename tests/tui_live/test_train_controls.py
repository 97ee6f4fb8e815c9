"""The Train tab's controls, found wrong driving lsdt-tui in tmux.

"train" again after a run: the run dir the tab picked itself (and wrote into the empty field)
means "a new default run", not "that run dir" (found in tmux: the second ctrl+r was refused with
'run dir runs/...-tiny already holds a run' until the user cleared a field they never filled).
No trainer is started: `_launch` is replaced by a stand-in that writes the run dir's events file."""

from __future__ import annotations

import itertools

from textual.widgets import Input

import app.tabs.train as train_module
from app.tabs.train import TrainTab


async def test_train_again_picks_a_new_run_dir_but_keeps_a_typed_one(app_factory, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = itertools.count(1)
    monkeypatch.setattr(train_module, "default_run_dir", lambda form: f"runs/run-{next(names)}")
    launched: list = []

    def fake_launch(self, args, run_dir, resume):
        run_dir.mkdir(parents=True)
        (run_dir / "events.jsonl").write_text("")  # the run exists now, as after a real run
        self.run_dir = run_dir
        launched.append(run_dir)

    monkeypatch.setattr(TrainTab, "_launch", fake_launch)
    app = app_factory(initial_tab="train", only_tabs=("train",))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        field = app.query_one("#train-run_dir", Input)
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert [p.name for p in launched] == ["run-1"] and field.value.endswith("run-1")
        await pilot.press("ctrl+r")  # the field still shows runs/run-1, which the tab picked
        await pilot.pause()
        assert [p.name for p in launched] == ["run-1", "run-2"] and field.value.endswith("run-2")
        field.value = "runs/run-1"  # typed by the user: that run dir, refused since it holds a run
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert len(launched) == 2
        assert "already holds a run" in str(app.query_one("#train-status").content)


class _Running:
    """A stand-in child process that is still running."""

    pid = 0

    def poll(self):
        return None


async def test_force_stop_label_is_not_clipped(app_factory):
    """After the first stop the button reads 'force stop' (found in tmux: it read 'forc', the
    width of 'stop' plus its padding: a Button's new label does not resize it)."""
    app = app_factory(initial_tab="train", only_tabs=("train",))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        tab = app.query_one(TrainTab)
        tab.proc, tab.stopping = _Running(), True
        tab.buttons()
        await pilot.pause()
        stop = app.query_one("#train-stop")
        assert str(stop.label) == "force stop"
        assert stop.content_region.width >= len("force stop")
        tab.proc = None  # nothing to stop at teardown


async def test_a_trainer_error_is_readable_whole_at_100_columns(app_factory):
    """The trainer's one-line error ends in its reason; the one-row status line cut it at 100
    columns ('lsdt train: error: unknown'), so it is also a notification, which wraps."""
    from app.child import ChildExited
    from app.tabs.train import OWNER

    error = ("lsdt train: error: unknown model profile 'nope'; known: gpt2-124m, gpt2-1558m, llama-13b, "
             "nanochat-d12, s7-moe-140m (or a path to a file)")
    app = app_factory(initial_tab="train", only_tabs=("train",))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        tab = app.query_one(TrainTab)
        tab.post_message(ChildExited(OWNER, 2, ["some output", error]))
        await pilot.pause()
        assert tab.exits == [2]
        assert any(n.message == error and n.severity == "error" for n in app._notifications)
