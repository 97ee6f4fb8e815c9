"""The footer, showing as many key hints as fit the width, whole, in priority order.

Textual's Footer lays every hint in one row and the screen's edge cuts the last ones mid-word
(at 80 columns the Train tab read "^l x ax"). Here the hints that do not fit are hidden, lowest
priority first: quit (everyone knows ctrl+q; help lists it), then the tab's keys from the last
declared to the first; "? help" always stays, since help lists every key. The palette key stays
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
        palette = sum(self._width(k) + 1 for k in self.query(FOOTER_KEY) if k.has_class("-command-palette"))
        room = self.size.width - palette
        if room <= 0 or not keys:
            return
        shown = set(keys)
        total = sum(self._width(k) for k in keys)
        for key in sorted(keys, key=lambda k: self._priority(k, keys), reverse=True):
            if total <= room or key.action == HELP_ACTION:
                break
            shown.discard(key)
            total -= self._width(key)
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
        """Cells the hint takes: its text (key and description, with their padding) and margins."""
        return cell_len(key.render().plain) + key.styles.margin.width
