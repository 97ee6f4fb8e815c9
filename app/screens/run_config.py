"""The config panel of a watched run: what the run's source stores about how it was set up (LSDT's
config.toml, the HF Trainer's state and model config.json, Lightning's hparams.yaml), as
`section.key = value` lines. Escape closes it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


def config_lines(config: dict, prefix: str = "") -> list[str]:
    """Nested dicts flattened to dotted keys, in the order the source stored them."""
    lines = []
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            lines += config_lines(value, name + ".")
        else:
            lines.append(f"{name} = {value!r}" if isinstance(value, str) else f"{name} = {value}")
    return lines


class RunConfigScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "close")]
    DEFAULT_CSS = """
    RunConfigScreen { align: center middle; }
    RunConfigScreen > VerticalScroll { width: 90%; height: 80%; border: round $primary; padding: 0 1; background: $surface; }
    """

    def __init__(self, title: str, config: dict, problems: list[str]) -> None:
        super().__init__()
        self.title_text = title
        self.lines = config_lines(config) or ["(this run's source stores no configuration)"]
        self.problems = problems

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = f"config · {self.title_text} · Escape closes"
            yield Static("\n".join(self.lines + [f"problem: {p}" for p in self.problems]), id="run-config-text",
                         markup=False)
