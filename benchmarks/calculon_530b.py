"""Where LSDT and Calculon differ on Turing-530B over 5,128 A100s with 2,520 sequences.

    python benchmarks/calculon_530b.py

Calculon (Isaev et al., SC'23; github.com/calculon-ai/calculon at caa4b11, run here with
`bin/calculon llm-optimal-execution models/turing-530B.json 5128 2520 float16
systems/a100_80g.json out.json -m`) answers DP 641 x TP 8 x PP 1, batch 1,923 (641 x 3), micro-batch
3, attention-only recompute, optimizer sharding (ZeRO-1), weights, activations and optimizer
offloaded: 17.30 s per step (fw 3.25 + bw 6.15 + exposed DP 6.29 + exposed offload 1.45 +
recompute 0.16), 8.4 GB of GPU memory. Neither figure is a measurement: both are models.

This script prints LSDT's own best layout and Calculon's layout evaluated by LSDT, once with LSDT's
constants (engine/sizing/efficiency.py) and once with the constants in Calculon's
systems/a100_80g.json (CALCULON_A100 below), so what separates the two answers is visible term by
term.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.sizing.efficiency import efficiency_for  # noqa: E402
from engine.sizing.refine import layout_text, predict  # noqa: E402
from engine.specs import ModelSpec, load_hardware  # noqa: E402

# Megatron-Turing NLG 530B as Calculon's models/turing-530B.json has it (the 530B rows of
# shared/validation/published_runs.toml have the same shape).
TURING_530B = ModelSpec(name="turing-530b", n_layer=105, d_model=20480, n_head=128, vocab_size=51200, seq_len=2048)
CALCULON_STEP_S = 17.30  # Calculon's total_time for its best layout (run above)
# Calculon's systems/a100_80g.json: large GEMMs (>= 128 GFLOP) at 0.95 of 312 TFLOP/s, the
# InfiniBand tier at 0.9 of 25 GB/s, NVLink at 0.65 of 300 GB/s, and a collective taking 2% of
# the compute it overlaps (the IB network's processor_usage).
CALCULON_A100 = {"eta_gemm": 0.95, "eta_inter": 0.9, "eta_intra": 0.65, "overlap_slowdown": 0.02}
CALCULON_LAYOUT = dict(tp=8, pp=1, micro_batch=3, recompute="selective", zero=1,
                       offload_optimizer=True, offload_weights=True, offload_activations=True)
TERMS = ("compute_s", "tp_comm_s", "dp_comm_s", "dp_comm_exposed_s", "host_offload_exposed_s")


def row(label: str, r: dict) -> str:
    b = r["breakdown"]
    terms = "  ".join(f"{k.removesuffix('_s')} {b[k]:.2f}" for k in TERMS)
    return (f"{label:44s} {r['step_time_s']:6.2f} s  {r['memory_per_gpu_bytes'] / 1e9:5.1f} GB  {layout_text(r['chosen'])}\n"
            f"{'':44s} {terms}")


def main() -> int:
    hw = load_hardware("a100-80g-sxm")
    lsdt = efficiency_for(hw)
    calc = lsdt.with_(**CALCULON_A100, source="Calculon systems/a100_80g.json")
    kw = dict(gpus=5128, global_batch=2520, flexible=True)
    best = predict(TURING_530B, hw, tp=8, pp=1, micro_batch=3, recompute="none", zero=3, efficiency=lsdt, **kw)
    print(f"Calculon's own answer: {CALCULON_STEP_S:.2f} s per step of 1,923 sequences (a model, not a measurement)\n")
    print(row("LSDT's best layout, LSDT constants", best))
    print(row("Calculon's layout, LSDT constants", predict(TURING_530B, hw, efficiency=lsdt, **kw, **CALCULON_LAYOUT)))
    print(row("Calculon's layout, Calculon's constants", predict(TURING_530B, hw, efficiency=calc, **kw, **CALCULON_LAYOUT)))
    print(row("LSDT's best layout, Calculon's constants", predict(TURING_530B, hw, tp=8, pp=1, micro_batch=3, recompute="none", zero=3,
                                                             efficiency=calc, **kw)))
    print(f"\nLSDT's eta_gemm {lsdt.eta_gemm:.3f} = {lsdt.eta_gemm * hw.peak_flops / 1e12:.0f} TFLOP/s; Calculon's 0.95 = "
          f"{0.95 * hw.peak_flops / 1e12:.0f} TFLOP/s, above the best measured A100 GEMM ({hw.matmul_flops / 1e12:.1f} TFLOP/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
