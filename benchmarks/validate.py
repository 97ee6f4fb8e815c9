"""Validate the Step-2 engineering model against published training runs.

    python benchmarks/validate.py [PATH/TO/published_runs.toml] [--json]

Runs engine.sizing.refine on every row (hardware names are built-in profiles), prints each row's
predicted vs. published step time and error, then the median and max |error|; and, for rows that
report memory (Korthikanti et al. 2022, Fig. 1), the predicted vs. published parameter+optimizer
state and activation memory per GPU.

No per-row constants. What a row does fix is the *software* it ran, a fact of its source:
  - Megatron-LM 2021-2022 rows (Narayanan et al. 2021, Korthikanti et al. 2022, the Megatron README)
    and the DeepSpeed ZeRO-3 rows of Narayanan et al. 2021 Table 2 ran before FlashAttention
    (Dao et al., May 2022) reached these stacks: unfused softmax attention, dropout 0.1 (the GPT-3
    recipe), so attention="unfused", dropout=True.
  - Megatron-LM accumulates and all-reduces gradients in fp32 (the 18 B/param state Korthikanti's
    Fig. 1 implies: precision "bf16-fp32grad"); DeepSpeed ZeRO-3 reduces 16-bit gradients ("bf16").
  - Sequence parallelism exists only in the rows whose note says so (Korthikanti "selective");
    rows without a ZeRO stage ran Megatron's plain data parallelism (ZeRO 0); rows without a
    micro-batch use the model's own choice (the fastest that fits).
  - DeepSpeed's ZeRO-3 (the Table 2 ZeRO-3 rows, full recompute) all-gathers each layer's weights
    again for the recomputed forward (EngineeringModel's zero3_recompute_gather documents why).
  - llm.c uses cuDNN flash attention, no dropout, bf16 gradients.
Everything else -- the efficiencies -- is engine/sizing/efficiency.py's one set of constants, the
same for every GPU, with each profile's own peak, measured matmul ceiling and bandwidths.

Out of sample (leave one source out): the one constant marked FITTED in efficiency.py
(TRAINING_GEMM_FRACTION) is refit on the rows of every *other* source (a grid search on the mean
|log(predicted/published)|), and the held-out source's rows are predicted with it. Both error sets
are printed; the out-of-sample one is what to expect on a run the model never saw.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from engine.sizing import memory as mem  # noqa: E402
from engine.sizing.efficiency import TRAINING_GEMM_FRACTION, efficiency_for  # noqa: E402
from engine.sizing.refine import EngineeringModel, predict  # noqa: E402
from engine.specs import load_hardware, model_from_dict  # noqa: E402

DEFAULT_RUNS = REPO.parent / "shared" / "validation" / "published_runs.toml"
GIB = 2**30


def software(row: dict) -> dict:
    """The attention kernel, dropout and gradient precision of the stack the row ran."""
    src = row.get("source", "")
    if "llm.c" in src:
        return {"attention": "flash", "dropout": False, "precision": "bf16"}
    deepspeed = row.get("zero", 0) >= 1 and "ZeRO" in src
    return {"attention": "unfused", "dropout": True, "precision": "bf16" if deepspeed else "bf16-fp32grad",
            "zero3_recompute_gather": deepspeed}


def run_row(row: dict, fitted: float | None = None) -> dict:
    """One row's prediction; `fitted` replaces the FITTED TRAINING_GEMM_FRACTION (see refit)."""
    model = model_from_dict(row["model"], f"{row['id']} [run.model]")
    hw = load_hardware(row["hardware"])
    sw = software(row)
    sp = "sequence parallel on" in row.get("note", "")
    eff = efficiency_for(hw, TRAINING_GEMM_FRACTION if fitted is None else fitted)
    pred = predict(
        model, hw, gpus=row["gpus"], tp=row["tp"], pp=row["pp"], dp=row["dp"], global_batch=row["global_batch"],
        micro_batch=row.get("micro_batch", "auto"), recompute=row.get("recompute", "auto"), zero=row.get("zero", 0),
        interleave=row.get("interleave", 1), sequence_parallel=sp, efficiency=eff, **sw,
    )
    out = {"id": row["id"], "published_s": row["step_time_s"], "predicted_s": pred["step_time_s"],
           "error": pred["step_time_s"] / row["step_time_s"] - 1, "chosen": pred["chosen"], "mfu": pred["mfu"]}
    if "memory_gib" in row:
        out["memory"] = memory_row(row, model, hw, sw)
    return out


