"""The MoE tab: two-phase trunk + experts cluster sizing (engine.sizing.moe), as `lsdt moe` computes it.

Tables: parameter budget per component (FP32 and INT8 bytes), the phases (GPUs, tokens, GPU-hours,
wall-clock, memory per GPU, micro-batch), the 32-byte-aligned INT8 layout, and the seed's figures
beside the computed ones. Field values use the input grammar the CLI uses (engine/inputs.py).
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical
from textual.widgets import DataTable, Label, Select, Static, TabbedContent, TabPane

from engine import fmt, inputs  # inputs: the input grammar the CLI uses too
from engine.errors import UserError
from engine.sizing import moe as M
from engine.sizing.design import DEFAULT_ETA_COMPUTE
from engine.specs import builtin_names, load_hardware, load_model

from app.tabs.form_tab import FormTab
from app.widgets.form_field import FormField
from app.widgets.tables import fill_table


def _num(text: str, style: str = "") -> Text:
    return Text(text, style=style, justify="right")


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def _tokens(n: float) -> str:
    """50e9 -> '50B' (the CLI's number grammar reads it back exactly)."""
    return f"{n / 1e9:g}B" if n >= 1e9 else f"{n:g}"


def moe_models() -> list[str]:
    """Built-in models the two-phase design applies to (trunk_layers > 0 with experts)."""
    out = []
    for name in builtin_names("models"):
        try:
            if load_model(name).trunk_layers:
                out.append(name)
        except UserError:
            continue
    return out


def gpu_hours_text(hours: float) -> str:
    """GPU-hours to 0.1, or to two significant digits under 0.1 (phase 3 read "0.0" for 0.028)."""
    return f"{hours:,.1f}" if hours >= 0.1 or hours == 0 else f"{hours:.2g}"


def price_source_text(source: str) -> str:
    """Where the price came from, in this tab's words: the engine says "flag" for a price given
    to it (the CLI's --price-per-gpu-hour); here the user typed it in the $/GPU-h field."""
    return "typed in the $/GPU-h field" if source == "flag" else source


class MoeTab(FormTab):
    HELP_KEYS = (
        ("← / → on the table bar", "Phases · Components · INT8 layout · vs seed"),
        ("any field", "the plan recomputes as you type (the same engine as `lsdt moe`)"),
    )
    DEFAULT_CSS = """
    MoeTab { layout: vertical; height: 1fr; }
    MoeTab #moe-form { height: auto; padding: 0 1; }
    MoeTab #moe-form Grid { grid-size: 3; grid-rows: auto; grid-gutter: 0 2; height: auto; }
    MoeTab .select-row { height: 1; }
    MoeTab .select-row Select { width: 1fr; }
    MoeTab #moe-totals { height: auto; padding: 0 1; }
    MoeTab #moe-body { height: 1fr; }
    MoeTab #moe-body.-stale { opacity: 60%; }
    MoeTab DataTable { height: 1fr; }
    MoeTab .form-status { color: $warning; height: auto; padding: 0 1; display: none; }
    MoeTab .form-status.-shown { display: block; }
    """

    def compose(self) -> ComposeResult:
        models = moe_models() or [M.SEED_MODEL]
        with Vertical(id="moe-form", classes="panel") as form:
            form.border_title = "Two-phase MoE sizing (lsdt moe)"
            with Grid():
                with Horizontal(classes="select-row"):
                    yield Label("model", classes="field-label")
                    yield Select([(n, n) for n in models], value=M.SEED_MODEL if M.SEED_MODEL in models
                                 else models[0], allow_blank=False, compact=True, id="m-model")
                with Horizontal(classes="select-row"):
                    yield Label("hardware", classes="field-label")
                    yield Select([(n, n) for n in builtin_names("hardware")], value=M.SEED_HARDWARE,
                                 allow_blank=False, compact=True, id="m-hardware")
                yield FormField("m_trunk_tokens", "trunk tok", _tokens(M.TRUNK_TOKENS))
                yield FormField("m_expert_tokens", "expert tok", ",".join(_tokens(t) for t in M.EXPERT_TOKENS))
                yield FormField("m_mfu", "MFU", f"{DEFAULT_ETA_COMPUTE:g}")
                yield FormField("m_price", "$/GPU-h", placeholder="profile / seed")
                yield FormField("m_trunk_gpus", "trunk GPUs", str(M.TRUNK_GPUS))
                yield FormField("m_gpus_per_expert", "GPUs/exp", str(M.GPUS_PER_EXPERT))
                yield FormField("m_qa_gpus", "QA GPUs", str(M.QA_GPUS))
            yield Static("", classes="form-status", markup=False)
        with Vertical(id="moe-body"):
            yield Static("computing…", id="moe-totals")
            with TabbedContent(id="moe-tables"):
                with TabPane("Phases", id="moe-phases-pane"):
                    yield DataTable(id="moe-phases", cursor_type="row", zebra_stripes=True)
                with TabPane("Components", id="moe-components-pane"):
                    yield DataTable(id="moe-components", cursor_type="row", zebra_stripes=True)
                with TabPane("INT8 layout", id="moe-layout-pane"):
                    yield DataTable(id="moe-layout", cursor_type="row", zebra_stripes=True)
                with TabPane("vs seed", id="moe-seed-pane"):
                    yield DataTable(id="moe-seed", cursor_type="row", zebra_stripes=True)

    COLUMNS = {
        "moe-phases": ("phase", _num("GPUs"), _num("tokens"), _num("GPU-h"), _num("wall"), _num("mem/GPU"), "micro-batch"),
        "moe-components": ("component", _num("params"), _num("FP32"), _num("INT8")),
        "moe-layout": ("tensor", _num("shape"), _num("numel"), _num("int8 B"), _num("scale B"), _num("stored B")),
        "moe-seed": ("item", _num("seed"), _num("computed"), _num("ratio"), "note"),
    }

    def fill(self, table_id: str, rows: list) -> None:
        fill_table(self.query_one(f"#{table_id}", DataTable), self.COLUMNS[table_id], rows)

    def on_mount(self) -> None:
        for table_id in self.COLUMNS:
            self.fill(table_id, [])
        super().on_mount()

    # ------------------------------------------------------------------ form

    def read_form(self) -> tuple[dict, dict[str, str]]:
        errors: dict[str, str] = {}
        t = self.take
        price = self.text("m_price").strip()
        args = {
            "model": t(errors, "m_model", lambda: load_model(str(self.query_one("#m-model", Select).value))),
            "hardware": t(errors, "m_hardware", lambda: load_hardware(str(self.query_one("#m-hardware", Select).value))),
            "trunk_tokens": t(errors, "m_trunk_tokens", lambda: inputs.positive_float(self.text("m_trunk_tokens"))),
            "expert_tokens": t(errors, "m_expert_tokens", lambda: inputs.token_list(self.text("m_expert_tokens"))),
            "mfu": t(errors, "m_mfu", lambda: inputs.fraction(self.text("m_mfu"))),
            "price_per_gpu_hour": t(errors, "m_price", lambda: inputs.positive_float(price)) if price else None,
            "trunk_gpus": t(errors, "m_trunk_gpus", lambda: inputs.positive_int(self.text("m_trunk_gpus"))),
            "gpus_per_expert": t(errors, "m_gpus_per_expert", lambda: inputs.positive_int(self.text("m_gpus_per_expert"))),
            "qa_gpus": t(errors, "m_qa_gpus", lambda: inputs.positive_int(self.text("m_qa_gpus"))),
        }
        return args, errors

    def engine_call(self, args: dict) -> dict:
        return M.size_moe(args.pop("model"), args.pop("hardware"), **args)

    # engine.sizing.moe's checks across inputs (the form has already checked each value alone,
    # e.g. one token count per expert) name the input they refuse in UserError.field.
    ERROR_FIELDS = {"expert_tokens": "m_expert_tokens", "model": "m_model", "price_per_gpu_hour": "m_price", "mfu": "m_mfu",
                    "trunk_gpus": "m_trunk_gpus", "gpus_per_expert": "m_gpus_per_expert", "qa_gpus": "m_qa_gpus",
                    "trunk_tokens": "m_trunk_tokens"}

    def show_stale(self, why: str) -> None:
        super().show_stale(why)
        self.query_one("#moe-body").add_class("-stale")

    # ------------------------------------------------------------------ result

    def show(self, r: dict) -> None:
        self.query_one("#moe-body").remove_class("-stale")
        totals = Text.assemble(
            ("total ", "dim"), (f"{r['total_gpu_hours']:,.1f} GPU-h", "bold"), ("  wall ", "dim"),
            fmt.duration(r["wall_hours"] * 3600), ("  peak ", "dim"), f"{r['peak_gpus']} GPUs", ("  cost ", "dim"),
            (f"${r['cost_usd']:,.0f}", "bold"), f" at ${r['price_per_gpu_hour']:g}/GPU-h",
            (f"\nprice  {price_source_text(r['price_source'])}", "dim"),
            ("\nparams ", "dim"), f"{r['total_params']:,} (active {fmt.count(r['active_params'])})", ("  INT8 ", "dim"),
            _mb(r["total_int8_bytes"]), ("  on ", "dim"), f"{r['hardware']} x MFU {r['mfu']:g} = {fmt.si(r['sustained_flops'], 'FLOP/s')}",
        )
        self.query_one("#moe-totals", Static).update(totals)

        phases: list = []
        for p in r["phases"]:
            if "micro_batch" not in p:
                micro = "-"
            else:
                micro = f"{p['micro_batch']} x {p['grad_accum']} accum" if p.get("micro_batch") else "OOM"
            fits = p.get("fits", True)
            phases.append((p["name"], _num(str(p["gpus"])), _num(fmt.count(p["tokens"])), _num(gpu_hours_text(p['gpu_hours'])),
                           _num(fmt.duration(p["wall_hours"] * 3600)),
                           _num(fmt.gb(p["memory_per_gpu_bytes"]), "" if fits else "bold red"), micro))
            for x in p.get("experts", []):
                phases.append((Text(f"  expert {x['expert']} ({x['domain']})", style="dim"), _num(str(x["gpus"])),
                               _num(fmt.count(x["tokens"])), _num(gpu_hours_text(x['gpu_hours'])),
                               _num(fmt.duration(x["wall_hours"] * 3600)), "", ""))
        self.fill("moe-phases", phases)

        comps: list = []
        for c in r["components"]:
            comps.append((c["name"], _num(f"{c['params']:,}"), _num(_mb(c["fp32_bytes"])), _num(_mb(c["int8_bytes"]))))
        comps.append((Text("total", style="bold"), _num(f"{r['total_params']:,}", "bold"),
                      _num(_mb(r["total_fp32_bytes"]), "bold"), _num(_mb(r["total_int8_bytes"]), "bold")))
        self.fill("moe-components", comps)

        lay = r["layout"]
        table: list = []
        for t in lay["expert_layer"]:
            table.append((t["tensor"], _num("x".join(str(s) for s in t["shape"])), _num(f"{t['numel']:,}"),
                          _num(f"{t['int8_bytes']:,}"), _num(f"{t['scale_bytes']:,}"), _num(f"{t['stored_bytes']:,}")))
        table.append((Text("per expert layer", style="bold"), "", "", "", "", _num(f"{lay['expert_layer_bytes']:,}", "bold")))
        for a in lay["artifacts"]:
            table.append((Text(a["name"], style="dim"), _num(f"{a['tensors']} tensors"), _num(f"{a['params']:,}"),
                          _num(f"{a['int8_bytes']:,}"), _num(f"{a['scale_bytes']:,}"), _num(f"{a['stored_bytes']:,}")))
        table.append((Text("total (all artifacts)", style="bold"), "", "", "", "", _num(f"{lay['total_stored_bytes']:,}", "bold")))
        self.fill("moe-layout", table)

        seed: list = []
        for i in r["seed_comparison"]:
            off = abs(i["ratio"] - 1) > 0.1
            seed.append((i["item"], _num(f"{i['seed']:.4g}"), _num(f"{i['computed']:.4g}"),
                         _num(f"{i['ratio']:.3g}", "bold yellow" if off else ""), i["note"]))
        self.fill("moe-seed", seed)
        pane = self.query_one("#moe-tables", TabbedContent)
        if r["seed_comparison"]:
            pane.show_tab("moe-seed-pane")
        else:
            pane.hide_tab("moe-seed-pane")  # only the seed's own model has seed figures to compare
