"""The Plan form's text -> a Plan, with one error per field (textual-free, unit-tested).

The form holds strings as the user types them. `plan_from_form` turns them into an
`engine.plan.Plan` or returns the fields that are wrong, each with a one-line message, so the UI
can show each message next to its field. Numbers use the input grammar the CLI uses (engine/inputs.py:
260e9, 1.5T, 4M, 1_000), so a value typed in the TUI means what it means on the command line.
An empty field means the documented default (engine.specs.GOAL_DEFAULTS, engine.sizing.design).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from engine import inputs
from engine.errors import UserError
from engine.plan import Plan
from engine.sizing.design import DEFAULT_ETA_COMPUTE, DEFAULT_ETA_FABRIC
from engine.sizing.objective import OBJECTIVES
from engine.sizing.physics import default_goal
from engine.specs import GOAL_DEFAULTS, PRECISIONS, HardwareSpec, ModelSpec

FORM_FIELDS = ("tokens", "deadline", "batch", "seq", "precision", "objective", "price", "eta_gemm", "eta_compute",
               "eta_fabric", "G")


@dataclass
class FormValues:
    """The Plan form as typed. Every field is the raw text; '' means 'use the default'."""

    tokens: str = ""  # training tokens; '' -> 20 x parameters (Chinchilla)
    deadline: str = ""  # days, or a number with s/min/h/d/w; '' -> 30 days
    batch: str = ""  # global batch in tokens; '' -> 4M tokens
    precision: str = "bf16"  # one of engine.specs.PRECISIONS
    eta_compute: str = ""  # the seed model's sustained / peak FLOP/s; '' -> engine default
    eta_fabric: str = ""  # the seed model's achieved / nominal link bandwidth; '' -> engine default
    seq: str = ""  # training sequence length in tokens (--seq); '' -> the model profile's
    eta_gemm: str = ""  # the engineering model's GEMM efficiency (--eta-gemm); '' -> the hardware profile's (engine/sizing/efficiency.py)
    price: str = ""  # $ per GPU-hour (--price-per-gpu-hour); '' -> the hardware profile's list price
    objective: str = "gpus"  # auto-size: one of engine.sizing.objective.OBJECTIVES
    fixed_G: bool = False  # False: auto-size (smallest G); True: test the cluster G
    G: str = ""  # devices, used only when fixed_G


@dataclass
class FormResult:
    plan: Plan | None
    errors: dict[str, str] = field(default_factory=dict)  # field name -> one-line message


def parse_duration_s(text: str) -> float:
    """'30' (days), '36h', '90 min', '2w', '1e6s' -> seconds (> 0): the grammar's duration."""
    return inputs.duration_s(text, "deadline")


def plan_from_form(form: FormValues, model: ModelSpec | None, hardware: HardwareSpec | None,
                   carried: Plan | None = None) -> FormResult:
    """Validate every field (all errors at once, not only the first) and build the Plan.

    `carried` is the plan the form was last filled from (an opened file): its refined-model
    efficiencies stay while its hardware is kept, as `lsdt plan --load` keeps them.
    """
    errors: dict[str, str] = {}

    def take(name: str, fn):
        try:
            return fn()
        except UserError as exc:
            errors[name] = str(exc)
            return None

    tokens = take("tokens", lambda: inputs.positive_float(form.tokens, "tokens")) if form.tokens.strip() else None
    deadline_s = take("deadline", lambda: parse_duration_s(form.deadline)) if form.deadline.strip() else None
    batch = take("batch", lambda: inputs.positive_int(form.batch, "global batch (tokens)")) if form.batch.strip() else None
    if form.precision not in PRECISIONS:
        errors["precision"] = f"precision = {form.precision!r}; accepted: {' | '.join(PRECISIONS)}"
    eta_c = take("eta_compute", lambda: inputs.fraction(form.eta_compute, "eta_compute")) if form.eta_compute.strip() else DEFAULT_ETA_COMPUTE
    eta_f = take("eta_fabric", lambda: inputs.fraction(form.eta_fabric, "eta_fabric")) if form.eta_fabric.strip() else DEFAULT_ETA_FABRIC
    seq = take("seq", lambda: inputs.positive_int(form.seq, "seq (tokens)")) if form.seq.strip() else None
    eta_g = take("eta_gemm", lambda: inputs.fraction(form.eta_gemm, "eta_gemm")) if form.eta_gemm.strip() else None
    price = take("price", lambda: inputs.non_negative_float(form.price, "price ($/GPU-h)")) if form.price.strip() else None
    if form.objective not in OBJECTIVES:
        errors["objective"] = f"objective = {form.objective!r}; accepted: {' | '.join(OBJECTIVES)}"
    G = None
    if form.fixed_G:
        if not form.G.strip():
            errors["G"] = "G: fixed-G mode needs a device count (an integer > 0)"
        else:
            G = take("G", lambda: inputs.positive_int(form.G, "G"))
    if model is None:
        errors["model"] = "pick a model profile (or give a path to a TOML / config.json)"
    if hardware is None:
        errors["hardware"] = "pick a hardware profile (or give a path to a TOML)"
    if errors:
        return FormResult(None, errors)
    if seq is not None and seq != model.seq_len:
        try:
            model = model.with_(seq_len=seq, source=f"{model.source}; seq_len {seq:,} (lsdt-tui)".lstrip("; "))
        except UserError as exc:
            return FormResult(None, {"seq": str(exc)})
    goal = default_goal(model, tokens=tokens, deadline_s=deadline_s, global_batch_tokens=batch, precision=form.precision)
    plan = Plan(model=model, hardware=hardware, goal=goal, G=G, eta_compute=eta_c, eta_fabric=eta_f,
                objective=form.objective, price_per_gpu_hour=price)
    return FormResult(replace(plan, efficiency_refined=refined_efficiency(plan, eta_g, carried)))