def table_of(row: dict) -> str:
    """The table (or script) a row comes from: its whole `source` string."""
    return row.get("source", "")


def paper_of(row: dict) -> str:
    """The publication a row comes from: `source` up to its first comma or parenthesis
    (Narayanan et al. 2021's Tables 1 and 2 are one paper)."""
    return row.get("source", "").split(",")[0].split(" (")[0].strip()


def mean_log_error(rows: list[dict], fitted: float) -> float:
    return statistics.fmean(abs(math.log(run_row(r, fitted)["predicted_s"] / r["step_time_s"])) for r in rows)


def refit(rows: list[dict], lo: float = 0.50, hi: float = 1.00) -> float:
    """The TRAINING_GEMM_FRACTION in [lo, hi] that minimises the mean |log error| on `rows`: a 0.05
    grid, then a 0.01 grid around its best point (the error is unimodal in it: one knob that scales
    every GEMM)."""
    def best_on(grid: list[float]) -> float:
        return min(grid, key=lambda x: mean_log_error(rows, x))
    coarse = best_on([round(lo + 0.05 * i, 2) for i in range(round((hi - lo) / 0.05) + 1)])
    return best_on([round(x, 2) for x in (coarse + 0.01 * i for i in range(-4, 5)) if lo <= x <= hi])


def leave_one_source_out(rows: list[dict], source_of=table_of) -> tuple[list[dict], dict]:
    """Each source's rows predicted with the constant refit on the rows of the other sources."""
    out, fits = [], {}
    for src in dict.fromkeys(source_of(r) for r in rows):
        fitted = refit([r for r in rows if source_of(r) != src])
        fits[src] = fitted
        out += [run_row(r, fitted) for r in rows if source_of(r) == src]
    return out, fits


def error_summary(results: list[dict]) -> dict:
    errs = [abs(r["error"]) for r in results]
    return {"median": statistics.median(errs), "mean": statistics.fmean(errs), "max": max(errs)}


