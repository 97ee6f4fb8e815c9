"""Sparsity lab targets (issue 19) that need a trained model, checked from lab artifacts:

  SAE        validation explained variance >= 0.9 and CE loss recovered >= 0.9 at the chosen L1,
             dead features <= 20 %                                           (sae.csv, chosen row)
  dynamic-k  relu2 model: perplexity within 1 % of dense at k = 0.2;
             gelu / swiglu model: within 2 % at k = 0.5                       (dynamic_k.csv)
  MoE SI     expert-layer neurons more specialised than the trunk's on the four built-in domains
                                                                              (si_modularity.csv)

Usage, either run the stages here (same code as `lsdt sparsity`) or read artifacts made earlier:

    python benchmarks/sparsity_targets.py --sae RUN_DIR --relu2 RUN_DIR --gelu RUN_DIR --moe MOE_RUN_DIR
    python benchmarks/sparsity_targets.py --artifacts SAE_ART RELU2_DK_ART GELU_DK_ART MOE_SI_ART

The settings used for README's figures are the defaults below (one SAE layer, 3 L1 values, 400
steps: what a shared 2-core CPU affords); on a GPU raise --sae-steps and use --layers auto.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.runtime.sparsity.artifacts import read_csv  # noqa: E402


def _run(stage: str, model: str, out: Path, **over) -> Path:
    from engine.runtime.sparsity.pipeline import LabConfig, run_stages

    cfg = LabConfig(model=model, device="cpu", **over)
    run_stages(cfg, [stage], str(out))
    return out


def report_sae(art: Path) -> None:
    for r in read_csv(art / "sae.csv"):
        mark = "  <- chosen" if r["chosen"] == "true" else ""
        print(f"  layer {r['layer']} l1 {float(r['l1']):g}: L0 {float(r['l0']):.1f} / d_sae {r['d_sae']}, "
              f"EV {float(r['explained_variance']):.3f}, CE recovered {r['ce_loss_recovered']}, dead {float(r['dead_frac']):.1%}{mark}")
        if mark:
            ok = float(r["explained_variance"]) >= 0.9 and float(r["ce_loss_recovered"]) >= 0.9 and float(r["dead_frac"]) <= 0.2
            print(f"  SAE target (EV >= 0.9, CE recovered >= 0.9, dead <= 20 %): {'met' if ok else 'NOT met'}")


def report_dk(art: Path, k_target: float, tolerance: float, label: str) -> None:
    for r in read_csv(art / "dynamic_k.csv"):
        k = float(r["k"])
        print(f"  {label} k {k:.1f}: ppl {float(r['perplexity']):.4f} ± {float(r['perplexity_std']):.4f}, "
              f"delta {100 * float(r['quality_delta']):+.3f} % ± {100 * float(r['quality_delta_std']):.3f}, "
              f"FLOPs saved {100 * float(r['flops_reduction']):.1f} %")
        if abs(k - k_target) < 1e-9:
            ok = float(r["quality_delta"]) <= tolerance
            print(f"  {label} target (within {tolerance:.0%} of dense at k = {k_target}): {'met' if ok else 'NOT met'}")


def report_moe(art: Path) -> None:
    rows = [r for r in read_csv(art / "si_modularity.csv") if r["task"] == "all" and r["unit"] == "neuron"]
    trunk = [float(r["SI"]) for r in rows if r["layer"].startswith("trunk")]
    expert = [float(r["SI"]) for r in rows if r["layer"].startswith("expert")]
    for r in rows:
        print(f"  {r['layer']:<10} SI {float(r['SI']):.3f} (null {float(r['SI_null']):.3f})  Q {r['Q']}  communities {r['n_communities']}")
    t, e = sum(trunk) / len(trunk), sum(expert) / len(expert)
    print(f"  mean SI: trunk {t:.3f}, experts {e:.3f}; expert > trunk: {'yes' if e > t else 'NO'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sae", help="an `lsdt train` run for the SAE target")
    ap.add_argument("--relu2", help="a relu2 run for the dynamic-k target")
    ap.add_argument("--gelu", help="a gelu or swiglu run for the dynamic-k target")
    ap.add_argument("--moe", help="an `lsdt moe train` run for the SI comparison")
    ap.add_argument("--layers", default="2")
    ap.add_argument("--sae-steps", type=int, default=400)
    ap.add_argument("--artifacts", nargs=4, metavar=("SAE", "RELU2_DK", "GELU_DK", "MOE_SI"))
    args = ap.parse_args()
    if args.artifacts:
        sae, relu2, gelu, moe = (Path(a) for a in args.artifacts)
    else:
        tmp = Path(tempfile.mkdtemp(prefix="lsdt-sparsity-"))
        sae = _run("sae", args.sae, tmp / "sae", layers=args.layers, sae_steps=args.sae_steps, l1=[3e-3, 1e-2, 3e-2])
        relu2 = _run("dynamic-k", args.relu2, tmp / "relu2")
        gelu = _run("dynamic-k", args.gelu, tmp / "gelu")
        moe = _run("si", args.moe, tmp / "moe", layers="all")
    print("SAE (built-in small model):")
    report_sae(sae)
    print("dynamic-k:")
    report_dk(relu2, 0.2, 0.01, "relu2")
    report_dk(gelu, 0.5, 0.02, "gelu")
    print("MoE specialization (four built-in domains):")
    report_moe(moe)
    return 0


if __name__ == "__main__":
    sys.exit(main())
