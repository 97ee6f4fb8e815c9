"""The Plan tab: pick hardware and model, set the goal, see the cluster plan recompute as you type.

A FormTab (app/tabs/form_tab.py): any input change -> a short debounce -> the form is validated
(cheap, on the UI thread; each wrong field shows its message beside it) -> a valid Plan goes to the
tab's thread worker, which runs the same Plan.compute() as `lsdt plan` (the seed model and the
engineering model) -> the answer is shown; stale answers are dropped by request id. The header,
the status line, Compare and a saved plan all show the plan's one answer (engine/answer.py).
"""

from __future__ import annotations

import time
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.lazy import Lazy
from textual.widgets import Input, Label, RadioButton, RadioSet, Select, Static

from engine import fmt
from engine.errors import UserError
from engine.plan import Plan, load_plan
from engine.sizing.calibrate import calibrated_efficiency
from engine.sizing.objective import OBJECTIVE_WORDS, OBJECTIVES
from engine.specs import PRECISIONS

from app.adoption import ProbeAdopted, ProbeAdoption
from app.inputs import DEFAULT_PLACEHOLDERS, FORM_FIELD_OF_KEY, FormValues, form_from_plan, plan_from_form
from app.saved import plan_path, suggest_name
from app.tabs.form_tab import FormTab
from app.widgets.choice import Choice
from app.widgets.form_field import FormField
from app.widgets.layouts_table import CompareTable, RefinedSection
from app.widgets.profile_picker import ProfilePicker
from app.widgets.result_panel import ResultPanel, render_physics

# Long enough to fold a burst (key repeat, a paste) into one computation, short enough that Step 1
# (a few ms) still answers well inside the 100 ms keystroke target (benchmarks/tui_keystroke.py).
DEBOUNCE_S = 0.02
DEFAULT_HARDWARE = "h100-sxm"
DEFAULT_MODEL = "llama-13b"


