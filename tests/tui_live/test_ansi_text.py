"""The fast plotext-ANSI -> Text conversion gives exactly what rich's decoder gives."""

from __future__ import annotations

import math

from rich.console import Console
from rich.text import Text
from textual_plotext.plot import Plot

from app.widgets.ansi_text import ansi_to_text


def styled(text: Text) -> str:
    console = Console(width=100, record=True, file=open("/dev/null", "w"), color_system="truecolor")
    console.print(text)
    return console.export_text(styles=True)


def test_same_as_rich_on_plotext_output():
    for theme in ("pro", "dark", "clear", "matrix"):
        p = Plot()
        p.plot(list(range(60)), [math.sin(i / 5) for i in range(60)], marker="braille", color="cyan", label="a")
        p.plot(list(range(60)), [math.cos(i / 5) for i in range(60)], marker="braille", color=(250, 120, 10), label="b")
        p.hline(0.5, "red")
        p.title("loss")
        p.plotsize(70, 18)
        p.theme(theme)
        ansi = p.build()
        assert ansi_to_text(ansi).plain == Text.from_ansi(ansi).plain
        assert styled(ansi_to_text(ansi)) == styled(Text.from_ansi(ansi)), theme


def test_unknown_sequences_fall_back_to_rich():
    ansi = "\x1b[4munderlined\x1b[0m plain \x1b[38;5;2mgreen\x1b[0m"
    assert styled(ansi_to_text(ansi)) == styled(Text.from_ansi(ansi))
