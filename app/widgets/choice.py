"""A radio button whose mark is in the text, not only in its colour.

Textual's RadioButton draws "●" on and off alike and tells them apart by colour alone, so in a
terminal without colour, a screen reader or a tmux capture, "▐●▌ auto-size  ▐●▌ fixed G" read as
both chosen. Here only the chosen one has the dot.
"""

from __future__ import annotations

from textual.widgets import RadioButton


class Choice(RadioButton):
    @property
    def BUTTON_INNER(self) -> str:  # noqa: N802 (ToggleButton's class attribute, read per render)
        return "●" if self.value else " "
