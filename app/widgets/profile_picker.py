"""A searchable list of built-in profiles that also takes a path (TOML, or an HF config.json).

Type to filter; Down moves into the list; the highlighted entry is the choice (so arrowing
through hardware recomputes the plan for each). Enter on a path loads that file; a file that does
not load shows its one-line UserError under the list.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from engine import fmt
from engine.errors import UserError
from engine.sizing.counts import param_counts
from engine.specs import HardwareSpec, ModelSpec, builtin_names, load_hardware, load_model

from app.widgets.form_field import FieldInput

Spec = ModelSpec | HardwareSpec


def _load(kind: str, name_or_path: str) -> Spec:
    return load_hardware(name_or_path) if kind == "hardware" else load_model(name_or_path)


def _detail(kind: str, spec: Spec) -> str:
    """The number that tells entries apart at a glance: memory per device, or parameters."""
    if kind == "hardware":
        return fmt.gb(spec.memory_bytes, 0)
    return fmt.count(param_counts(spec).total)


class ProfilePicker(Vertical):
    BINDINGS = [Binding("down", "focus_list", "list", show=False)]

    DEFAULT_CSS = """
    ProfilePicker { height: 1fr; border: round $primary 40%; border-title-color: $text-accent; padding: 0 0; }
    ProfilePicker:focus-within { border: round $primary; }
    ProfilePicker FieldInput { margin: 0 0 0 0; }
    ProfilePicker OptionList { height: 1fr; border: none; padding: 0; background: transparent; }
    ProfilePicker .picker-error { display: none; color: $error; height: auto; }
    ProfilePicker.-invalid .picker-error { display: block; }
    """

    class Changed(Message):
        """The chosen profile changed (`spec` is the loaded, validated spec)."""

        def __init__(self, picker: "ProfilePicker", spec: Spec) -> None:
            super().__init__()
            self.picker = picker
            self.spec = spec

        @property
        def control(self) -> "ProfilePicker":
            return self.picker

    def __init__(self, kind: str, title: str, initial: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.kind = kind  # "hardware" | "models" (engine.specs.builtin_names)
        self.border_title = title
        self._initial = initial
        self._specs: dict[str, Spec] = {}  # option id -> spec (built-ins and loaded files)
        self._labels: dict[str, str] = {}
        self._custom: list[str] = []  # ids of loaded files / plan specs, listed first
        self.spec: Spec | None = None
        self.choice_id: str | None = None
        for name in builtin_names(kind):
            try:
                self._specs[name] = _load(kind, name)
                self._labels[name] = name
            except UserError:
                # A broken shipped profile is a packaging bug; the CLI reports it when named. Skip it here.
                continue

    def compose(self) -> ComposeResult:
        yield FieldInput(placeholder="search / path + Enter", compact=True, id=f"{self.id}-filter")
        yield OptionList(*self._options(""), id=f"{self.id}-list", compact=True)
        yield Static("", classes="picker-error", markup=False)

    def on_mount(self) -> None:
        if self._initial in self._specs and self.choice_id is None:
            self.choose(self._initial)

    # ------------------------------------------------------------------ options

    def _options(self, query: str) -> list[Option]:
        q = query.strip().lower()
        ids = self._custom + [n for n in self._specs if n not in self._custom]
        out = []
        for oid in ids:
            label = self._labels[oid]
            if q and q not in label.lower():
                continue
            prompt = Text.assemble((label, "bold" if oid in self._custom else ""), "  ",
                                   (_detail(self.kind, self._specs[oid]), "dim"))
            out.append(Option(prompt, id=oid))
        return out

    def _refilter(self, query: str) -> None:
        lst = self.query_one(OptionList)
        # Programmatic highlights are not user choices: without prevent() the queued highlight
        # messages of set_options and of the re-highlight would choose back and forth forever.
        with lst.prevent(OptionList.OptionHighlighted):
            lst.set_options(self._options(query))
            if self.choice_id is not None:
                try:
                    lst.highlighted = lst.get_option_index(self.choice_id)
                except Exception:  # the choice is filtered out: nothing highlighted
                    pass

    # ------------------------------------------------------------------ choosing

    def choose(self, option_id: str) -> None:
        """Make `option_id` the choice and highlight it (posts Changed)."""
        self.choice_id = option_id
        self.spec = self._specs[option_id]
        lst = self.query_one(OptionList)
        try:
            index = lst.get_option_index(option_id)
        except Exception:
            self._refilter("")
            index = lst.get_option_index(option_id)
        with lst.prevent(OptionList.OptionHighlighted):
            lst.highlighted = index
        self.set_error(None)
        self.post_message(self.Changed(self, self.spec))

    def on_resize(self) -> None:
        self.call_after_refresh(self._center_choice)

    def _center_choice(self) -> None:
        """Put the choice in the middle of the list: the same view for the same size, however the
        layout arrived there (a scroll 'just into view' depends on the sizes the list passed through)."""
        lst = self.query_one(OptionList)
        if lst.highlighted is not None and lst.size.height:
            lst.scroll_to(y=max(0, lst.highlighted - lst.size.height // 2), animate=False, immediate=True)

    def add_spec(self, spec: Spec, label: str) -> str:
        """Add a spec that is not a built-in (a file, or a saved plan's own copy) and choose it.
        A spec identical to a built-in chooses the built-in instead."""
        # A plan opened or restored fills the pickers as a user would: the old search is cleared
        # (the list stayed filtered by a search that had nothing to do with the choice).
        if self.is_mounted and self.query_one(FieldInput).value:
            self.query_one(FieldInput).value = ""
            self._refilter("")
        for name in builtin_names(self.kind):
            if self._specs.get(name) == spec:
                self.choose(name)
                return name
        oid = f"custom:{label}"
        self._specs[oid] = spec
        self._labels[oid] = label
        if oid not in self._custom:
            self._custom.insert(0, oid)
        self._refilter(self.query_one(FieldInput).value if self.is_mounted else "")
        self.choose(oid)
        return oid

    def set_error(self, message: str | None) -> None:
        self.query_one(".picker-error", Static).update(message or "")
        self.set_class(bool(message), "-invalid")

    # ------------------------------------------------------------------ events

    @on(Input.Changed)
    def _filter(self, event: Input.Changed) -> None:
        event.stop()
        self.set_error(None)  # the message was about the text submitted, which has changed since
        self._refilter(event.value)

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            return
        if text in self._specs:
            self.choose(text)
            return
        looks_like_path = "/" in text or text.endswith((".toml", ".json")) or Path(text).expanduser().exists()
        if looks_like_path:
            try:
                spec = _load(self.kind, text)
            except UserError as exc:
                self.set_error(str(exc))
                return
            self.query_one(FieldInput).value = ""
            self.add_spec(spec, Path(text).name if not text.endswith("config.json") else f"{spec.name} (config.json)")
            return
        lst = self.query_one(OptionList)
        if lst.option_count:
            self.choose(lst.get_option_at_index(0).id)
        else:
            label = "hardware" if self.kind == "hardware" else "model"
            self.set_error(f"no built-in {label} matches {text!r}; give a path to a file, or clear the search")

    @on(OptionList.OptionHighlighted)
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        if not event.option_list.has_focus:
            return  # OptionList's own initial highlight is not the user's choice
        oid = event.option.id
        if oid is not None and oid != self.choice_id and oid in self._specs:
            self.choose(oid)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id in self._specs:
            self.choose(event.option.id)

    def action_focus_list(self) -> None:
        self.query_one(OptionList).focus()
