"""Every tab at 80x24 and 100x30: nothing is cut (issue 17: at 80x24 Train's device label read
"devi", the Plan tab lost its numbers; at 100 columns the Probe "save to" path was cut).

For each tab, every visible label and button shows its whole text, and no widget of the tab
extends past the right edge of the screen (a layout that does not fit reflows or scrolls; it
does not clip). The Plan, Bands and MoE tabs are also snapshots at these sizes
(tests/tui/test_snapshots.py)."""

from __future__ import annotations

import pytest
from rich.cells import cell_len
from textual.widgets import Button, Input, Label, Select

from tests.tui_live.conftest import wait_until

SIZES = ((80, 24), (100, 30), (140, 42))


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
        # A field shows its whole value, or its whole placeholder while empty (issue 17: Bands and
        # MoE fields read "12,14,16" and "s7-moe-140" at 80x24).
        if isinstance(w, Input) and not w.password:
            text = w.value or w.placeholder
            if cell_len(text) > w.content_region.width:
                problems.append(f"{w!r} shows {w.content_region.width} of {cell_len(text)} cells: {text!r}")
        if isinstance(w, Select) and w.selection is not None:
            prompt = next((str(p) for p, v in w._options if v == w.selection), "")
            if cell_len(prompt) + 3 > w.content_region.width:  # " ▼ " after the value
                problems.append(f"{w!r} shows {w.content_region.width} of {cell_len(prompt) + 3} cells: {prompt!r}")
    return problems


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_every_tab_fits(app_factory, size):
    app = app_factory()
    async with app.run_test(size=size) as pilot:
        problems = []
        for entry in app.tabs:
            tab = await app.show_tab(entry.id)
            await pilot.pause()
            await wait_until(pilot, lambda: tab.region.width > 0, what=f"{entry.id} shown")
            await pilot.pause()
            problems += [f"{entry.id}: {p}" for p in cut_widgets(tab, size[0])]
        assert not problems, f"at {size}:\n" + "\n".join(problems)
