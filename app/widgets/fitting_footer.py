"""The footer, showing as many key hints as fit the width, whole, in priority order.

Textual's Footer lays every hint in one row and the screen's edge cuts the last ones mid-word
(at 80 columns the Train tab read "^l x ax"). Here the hints are taken in priority order, each
shown if it still fits: "? help" always (help lists every key), then the tab's keys as declared,
quit last (everyone knows ctrl+q). They stay in their declared order on screen. The palette key stays
docked on the right, as in Textual's Footer.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual.widget import Widget
from textual.widgets import Footer

# The hint widget the Footer composes; queried by its type name (textual.widgets._footer is private).
FOOTER_KEY = "FooterKey"

HELP_ACTION = "help"  # app.App BINDINGS: "? / F1", kept whatever the width
LAST_ACTIONS = ("quit",)  # hidden first


class FittingFooter(Footer):
    def on_resize(self) -> None:
        self.fit()

    async def recompose(self) -> None:
        await super().recompose()
        self.fit()

    def fit(self) -> None:
        """Show the hints that fit in `self.size.width` (less the palette key), by priority."""
        keys = [k for k in self.query(FOOTER_KEY) if not k.has_class("-command-palette")]
        palette = sum(self._width(k) for k in self.query(FOOTER_KEY) if k.has_class("-command-palette"))
        room = self.size.width - palette
        if room <= 0 or not keys:
            return
        shown, total = set(), 0
        for key in sorted(keys, key=lambda k: self._priority(k, keys)):  # each in turn, if it still fits
            if total + self._width(key) <= room or key.action == HELP_ACTION:
                shown.add(key)
                total += self._width(key)
        for key in keys:
            key.display = key in shown

    @staticmethod
    def _priority(key: Widget, keys: list[Widget]) -> int:
        """Lower is kept longer: help, then the keys as declared (the tab's first), quit last."""
        if key.action == HELP_ACTION:
            return -1
        if key.action in LAST_ACTIONS:
            return len(keys) + 1
        return keys.index(key)

    @staticmethod
    def _width(key: Widget) -> int:
        """Cells the hint takes: its text (key and description, with their padding), the widget's
        own padding and border (the palette key's bar), and its margins."""
        return cell_len(key.render().plain) + key.styles.gutter.width + key.styles.margin.width
