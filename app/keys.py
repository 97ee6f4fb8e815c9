"""Every key and action of the app in one list: the help screen and the command palette read it,
and the footer shows the same BINDINGS, so the three cannot drift.

The source of truth is each class's BINDINGS (the App's and every tab's): a key added to a tab is
in help, in the palette ("Train: stop") and, when `show` is on, in the footer, with no other edit.
Keys that are no binding (a table's Enter, a list's arrows) are a tab's HELP_KEYS.

Why these keys (docs/tui.md, "Keys"): stop is ctrl+t on every tab that runs a child process,
because ctrl+b is tmux's prefix and ctrl+a screen's, ctrl+c / ctrl+z / ctrl+\\ belong to the shell's
job control, and ctrl+q / ctrl+p / Tab are Textual's; tabs are F2 … F9 (F1 is help): tmux, screen
and shells leave function keys alone and no field reads them. Not alt+digit: Textual reads ESC+digit
as the macOS Option characters (¡ ™ £ …), so alt+1 typed "¡" into the field.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding

# How Textual key names read on screen.
_KEY_NAMES = {"question_mark": "?", "f1": "F1", "escape": "Escape", "enter": "Enter", "delete": "Delete"}

# Keys that are no binding of the App or a tab (Textual's own).
GENERAL_KEYS = (
    ("ctrl+p", "command palette (every action of every tab by name)"),
)

MAX_TAB_KEYS = 8  # F2 … F9 (F1 is help)


def key_text(binding: Binding) -> str:
    """`ctrl+s`, `? / F1`: the binding's keys as the user types them."""
    return " / ".join(_KEY_NAMES.get(k.strip(), k.strip()) for k in binding.key.split(","))


def _binding(b) -> Binding:
    return b if isinstance(b, Binding) else Binding(*b)


def binding_rows(bindings) -> list[tuple[str, str]]:
    """(key, what) for each binding: its tooltip (the long form) or else its footer description.
    The tab-switch keys (go_tab) are one row of their own (tab_keys_row), not nine."""
    rows = []
    for b in map(_binding, bindings):  # as declared: one row per binding, its keys together ("? / F1")
        if b.action.startswith("go_tab("):
            continue
        rows.append((key_text(b), b.tooltip or b.description or b.action))
    return rows


def tab_keys_row(tabs) -> tuple[str, str]:
    """('F2 … F8', 'go to tab: F2 Plan · F3 Bands · …') for the tabs this build has."""
    n = min(len(tabs), MAX_TAB_KEYS)
    names = " · ".join(f"F{i + 1} {t.title}" for i, t in enumerate(tabs[:n], 1))
    return (f"F2 … F{n + 1}", f"go to tab: {names}")


@dataclass(frozen=True)
class TabAction:
    """One binding of one tab, as the palette offers it."""

    tab_id: str
    tab_title: str
    key: str  # as typed: "ctrl+t"
    name: str  # the footer's short word(s): "stop"
    what: str  # the long form (tooltip)
    action: str  # the action on the tab widget: "stop"

    @property
    def title(self) -> str:
        return f"{self.tab_title}: {self.name}"


def tab_actions(tabs) -> list[TabAction]:
    """Every binding of every tab (in tab order), for the command palette."""
    from app.tabs import tab_class

    actions = []
    for entry in tabs:
        for b in map(_binding, getattr(tab_class(entry), "BINDINGS", [])):
            actions.append(TabAction(entry.id, entry.title, key_text(b), b.description or b.action,
                                     b.tooltip or b.description or b.action, b.action))
    return actions


def help_sections(app) -> list[tuple[str, list[tuple[str, str]]]]:
    """The help screen's key tables: the App's keys, then one section per tab this build has (its
    BINDINGS and HELP_KEYS)."""
    from app.tabs import tab_class

    tabs = getattr(app, "tabs", [])
    everywhere = binding_rows(type(app).BINDINGS) + ([tab_keys_row(tabs)] if tabs else []) + list(GENERAL_KEYS)
    sections = [("Keys (everywhere)", everywhere)]
    for entry in tabs:
        cls = tab_class(entry)
        rows = binding_rows(getattr(cls, "BINDINGS", [])) + list(getattr(cls, "HELP_KEYS", ()))
        if rows:
            sections.append((f"{entry.title} tab", rows))
    return sections