class PlanTab(FormTab):
    debounce_s = DEBOUNCE_S

    BINDINGS = [
        Binding("ctrl+s", "save", "save plan", tooltip="save the plan as TOML (asks for a name; asks before overwriting)"),
        Binding("ctrl+o", "open", "open plan", tooltip="open a saved plan"),
        Binding("ctrl+t", "pin", "pin design", tooltip="pin the current design to the Compare table"),
        Binding("ctrl+g", "toggle_mode", "auto-size / fixed G", tooltip="switch auto-size / fixed G"),
    ]
    HELP_KEYS = (
        ("Enter / Delete", "in Compare: restore / remove a pinned design"),
        ("↓ in a search box", "into the list; the highlighted entry is the choice"),
    )

    def __init__(self, *, initial_plan: Plan | None = None, plans_dir: Path, id: str | None = None) -> None:
        super().__init__(id=id)
        self.initial_plan = initial_plan
        self.plans_dir = plans_dir
        self.current: Plan | None = None  # the latest computed plan (what save and pin take)
        self.pinned: list[Plan] = []
        self.carried: Plan | None = None  # the plan the form was last filled from (keeps its Step-2 efficiencies)
        self.last_elapsed_s = 0.0  # engine time of the last answer (benchmarks read it)
        self.refined_state: tuple[list[dict], str | None] | None = None  # the layouts table's rows (or error)
        self._answered_ok = False  # the last answer was a plan (not an error)
        self._form_errors: dict[str, str] = {}  # the last read_form's errors (field -> message)
        self._first_queued = False  # the start-up computation is queued (schedule)
        self._applying = False  # set while a loaded plan fills the form (one recompute, not ten)
        # "use in plan" on the Probe tab: the adopted probe, and the η seed text it set (once per
        # adoption, when its hardware matches the selected one; the user may edit it afterwards).
        self.probe: ProbeAdoption | None = None
        self.probe_eta: str | None = None

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        with Horizontal(id="plan-top"):
            with Vertical(id="plan-pickers"):
                yield ProfilePicker("hardware", "Hardware", DEFAULT_HARDWARE, id="hardware")
                yield ProfilePicker("models", "Model", DEFAULT_MODEL, id="model")
            with Vertical(id="plan-goal", classes="panel") as goal:
                goal.border_title = "Goal"
                yield FormField("tokens", "tokens", placeholder=DEFAULT_PLACEHOLDERS["tokens"])
                yield FormField("deadline", "deadline", "30", placeholder=DEFAULT_PLACEHOLDERS["deadline"], unit="days")
                yield FormField("batch", "batch", placeholder=DEFAULT_PLACEHOLDERS["batch"], unit="tokens")
                yield FormField("seq", "seq", placeholder=DEFAULT_PLACEHOLDERS["seq"], unit="tokens")
                with Horizontal(classes="form-row"):
                    yield Label("precision", classes="field-label")
                    yield Select([(p, p) for p in PRECISIONS], value=PRECISIONS[0], allow_blank=False,
                                 compact=True, id="precision")
                with Horizontal(classes="form-row"):
                    yield Label("best", classes="field-label")
                    yield Select([(OBJECTIVE_WORDS[o], o) for o in OBJECTIVES], value=OBJECTIVES[0], allow_blank=False,
                                 compact=True, id="objective")
                yield FormField("price", "price", placeholder=DEFAULT_PLACEHOLDERS["price"], unit="$/GPU-h")
                yield FormField("eta_gemm", "η gemm", placeholder=DEFAULT_PLACEHOLDERS["eta_gemm"], unit="model")
                # The seed model's two efficiencies (Step 1, shown under the answer as "seed model").
                yield FormField("eta_compute", "η seed", placeholder=DEFAULT_PLACEHOLDERS["eta_compute"], unit="MFU")
                yield FormField("eta_fabric", "η fabric", placeholder=DEFAULT_PLACEHOLDERS["eta_fabric"], unit="of bw")
                with Horizontal(classes="form-row mode-row"):
                    with RadioSet(id="mode", compact=True):
                        yield Choice("auto-size", value=True, id="mode-auto")
                        yield Choice("fixed G", id="mode-fixed")
                g_field = FormField("G", "G", placeholder="devices", unit="GPUs")
                g_field.disabled = True  # enabled by fixed-G mode (set here, not on mount: no restyle)
                yield g_field
                yield Static("", id="form-error", classes="form-status", markup=False)
                yield Static("", id="physics")
            with Vertical(id="plan-result", classes="panel") as result:
                result.border_title = "Result"
                yield ResultPanel("computing…", id="result")
                # Lazy: after the first frame (it has no data before the first answer anyway).
                yield Lazy(RefinedSection(id="refined"))
        compare = Vertical(CompareTable(id="compare"), id="plan-compare", classes="panel")
        compare.border_title = "Compare  (ctrl+t pins the design · Enter restores · Delete removes)"  # whole at 80 columns
        yield Lazy(compare)  # empty until the first pin: not worth delaying the first frame for
        yield Static("", id="plan-status", markup=False)

    def on_mount(self) -> None:
        # Before the first frame, not after it: a key pressed as soon as the plan shows (ctrl+s)
        # must reach this tab, not the tab bar that Textual's auto-focus would pick meanwhile.
        self._initial_focus()
        if self.initial_plan is not None:
            self.apply_plan(self.initial_plan, f"opened {self.initial_plan.model.name} on {self.initial_plan.hardware.name}")
        if self.app.adopted_probe is not None:  # adopted before this tab was built
            self.use_probe(self.app.adopted_probe)

    def _initial_focus(self) -> None:
        """Keyboard first: start typing a GPU name. Only while this tab is the one shown (focusing
        inside a hidden pane would switch back to it); at start-up, before TabbedContent has set
        its active pane (""), this tab is built only if it is the one shown."""
        tabs = next((a for a in self.ancestors if getattr(a, "id", None) == "tabs"), None)
        if tabs is None or getattr(tabs, "active", "plan") in ("plan", ""):
            # Now, not queued (Widget.focus defers): a queued focus could land after the user has
            # already gone to another tab, and pull this one back.
            self.screen.set_focus(self.query_one("#hardware-filter", Input))

    # ------------------------------------------------------------------ form <-> plan

    def form_values(self) -> FormValues:
        def text(name: str) -> str:
            return self.query_one(f"#input-{name}", Input).value

        return FormValues(
            tokens=text("tokens"), deadline=text("deadline"), batch=text("batch"),
            precision=str(self.query_one("#precision", Select).value),
            eta_compute=text("eta_compute"), eta_fabric=text("eta_fabric"),
            fixed_G=self.query_one("#mode-fixed", RadioButton).value, G=text("G"),
            seq=text("seq"), eta_gemm=text("eta_gemm"), price=text("price"),
            objective=str(self.query_one("#objective", Select).value),
        )

    def apply_plan(self, plan: Plan, status: str) -> None:
        """Fill every input from a plan (a file the user opened, or a pinned design)."""
        self._applying = True
        self.carried = plan
        try:
            self.query_one("#hardware", ProfilePicker).add_spec(plan.hardware, f"{plan.hardware.name} (plan)")
            self.query_one("#model", ProfilePicker).add_spec(plan.model, f"{plan.model.name} (plan)")
            form = form_from_plan(plan)
            for name in ("tokens", "deadline", "batch", "seq", "price", "eta_gemm", "eta_compute", "eta_fabric", "G"):
                self.query_one(f"#input-{name}", Input).value = getattr(form, name)
            self.query_one("#precision", Select).value = form.precision
            self.query_one("#objective", Select).value = form.objective
            self.query_one("#mode-fixed" if form.fixed_G else "#mode-auto", RadioButton).value = True
            self.query_one("#field-G", FormField).disabled = not form.fixed_G
        finally:
            self._applying = False
        # The filled form from its first field (at 80x24 the Goal box scrolls inside its border and
        # may have been left at its last fields).
        self.query_one("#plan-goal").scroll_home(animate=False)
        self.set_status(status)
        self.schedule()

    # ------------------------------------------------------------------ recompute

    @on(ProfilePicker.Changed)
    def _picked(self, event: ProfilePicker.Changed) -> None:
        if self.probe is not None and self.probe_eta is None:
            self._apply_probe()  # the adopted probe's hardware may be the one just picked
        self.schedule()  # (typed text in the fields: FormTab's Input/Select handler schedules)

    # ------------------------------------------------------------------ a measured probe

    @on(ProbeAdopted)
    def _probe_adopted(self, message: ProbeAdopted) -> None:
        self.use_probe(message.adoption)

    def use_probe(self, adoption: ProbeAdoption) -> None:
        """η seed (the seed model's eta_compute) is sustained / peak FLOP/s, which is what a probe's
        MFU measures; η gemm (the engineering model's, which answers) is the probe's calibrated GEMM
        efficiency, as `lsdt plan --calibrate` takes it. Take the
        median of its ok rows, but only for the hardware it was measured on."""
        self.probe, self.probe_eta = adoption, None
        self._apply_probe()
        self.set_status(self.probe_note())

    def _apply_probe(self) -> None:
        hardware = self.query_one("#hardware", ProfilePicker).spec
        p = self.probe
        if p is None or p.mfu is None or hardware is None or p.hardware != hardware.name:
            return
        self.probe_eta = f"{p.mfu:.3f}"
        self.query_one("#input-eta_compute", Input).value = self.probe_eta  # Input.Changed recomputes
        try:
            gemm = calibrated_efficiency(p.path, hardware).eta_gemm
        except UserError:
            return  # (the probe file changed since it was adopted): η gemm stays as it is
        self.query_one("#input-eta_gemm", Input).value = f"{gemm:g}"

    def probe_note(self) -> str:
        """What the adopted probe did to this plan (appended to the status after each answer)."""
        p = self.probe
        if p is None:
            return ""
        name = p.path.name
        if p.mfu is None:
            return f"probe {name}: MFU unknown ({p.device} matched no hardware profile), η seed and η gemm unchanged"
        if self.probe_eta is None:
            hardware = self.query_one("#hardware", ProfilePicker).spec
            return (f"probe {name} was measured on {p.hardware}, not {hardware.name if hardware else 'this hardware'}: "
                    f"η seed and η gemm unchanged")
        if self.query_one("#input-eta_compute", Input).value.strip() == self.probe_eta:
            return (f"η seed {self.probe_eta} = median MFU, η gemm {self.query_one('#input-eta_gemm', Input).value} "
                    f"calibrated, from probe {name} ({p.device})")
        return ""  # the user has typed over the measured value since

    @on(RadioSet.Changed, "#mode")
    def _mode_changed(self, event: RadioSet.Changed) -> None:
        fixed = event.pressed.id == "mode-fixed"
        field = self.query_one("#field-G", FormField)
        if not fixed and field.input.has_focus:
            # Disabling the focused G field would leave nothing focused (ctrl+g in G, back to
            # auto-size): this tab's keys would stop working. The mode switch is the next place.
            self.screen.set_focus(self.query_one("#mode", RadioSet))
        field.disabled = not fixed
        if fixed and not self._applying:
            answer = self.plan_for_inputs.answer() if self.plan_for_inputs is not None else None
            if not field.input.value.strip() and answer is not None and answer.has_layout:
                # Start from the current answer: the user asks "what about N", near it.
                field.input.value = str(answer.gpus)
            field.input.focus()
        if not self._applying:
            self.schedule()

    def schedule(self) -> None:
        """FormTab's debounce, except while a plan fills the form (one recompute after, not ten)
        and for the first computation, which has no burst to fold."""
        if self._applying:
            return
        if self._request == 0:
            # Run as soon as the start-up messages already queued here are handled. A timer would
            # fire only after the first frame is painted (~0.1 s later: benchmarks/tui_startup.py).
            self._pending = True
            if not self._first_queued:
                self._first_queued = True
                self.call_later(self._first_recompute)
            return
        super().schedule()

    def _first_recompute(self) -> None:
        self._first_queued = False
        if self._request == 0:
            self._recompute()

    # ------------------------------------------------------------------ FormTab API

    def read_form(self) -> tuple[dict, dict[str, str]]:
        hardware = self.query_one("#hardware", ProfilePicker).spec
        model = self.query_one("#model", ProfilePicker).spec
        checked = plan_from_form(self.form_values(), model, hardware, self.carried)
        self._form_errors = checked.errors
        return {"plan": checked.plan}, checked.errors

    def engine_call(self, args: dict) -> tuple[Plan, float]:
        """In the worker thread: the seed model and the engineering model, as `lsdt plan` runs them."""
        start = time.perf_counter()
        plan = args["plan"].compute()
        return plan, time.perf_counter() - start

    ERROR_FIELDS = FORM_FIELD_OF_KEY

    def show(self, result: tuple[Plan, float]) -> None:
        plan, self.last_elapsed_s = result
        self.answered_at = time.perf_counter()  # when the answer reached the screen (benchmarks read it)
        self.current, self._answered_ok = plan, True
        self.query_one("#result", ResultPanel).show_plan(plan)
        self.query_one("#physics", Static).update(render_physics(plan))
        layouts = plan.refined.get("layouts", [])
        self.refined_state = (layouts, None if plan.refine else "off: the seed model answers (--seed-model)")
        for section in self.query(RefinedSection):  # none yet if it has not mounted: it pulls refined_state
            section.show(*self.refined_state)
        self._dim_details(False)
        a = plan.answer()
        self.query_one("#plan-result").border_title = f"Result · {a.model} model"
        if a.feasible:
            verdict = f"feasible: G = {a.gpus:,}" + ("" if a.cost_usd is None else f", ${fmt.count(a.cost_usd)}")
        else:
            verdict = f"no solution ({a.constraint})"
        mode = f"fixed G = {plan.G}" if plan.G is not None else f"auto-size, {OBJECTIVE_WORDS[plan.objective]}"
        note = self.probe_note()
        self.set_status(f"{verdict} ({a.model} model): {plan.model.name} on {plan.hardware.name}, {mode}"
                        + (f" · {note}" if note else ""))

    def show_stale(self, why: str) -> None:
        """Inputs invalid (a field in red) or refused by the engine: the last answer stays, dimmed."""
        self._answered_ok = False
        from_form = why in self._form_errors.values()
        owned = from_form or self.error_field is not None
        self.query_one("#form-error", Static).update("" if owned else why)
        self.query_one("#result", ResultPanel).mark_stale(
            "fix the field marked in red" if from_form else
            "internal error while computing (see the notification)" if why.startswith("internal error") else
            "the goal is not coherent: see the message in the Goal panel")
        self._dim_details(True)
        self.set_status("internal error while computing: please report it" if why.startswith("internal error") else why)
        self._form_errors = {}

    def _dim_details(self, stale: bool) -> None:
        """Step 0 physics and the refined layouts are answers too: dimmed with the Result panel
        while they belong to inputs that have changed since (an invalid field, an engine error)."""
        self.query_one("#physics", Static).set_class(stale, "-stale")
        for section in self.query(RefinedSection):
            section.set_class(stale, "-stale")

    def set_status(self, text: str) -> None:
        self.query_one("#plan-status", Static).update(text)

    # ------------------------------------------------------------------ actions

    def action_toggle_mode(self) -> None:
        fixed = self.query_one("#mode-fixed", RadioButton)
        (self.query_one("#mode-auto", RadioButton) if fixed.value else fixed).value = True

    @property
    def plan_for_inputs(self) -> Plan | None:
        """The computed plan of the inputs as they are, or None while they are invalid or refused
        (`current` then still holds the last good plan, shown dimmed: not what the form says)."""
        return self.current if self._answered_ok else None

    def action_pin(self) -> None:
        if self.plan_for_inputs is None:
            self.app.notify("nothing to pin yet: the inputs have no computed plan", severity="warning")
            return
        self.pinned.append(self.current)
        self.query_one(CompareTable).add_plan(len(self.pinned), self.current)
        self.set_status(f"pinned design #{len(self.pinned)} for comparison")

    @on(CompareTable.RowSelected, "#compare")
    def _restore_pinned(self, event: CompareTable.RowSelected) -> None:
        plan = self.pinned[int(event.row_key.value) - 1]
        self.apply_plan(plan, f"restored design #{event.row_key.value}")

    def action_save(self) -> None:
        from app.screens.save import ConfirmScreen, SaveScreen

        plan = self.plan_for_inputs
        if plan is None:
            self.app.notify("nothing to save: fix the inputs first", severity="warning")
            return

        def check(name: str) -> Path:
            return plan_path(self.plans_dir, name)  # raises UserError: the dialog shows it under the name

        def write(path: Path) -> None:
            try:
                plan.save(path)
            except UserError as exc:
                self.app.notify(str(exc), severity="error")
                return
            self.set_status(f"saved {self.app.short_path(path)}")
            self.app.notify(f"saved {path.name}", title="Plan saved")

        def named(path: Path | None) -> None:
            if path is None:
                return
            if path.exists():
                self.app.push_screen(ConfirmScreen(f"{path.name} exists. Overwrite it?"),
                                     lambda yes: write(path) if yes else self.set_status("not saved"))
            else:
                write(path)

        self.app.push_screen(SaveScreen(suggest_name(plan), check), named)

    def action_open(self) -> None:
        from app.screens.open_plan import OpenPlanScreen

        def chosen(path: Path | None) -> None:
            if path is None:
                return
            try:
                plan = load_plan(path)
            except UserError as exc:
                self.app.notify(str(exc), severity="error")
                return
            self.apply_plan(plan, f"opened {self.app.short_path(path)}")  # as "saved" says it: it fits 80 columns

        self.app.push_screen(OpenPlanScreen(self.plans_dir), chosen)