def refined_efficiency(plan: Plan, eta_gemm: float | None, carried: Plan | None):
    """The engineering model's efficiencies, resolved as engine/commands/plan.py resolves them: the
    opened plan's while its hardware is kept, else the hardware profile's (None); a typed
    eta_gemm (like --eta-gemm) sets its GEMM efficiency. The seed's eta_compute never does."""
    eff = carried.efficiency_refined if carried is not None and carried.hardware == plan.hardware else None
    if eta_gemm is not None:
        from engine.sizing.efficiency import efficiency_for

        base = eff or efficiency_for(plan.hardware)
        if base.eta_gemm != eta_gemm:
            eff = base.with_(eta_gemm=eta_gemm, source=f"eta_gemm {eta_gemm:g} (lsdt-tui)")
    return eff


def form_from_plan(plan: Plan) -> FormValues:
    """The form that reproduces a (loaded) plan exactly, as a user would have typed it: a default
    stays an empty field (its placeholder, e.g. "20 x params", shows), a count reads 300B or
    4_194_304, not 260308992000 (issue 17)."""
    g = plan.goal
    defaults = default_goal(plan.model, precision=g.precision)
    return FormValues(
        tokens="" if g.tokens == defaults.tokens else human_exact(g.tokens),
        deadline=_format_days(g.deadline_s),
        batch="" if g.global_batch_tokens == defaults.global_batch_tokens else human_exact(g.global_batch_tokens),
        precision=g.precision,
        # A default efficiency stays an empty field: "not set", as a flag not given on the CLI.
        eta_compute="" if plan.eta_compute == DEFAULT_ETA_COMPUTE else _exact(plan.eta_compute),
        eta_fabric="" if plan.eta_fabric == DEFAULT_ETA_FABRIC else _exact(plan.eta_fabric),
        fixed_G=plan.G is not None,
        G="" if plan.G is None else str(plan.G),
        price="" if plan.price_per_gpu_hour is None else _exact(plan.price_per_gpu_hour),
        objective=plan.objective,
    )


def human_exact(value: float) -> str:
    """A count as a user types it, and that parses back to exactly `value` (engine.commands.common
    reads k/M/B/T and underscores): 300B, 1.5T, 2M; else the digits grouped by underscores
    (4_096, 2_097_152)."""
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        short = f"{value / scale:g}"
        nice = len(short.replace(".", "").lstrip("-")) <= 3  # 300B, 1.5T; not 4.096k
        if abs(value) >= scale and nice and "e" not in short and float(short) * scale == value:
            return short + suffix
    if float(value).is_integer():
        return f"{int(value):_}"
    return _exact(value)


def _exact(value: float) -> str:
    """Short when that loses nothing (260e9 -> '2.6e+11'), else every digit: a reopened plan must
    recompute to the same numbers."""
    short = f"{value:g}"
    if float(short) == value:
        return short
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _format_days(seconds: float) -> str:
    """Days when that is exact (the field's unit), else exact seconds with an 's'."""
    days = _exact(seconds / 86400.0)
    if float(days) * 86400.0 == seconds:
        return days
    return f"{_exact(seconds)}s"


# An engine UserError's `field` (the Plan/Goal key physics and design reject) -> the form field to mark.
FORM_FIELD_OF_KEY = {"global_batch_tokens": "batch", "eta_compute": "eta_compute", "eta_fabric": "eta_fabric",
                     "eta_gemm": "eta_gemm", "price_per_gpu_hour": "price", "seq_len": "seq",
                     "deadline_s": "deadline", "tokens": "tokens", "G": "G"}


DEFAULT_PLACEHOLDERS = {
    "tokens": f"{GOAL_DEFAULTS['tokens_per_param']:g} x params",
    "deadline": f"{GOAL_DEFAULTS['deadline_s'] / 86400:g} d",
    "batch": f"{GOAL_DEFAULTS['global_batch_tokens']:,}",
    "eta_compute": f"{DEFAULT_ETA_COMPUTE:g}",
    "eta_fabric": f"{DEFAULT_ETA_FABRIC:g}",
    "seq": "model's",
    "eta_gemm": "profile's",
    "price": "list price",
}
