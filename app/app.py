"""The LSDT Textual app and `make_app`, the one factory the CLI, the tests and the snapshots share."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from textual import events, on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.lazy import Lazy
from textual.screen import ModalScreen, Screen
from textual.theme import Theme
from textual.widgets import Header, TabbedContent, TabPane

from engine import __version__
from engine.plan import Plan

from app.adoption import ProbeAdopted, ProbeAdoption
from app.key_order import route_key_now
from app.keys import MAX_TAB_KEYS, tab_actions
from app.messages import WorkerFailed
from app.saved import default_plans_dir
from app.widgets.fitting_footer import FittingFooter
from app.tabs import available_tabs, tab_class

# One palette for every tab: blue for structure, green/yellow/red only for verdicts (feasible,
# near a limit, over it), so colour always means the same thing.
LSDT_THEME = Theme(
    name="lsdt",
    primary="#5FA8D3",
    secondary="#62B6CB",
    accent="#F4A259",
    warning="#F4D35E",
    error="#EE6352",
    success="#59CD90",
    foreground="#E0E6ED",
    background="#131A22",
    surface="#1B2430",
    panel="#22303F",
    dark=True,
)


class LsdtTabs(TabbedContent):
    """The tab switcher. TabbedContent shows the pane that a focused widget is in, told by a
    message that arrives after the focus moved; a tab key pressed meanwhile (F3 then F4 at once)
    had switched on, and the late message switched back. A message about a pane the focus has
    left since is dropped."""

    @on(TabPane.Focused)
    def _drop_stale_focus(self, event: TabPane.Focused) -> None:
        focused = self.screen.focused
        if focused is None or event.tab_pane not in focused.ancestors:
            event.prevent_default()  # TabbedContent's own handler (it would switch back) is skipped


class LsdtApp(App[int]):
    CSS_PATH = "lsdt.tcss"
    # Below 100 columns the Screen has the class -narrow and the tabs reflow (lsdt.tcss): a layout
    # that fits 140 columns clipped the Plan tab's numbers at 80x24.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    TITLE = "LSDT"
    # AUTO_FOCUS = None  # each tab focuses its own first field (one focus change at start-up, not two)
    SUB_TITLE = "plan LLM training compute"
    BINDINGS = [
        Binding("question_mark,f1", "help", "help", key_display="?", tooltip="this help"),
        Binding("ctrl+q", "quit", "quit", priority=True),
        # Focus moves here, as the App receives the key, not in the focused widget's queue. Textual
        # picks a key's target (the focused widget) when the App reads it; Screen's own Tab binding
        # ran later, from the old field's queue, so keys typed right after Tab were sent to the old
        # field before the focus had moved ("C-u Tab 7" typed the 7 into the field being left).
        # A priority binding runs before the next key is routed (tests/tui/test_tmux_keys.py).
        Binding("tab", "focus_next", "next field", show=False, priority=True),
        Binding("shift+tab", "focus_previous", "previous field", show=False, priority=True),
    ] + [Binding(f"f{n + 1}", f"go_tab({n})", f"tab {n}", show=False, priority=True)  # priority: same race
         for n in range(1, MAX_TAB_KEYS + 1)]

    def __init__(self, *, plan: Plan | None = None, plans_dir: Path | None = None, cursor_blink: bool = True,
                 initial_tab: str | None = None, only_tabs: tuple[str, ...] | None = None,
                 monitor: Path | None = None) -> None:
        super().__init__()
        self.initial_plan = plan
        self.plans_dir = Path(plans_dir) if plans_dir else default_plans_dir()
        self.cursor_blink = cursor_blink  # False in tests and snapshots (a blinking cursor is not reproducible)
        self.initial_tab = initial_tab
        self.tabs = [t for t in available_tabs() if only_tabs is None or t.id in only_tabs]
        self.failures: list[str] = []  # one line per failed worker (tests assert this stays empty)
        # The run directory the Monitor tab attaches to when it is built (`lsdt-tui --monitor RUN_DIR`).
        self.monitor_run_dir: Path | None = monitor
        # The probe the user chose with "use in plan" (Probe tab), kept here for tabs built after it
        # was adopted: the Plan and Bands tabs read it when they are built, and handle ProbeAdopted
        # (posted by adopt_probe) when they already exist. None until a probe is adopted.
        self.adopted_probe: ProbeAdoption | None = None

        # The theme before the first mount: setting it later restyles every widget (~0.25 s).
        self.register_theme(LSDT_THEME)
        self.theme = "lsdt"

    def compose(self) -> ComposeResult:
        yield Header(icon="◆")
        initial = self.initial_tab or self.tabs[0].id
        with LsdtTabs(initial=initial, id="tabs"):
            for entry in self.tabs:
                with TabPane(entry.title, id=entry.id):
                    # Only the visible tab is built at start-up; the others on their first visit
                    # (each tab is ~0.5 s of widget styling on 2 cores: benchmarks/tui_startup.py).
                    if entry.id == initial:
                        yield self._build_tab(entry)
        # After the first frame: the footer rebuilds its keys on every bindings change while the
        # screen settles (5 times at start-up, ~40% of all styling work; benchmarks/tui_startup.py).
        yield Lazy(FittingFooter())

    async def on_event(self, event) -> None:
        # Keys typed into a field are handled in the order typed (app/key_order.py says why).
        if isinstance(event, events.Key) and not event.is_forwarded and await route_key_now(self, event):
            return
        await super().on_event(event)

    def _build_tab(self, entry):
        kwargs = {"id": f"{entry.id}-tab"}
        if entry.id == "plan":
            kwargs.update(initial_plan=self.initial_plan, plans_dir=self.plans_dir)
        return tab_class(entry)(**kwargs)

    def ensure_tab(self, tab_id: str):
        """Build a tab that has not been visited yet; returns the mount to await (None if built)."""
        pane = self.query_one("#tabs", TabbedContent).get_pane(tab_id)
        if pane.children:
            return None
        entry = next(t for t in self.tabs if t.id == tab_id)
        return pane.mount(self._build_tab(entry))

    @on(TabbedContent.TabActivated, "#tabs")
    def _first_visit(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id:
            self.ensure_tab(event.pane.id)

    def on_mount(self) -> None:
        self.sub_title = f"v{__version__} · plans in {self.short_path(self.plans_dir)}"

    @staticmethod
    def short_path(path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    # ------------------------------------------------------------------ the one failure route

    @on(WorkerFailed)
    def _worker_failed(self, message: WorkerFailed) -> None:
        """A worker raised something unexpected: one line in a notification, never a traceback."""
        line = f"{message.where}: {type(message.error).__name__}: {message.error}".splitlines()[0]
        self.failures.append(line)
        self.log.error(line)
        self.notify(line, title="internal error (please report)", severity="error", timeout=10)

    # ------------------------------------------------------------------ shared state

    def adopt_probe(self, adoption: ProbeAdoption) -> None:
        """Keep a measured probe and tell every built tab (each owns its reaction to ProbeAdopted)."""
        self.adopted_probe = adoption
        from app.tabs.base import LsdtTab

        for tab in self.query(LsdtTab):
            tab.post_message(ProbeAdopted(adoption))

    # ------------------------------------------------------------------ actions and commands

    def action_help(self) -> None:
        from app.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_go_tab(self, n: int) -> None:
        """F2 … F9: the 1st … 8th tab of this build (a number past the last tab does nothing)."""
        if 1 <= n <= len(self.tabs) and not isinstance(self.screen, ModalScreen):
            await self.show_tab(self.tabs[n - 1].id)

    def tab_widget(self, tab_id: str):
        return self.query_one(f"#{tab_id}-tab")

    async def show_tab(self, tab_id: str):
        """Switch to a tab (building it on its first visit) and return its widget."""
        # Drop focus first: a focused widget left in the old pane pulls TabbedContent back to it.
        self.screen.set_focus(None)
        self.query_one("#tabs", TabbedContent).active = tab_id
        pending = self.ensure_tab(tab_id)
        if pending is not None:
            await pending
        tab = self.tab_widget(tab_id)
        # Keyboard first: land in the tab's first field, or its keys (ctrl+s on Plan) do nothing
        # until the user tabs in. The live tabs focus their own first field when shown.
        self._focus_into(tab)  # now, before a command's dialog (Save plan) remembers the focus
        self.call_after_refresh(self._focus_into, tab)  # a tab just built is in the focus chain after a refresh
        return tab

    def _focus_into(self, tab) -> None:
        # Only while `tab` is still the one shown: the deferred call of a tab left since (F5 then
        # F6 at once) focused a field in a hidden pane, which pulled TabbedContent back to it.
        if self.query_one("#tabs", TabbedContent).active != tab.id.removesuffix("-tab"):
            return
        if self.screen.focused is None:
            first = tab.first_field()
            if first is not None:
                self.screen.set_focus(first)

    def _tab_action(self, tab_id: str, action: str):
        async def run() -> None:
            await (await self.show_tab(tab_id)).run_action(action)
        return run

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help", "Keys and fields of LSDT (? / F1)", self.action_help)
        for n, entry in enumerate(self.tabs, 1):
            key = f" (F{n + 1})" if n <= MAX_TAB_KEYS else ""
            yield SystemCommand(f"Go to {entry.title}", f"Show the {entry.title} tab{key}",
                                lambda tab=entry.id: self.show_tab(tab))
        # Every key of every tab (app/keys.py: the same list the help screen shows).
        for a in tab_actions(self.tabs):
            yield SystemCommand(a.title, f"{a.what} ({a.key})", self._tab_action(a.tab_id, a.action))


def make_app(*, plan: Plan | None = None, plans_dir: str | os.PathLike | None = None, cursor_blink: bool = True,
             initial_tab: str | None = None, only_tabs: tuple[str, ...] | None = None,
             monitor: str | os.PathLike | None = None) -> LsdtApp:
    """Build the app. `plans_dir` overrides $LSDT_PLANS_DIR / ./saved_plans (tests pass a tmp dir);
    `only_tabs` (tab ids) narrows the registry, so a tab's tests need only that tab's engine;
    `monitor` is a run directory the Monitor tab attaches to (opened on that tab unless
    `initial_tab` says otherwise)."""
    if monitor is not None and initial_tab is None:
        initial_tab = "monitor"
    return LsdtApp(plan=plan, plans_dir=Path(plans_dir) if plans_dir else None, cursor_blink=cursor_blink,
                   initial_tab=initial_tab, only_tabs=only_tabs, monitor=Path(monitor) if monitor is not None else None)
