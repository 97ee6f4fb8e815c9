"""The help screen (`?` / F1): every key (app/keys.py, generated from the App's and each tab's
BINDINGS, as the command palette is) and how the Plan tab reads its fields."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from app.keys import binding_rows, help_sections, key_text  # noqa: F401 (the one list of keys; re-exported)

KEY_WIDTH = 18  # the longest key text ("↓ in a search box") and a space


FIELDS = (
    ("tokens", "training tokens; empty = 20 x parameters (Chinchilla); 260e9, 1.5T, 300B"),
    ("deadline", "days, or with a unit: 36h, 90min, 2w"),
    ("batch", "global batch, tokens per optimizer step: 4M, 2097152"),
    ("seq", "training sequence length in tokens; empty = the model's (HF config.json: 8,192 or less)"),
    ("best", "auto-size: fewest GPUs (default), shortest run, or lowest cost (clusters up to 8x the smallest)"),
    ("price", "$ per GPU-hour; empty = the hardware profile's list price (n/a where it has none)"),
    ("η gemm", "engineering model (the answer): large-GEMM efficiency, in (0, 1]; empty = the hardware profile's (engine/sizing/efficiency.py)"),
    ("η seed", "seed model only: sustained / peak FLOP/s (MFU), in (0, 1]; empty = 0.4"),
    ("η fabric", "seed model only: achieved / nominal link bandwidth, in (0, 1]; empty = 0.7"),
    ("G", "fixed mode only: can these G devices do it? (ctrl+g starts from the current answer)"),
    ("search box", "filter the built-ins, or type a path (TOML, HF config.json) and Enter"),
)


def _table(rows, title: str) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2), expand=True)
    table.add_column(style="bold cyan", no_wrap=True, width=KEY_WIDTH)  # one width: the sections line up
    table.add_column(ratio=1)
    for key, what in rows:
        table.add_row(key, what)
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: 90%; border: thick $primary; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "LSDT help  (Escape closes)"
            for title, rows in help_sections(self.app):
                yield Static(_table(rows, title), classes="help-keys")
            yield Static(_table(FIELDS, "Plan fields"))
            yield Static(Text(
                "Plan runs the same engine as `lsdt plan`: Step 0 physics, the engineering model's layout "
                "search (bubbles, link tiers, ZeRO, recompute), whose best layout is the answer, and the "
                "seed's simple Step-1 model, shown on one labelled line. Bands is `lsdt bands` (one GPU, a time window), MoE is "
                "`lsdt moe`. Everything recomputes in the background as you type; a wrong value is marked "
                "at its field. Saved plans are the TOML `lsdt plan --save` writes.", style="dim"))
