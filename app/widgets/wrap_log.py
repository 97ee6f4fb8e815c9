"""A log pane that wraps its lines to its width, and re-wraps them when the width changes.

RichLog renders each line once, when written, at `min_width` (78) or wider, and never again: in
a 38-column events pane at 80x24 a line was cut at the pane's edge ("@12" read "@1"), and a line
written while the pane was wide stayed cut after the terminal narrowed. Here every line is kept
(as many as the log holds) and written again, wrapped, when the pane's width changes.
"""

from __future__ import annotations

from collections import deque

from textual.events import Resize
from textual.widgets import RichLog


class WrapLog(RichLog):
    def __init__(self, *, max_lines: int, id: str | None = None) -> None:
        super().__init__(max_lines=max_lines, wrap=True, min_width=1, markup=False, id=id)
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._wrapped_at = 0  # the width the lines on screen were wrapped to

    def add_line(self, text: str) -> None:
        self._lines.append(text)
        self.write(text)
        self._wrapped_at = self.scrollable_content_region.width

    def clear(self) -> "WrapLog":
        self._lines.clear()
        return super().clear()

    def on_resize(self, event: Resize) -> None:
        width = self.scrollable_content_region.width
        if self._lines and width and width != self._wrapped_at:
            super().clear()
            for line in self._lines:
                self.write(line)
            self._wrapped_at = width
