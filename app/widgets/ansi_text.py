"""plotext's ANSI output -> a rich Text, fast.

textual-plotext renders with `Text.from_ansi(plot.build())`; rich's general decoder takes ~7 ms for
one 80x20 chart, a third of the 20 ms redraw budget (benchmarks/chart_redraw.py). plotext emits a
small set of SGR sequences (reset, bold, 256-colour and true-colour foreground/background), so one
regex split plus a cache from sequence to Style does the same work in a fraction of the time. Any
sequence outside that set falls back to rich's decoder for the whole string (never a wrong colour).
"""

from __future__ import annotations

import re
from functools import lru_cache

from rich.color import Color
from rich.style import Style
from rich.text import Text

_SGR = re.compile(r"\x1b\[([0-9;]*)m")


class _Unsupported(Exception):
    pass


@lru_cache(maxsize=4096)
def _apply(state: tuple, params: str) -> tuple:
    """(fg, bg, bold) after one SGR sequence."""
    fg, bg, bold = state
    codes = [int(c) if c else 0 for c in params.split(";")] if params else [0]
    i = 0
    while i < len(codes):
        c = codes[i]
        if c == 0:
            fg, bg, bold = None, None, False
        elif c == 1:
            bold = True
        elif c == 22:
            bold = False
        elif c in (38, 48) and i + 2 < len(codes) and codes[i + 1] == 5:
            color = Color.from_ansi(codes[i + 2])
            fg, bg = (color, bg) if c == 38 else (fg, color)
            i += 2
        elif c in (38, 48) and i + 4 < len(codes) and codes[i + 1] == 2:
            color = Color.from_rgb(*codes[i + 2:i + 5])
            fg, bg = (color, bg) if c == 38 else (fg, color)
            i += 4
        elif 30 <= c <= 37 or 90 <= c <= 97:
            fg = Color.from_ansi(c - 30 if c < 90 else c - 82)
        elif 40 <= c <= 47 or 100 <= c <= 107:
            bg = Color.from_ansi(c - 40 if c < 100 else c - 92)
        elif c == 39:
            fg = None
        elif c == 49:
            bg = None
        else:
            raise _Unsupported(params)
        i += 1
    return fg, bg, bold


@lru_cache(maxsize=4096)
def _style(state: tuple) -> Style | None:
    fg, bg, bold = state
    if fg is None and bg is None and not bold:
        return None
    return Style(color=fg, bgcolor=bg, bold=bold or None)


def ansi_to_text(ansi: str) -> Text:
    """Runs of equal style become one span: plotext resets and re-sets the style around nearly every
    character, and each span costs Textual work at every paint."""
    text = Text(end="", no_wrap=True)
    state: tuple = (None, None, False)
    run: list[str] = []
    run_style: Style | None = None
    pos = 0

    def flush() -> None:
        if run:
            text.append("".join(run), run_style)
            run.clear()

    try:
        for m in _SGR.finditer(ansi):
            if m.start() > pos:
                style = _style(state)
                if style != run_style:
                    flush()
                    run_style = style
                run.append(ansi[pos:m.start()])
            state = _apply(state, m.group(1))
            pos = m.end()
    except _Unsupported:
        return Text.from_ansi(ansi)
    if pos < len(ansi):
        style = _style(state)
        if style != run_style:
            flush()
            run_style = style
        run.append(ansi[pos:])
    flush()
    return text
