"""The footer shows whole key hints that fit, by priority, on every tab (issue 17: at 80 columns
the Train footer ended "^l x ax", Monitor's "o ov"): "? help" always, then the tab's keys in the
order declared, quit last; the hidden ones are in help and the palette."""

from __future__ import annotations

import pytest

from tests.tui.conftest import screen_text
from tests.tui_live.conftest import wait_until


@pytest.mark.parametrize("size", [(80, 24), (140, 42)], ids=lambda s: f"{s[0]}x{s[1]}")
async def test_footer_hints_are_whole_on_every_tab(app_factory, size):
    app = app_factory()
    async with app.run_test(size=size) as pilot:
        for entry in app.tabs:
            tab = await app.show_tab(entry.id)
            await wait_until(pilot, lambda: tab.region.width > 0 and bool(app.query("FooterKey")), what=f"{entry.id} footer")
            await pilot.pause(0.2)
            footer = app.query_one("FittingFooter")
            keys = [k for k in footer.query("FooterKey") if not k.has_class("-command-palette")]
            palette = footer.query_one("FooterKey.-command-palette")
            shown = [k for k in keys if k.display]
            assert any(k.action == "help" for k in shown), entry.id
            for k in shown:  # each shown hint whole, left of the palette key
                assert k.region.width >= len(k.render().plain) and k.region.right <= palette.region.x, (entry.id, k.description)
            # by priority: a hidden tab key never comes before a shown one (quit goes first)
            tab_keys = [k for k in keys if k.action not in ("help", "quit")]
            hidden_at = [i for i, k in enumerate(tab_keys) if not k.display]
            assert not hidden_at or all(not k.display for k in tab_keys[hidden_at[0]:]), entry.id
            hidden = [k for k in keys if not k.display]
            if hidden:  # a hint is hidden only when it would not have fitted
                used = sum(k.region.width + k.styles.margin.width for k in shown)
                room = palette.region.x - footer.region.x
                assert used + min(len(k.render().plain) for k in hidden) > room, (entry.id, used, room)
            row = screen_text(app)[-1]
            for k in shown:
                assert k.description in row, (entry.id, k.description, row)