def memory_row(row: dict, model, hw, sw) -> dict:
    """Korthikanti's Fig. 1 quantities: layer state (no embeddings) and first-stage activations."""
    em = EngineeringModel(model, hw, precision="bf16-fp32grad", attention="unfused", dropout=True)
    tp, pp, v, b = row["tp"], row["pp"], row.get("interleave", 1), row["micro_batch"]
    m = row["global_batch"] // (row["dp"] * b)
    Ls = model.n_layer // pp
    state = Ls * em.layer_params / tp * sum(mem.state_bytes(1, 1, 0, "bf16-fp32grad").values())
    held = mem.inflight_layers(Ls, pp, v, m)
    tokens = b * model.seq_len
    acts_plain = mem.layer_activation_bytes(em.terms, tokens, tp, False, "none") * held
    acts_sel = mem.layer_activation_bytes(em.terms, tokens, tp, True, "selective") * held
    pub = row["memory_gib"]
    pairs = {
        "params_and_optimizer": (state / GIB, pub["params_and_optimizer"]),
        "activations_no_sp_no_recompute": (acts_plain / GIB, pub["activations_no_sp_no_recompute"]),
        "activations_sp_selective": (acts_sel / GIB, pub["activations_sp_selective"]),
    }
    return {k: {"predicted_gib": p, "published_gib": q, "error": p / q - 1} for k, (p, q) in pairs.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="?", default=str(DEFAULT_RUNS))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = tomllib.loads(Path(args.runs).read_text())["run"]
    results = [run_row(r) for r in rows]
    errs = [abs(r["error"]) for r in results]
    mem_errs = [abs(v["error"]) for r in results for k, v in r.get("memory", {}).items() if k.startswith("activations")]
    state_errs = [abs(v["error"]) for r in results for k, v in r.get("memory", {}).items() if k == "params_and_optimizer"]
    summary = {
        "rows": len(results),
        "step_time_abs_error_median": statistics.median(errs),
        "step_time_abs_error_mean": statistics.fmean(errs),
        "step_time_abs_error_max": max(errs),
        "activation_memory_abs_error_max": max(mem_errs) if mem_errs else None,
        "state_memory_abs_error_max": max(state_errs) if state_errs else None,
    }
    oos_table, fits_table = leave_one_source_out(rows, table_of)
    oos_paper, fits_paper = leave_one_source_out(rows, paper_of)
    by_id_table = {r["id"]: r for r in oos_table}
    by_id_paper = {r["id"]: r for r in oos_paper}
    summary["out_of_sample_leave_one_table_out"] = error_summary(oos_table)
    summary["out_of_sample_leave_one_paper_out"] = error_summary(oos_paper)
    summary["training_gemm_fraction_in_use"] = TRAINING_GEMM_FRACTION
    summary["training_gemm_fraction_fit_all_rows"] = refit(rows)
    summary["refit_constants_leave_one_table_out"] = fits_table
    summary["refit_constants_leave_one_paper_out"] = fits_paper
    for r in results:
        r["error_out_of_sample_table"] = by_id_table[r["id"]]["error"]
        r["error_out_of_sample_paper"] = by_id_paper[r["id"]]["error"]
    if args.json:
        json.dump({"rows": results, "summary": summary}, sys.stdout, indent=2)
        print()
        return 0
    print(f"{'run':28s} {'published':>10s} {'predicted':>10s} {'error':>7s} {'LOTO':>7s} {'LOPO':>7s}  layout (mb, recompute, zero, v) / MFU")
    for r in results:
        c = r["chosen"]
        print(f"{r['id']:28s} {r['published_s']:9.2f}s {r['predicted_s']:9.2f}s {r['error'] * 100:+6.1f}% "
              f"{r['error_out_of_sample_table'] * 100:+6.1f}% {r['error_out_of_sample_paper'] * 100:+6.1f}%  "
              f"dp{c['dp']} tp{c['tp']} pp{c['pp']} mb{c['micro_batch']} {c['recompute']} z{c['zero']} v{c['interleave']}  MFU {r['mfu'] * 100:.1f}%")
    print()
    print(f"step time |error| over {len(results)} runs: median {summary['step_time_abs_error_median'] * 100:.1f}%, "
          f"mean {summary['step_time_abs_error_mean'] * 100:.1f}%, max {summary['step_time_abs_error_max'] * 100:.1f}%  (in sample)")
    print(f"TRAINING_GEMM_FRACTION in efficiency.py {TRAINING_GEMM_FRACTION:.2f}; refit on all {len(rows)} rows: "
          f"{summary['training_gemm_fraction_fit_all_rows']:.2f}")
    for label, key, fits in (("table", "out_of_sample_leave_one_table_out", fits_table), ("paper", "out_of_sample_leave_one_paper_out", fits_paper)):
        e = summary[key]
        print(f"out of sample, leave one {label} out (LO{label[0].upper()}O): median {e['median'] * 100:.1f}%, mean {e['mean'] * 100:.1f}%, "
              f"max {e['max'] * 100:.1f}%")
        for src, fitted in fits.items():
            print(f"    without {src[:60]:60s} training_gemm_fraction {fitted:.2f}")
    mem_rows = [r for r in results if "memory" in r]
    if mem_rows:
        print()
        print(f"{'memory (GiB per GPU)':44s} {'published':>9s} {'predicted':>9s} {'error':>7s}")
        for r in mem_rows:
            for key, v in r["memory"].items():
                print(f"{r['id'] + ' ' + key:60s} {v['published_gib']:8.2f} {v['predicted_gib']:8.2f} {v['error'] * 100:+6.2f}%")
        print(f"activation memory |error| max over {len(mem_errs)} values: {summary['activation_memory_abs_error_max'] * 100:.2f}%; "
              f"state memory |error| max over {len(state_errs)}: {summary['state_memory_abs_error_max'] * 100:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
