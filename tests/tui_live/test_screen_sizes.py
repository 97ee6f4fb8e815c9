"""Every tab at 80x24 and 100x30: nothing is cut (issue 17: at 80x24 Train's device label read
"devi", the Plan tab lost its numbers; at 100 columns the Probe "save to" path was cut).

For each tab, every visible label and button shows its whole text, and no widget of the tab
extends past the right edge of the screen (a layout that does not fit reflows or scrolls; it
does not clip). The Plan, Bands and MoE tabs are also snapshots at these sizes
(tests/tui/test_snapshots.py)."""

from __future__ import annotations

import pytest
from rich.cells import cell_len
from textual.widgets import Button, Label

from tests.tui_live.conftest import wait_until

SIZES = ((80, 24), (100, 30))


def cut_widgets(tab, screen_width: int) -> list[str]:
    problems = []
    for w in tab.query("*"):
        if not w.display or not w.region.width:
            continue  # hidden, or scrolled out of a container (a scroll is not a cut)
        if w.region.right > screen_width:
            problems.append(f"{w!r} ends at column {w.region.right} > {screen_width}")
        if isinstance(w, (Label, Button)):
            text = str(w.label if isinstance(w, Button) else w.render())
            if "\n" not in text and cell_len(text.strip()) > w.content_region.width:
                problems.append(f"{w!r} shows {w.content_region.width} of {cell_len(text.strip())} cells: {text!r}")
    return problems


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_every_tab_fits(app_factory, size):
    app = app_factory()
    async with app.run_test(size=size) as pilot:
        for entry in app.tabs:
            tab = await app.show_tab(entry.id)
            await pilot.pause()
            await wait_until(pilot, lambda: tab.region.width > 0, what=f"{entry.id} shown")
            await pilot.pause()
            problems = cut_widgets(tab, size[0])
            assert not problems, f"{entry.id} at {size}: " + "; ".join(problems[:5])
