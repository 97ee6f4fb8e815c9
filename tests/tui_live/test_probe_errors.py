"""A failed probe's error is readable whole: the one-row status line cut it at 100 columns before
its reason, so it is also a notification (found in tmux, as on the Train tab). A stop the user
asked for is not an error."""

from __future__ import annotations

from app.child import ChildExited
from app.tabs.probe import OWNER, ProbeTab

ERROR = ("lsdt: error: --device 'cuda': no CUDA device is visible to torch; accepted: auto | cpu on this "
         "machine (or install a CUDA build of torch and a driver)")


async def test_a_probe_failure_is_a_notification_but_a_stop_is_not(app_factory):
    app = app_factory(initial_tab="probe", only_tabs=("probe",))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        tab = app.query_one(ProbeTab)
        tab.post_message(ChildExited(OWNER, 130, ["lsdt: interrupted"]))  # the user's stop
        await pilot.pause()
        assert not list(app._notifications)
        status = str(tab.query_one("#probe-status").render())
        assert status.startswith("probe stopped") and "✗" not in status and "interrupted" not in status
        tab.post_message(ChildExited(OWNER, 2, ["lsdt probe: 1 configs on cuda", ERROR]))
        await pilot.pause()
        notes = list(app._notifications)
        assert len(notes) == 1 and notes[0].message == ERROR and notes[0].severity == "error"
