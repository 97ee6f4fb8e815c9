"""A run that is NOT in shared/validation/published_runs.toml: Llama 3 405B pre-training on H100.

    python benchmarks/out_of_sample.py

Published (Dubey et al. 2024, "The Llama 3 Herd of Models", sec. 3.3.2 / Table 4, also shown by
P. Balaji at SC'24): 8,192 GPUs at TP 8, CP 1, PP 16 (DP 64) -> 430 TFLOP/s per GPU; 16,384 GPUs
at DP 128 -> 400 TFLOP/s; sequence 8,192, 16M tokens per batch (2,048 sequences). Not published:
the interleave v, the recompute policy and the FLOP convention. Meta's stack balances 126 layers
over 16 stages by giving the first and last stage one layer fewer (128 slots), so v is 1, 2, 4 or 8;
LSDT needs p x v to divide n_layer for interleaving, so this script runs llama3-405b with 128 layers'
slot count emulated by evaluating each v directly on the engineering model (one layer per slot);
and, since issue 20, the published stage split itself (7 + 14 x 8 + 7 layers) with v = 1, 2, 4, 8
(v divides the middle stages' 8 layers), which LSDT now models.

Second run, DeepSeek-V3 pre-training (DeepSeek-AI 2024, V3 report sec. 3.1-3.3, Table 1): 2,048
H800s (H100 compute, NVLink 400 GB/s bidirectional), PP 16, EP 64 over 8 nodes, ZeRO-1 DP, FP8
GEMMs, sequence 4,096, batch ramped to 15,360 sequences; 180K H800 GPU-hours per trillion tokens =
1,543 tokens/s per GPU; it fit in 80 GB without TP. Published memory recipe (sec. 3.3.2-3.3.3):
recompute the RMSNorms, the MLA up-projections and the SwiGLU output, cache GEMM inputs in FP8 --
what LSDT's "selective" recompute of an MLA model with precision fp8 models. Not published: the
stage split of 61 layers (+ MTP), micro-batch. Their DualPipe overlaps the all-to-alls
(--ep-overlap); node-limited routing (<= 4 nodes per token), which cuts the IB traffic, is not
modelled.

Printed: predicted model TFLOP/s per GPU (PaLM convention, full-context attention) for each v and
recompute policy, the error against the published figure, and whether LSDT's memory model says it
fits in 80 GB. This is a consistency check with unknowns, not a validation row.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.sizing.refine import EngineeringModel, Layout, layout_text, predict  # noqa: E402
from engine.specs import load_hardware, load_model  # noqa: E402

PUBLISHED = ((8192, 430.0), (16384, 400.0))  # GPUs, TFLOP/s per GPU (BF16)


def main() -> int:
    model = load_model("llama3-405b").with_(n_layer=128)  # 126 layers in 128 stage slots (see above)
    real = load_model("llama3-405b")
    hw = load_hardware("h100-sxm")
    em = EngineeringModel(model, hw)
    scale = em.fpt_model / EngineeringModel(real, hw).fpt_model  # report FLOPs of the real 126 layers
    print(f"{'GPUs':>6s} {'v':>2s} {'recompute':9s} {'predicted':>9s} {'published':>9s} {'error':>7s}  memory/GPU")
    for gpus, published in PUBLISHED:
        dp = gpus // (8 * 16)
        for v in (1, 2, 4, 8):
            for rc in ("none", "full"):
                r = em.evaluate(Layout(dp, 8, 16, 1, rc, 1, v, True), 2048)
                tflops = r["model_tflops_per_gpu"] / scale
                print(f"{gpus:6d} {v:2d} {rc:9s} {tflops:9.0f} {published:9.0f} {tflops / published - 1:+7.1%}  "
                      f"{r['memory_per_gpu_bytes'] / 1e9:5.1f} GB {'fits' if r['fits'] else 'DOES NOT FIT'}")
    print()
    print("the published split, 126 layers as 7 + 14 x 8 + 7:")
    em_real = EngineeringModel(real, hw)
    for gpus, published in PUBLISHED:
        dp = gpus // (8 * 16)
        for v in (1, 2, 4, 8):
            for rc in ("none", "full"):
                r = em_real.evaluate(Layout(dp, 8, 16, 1, rc, 1, v, True, first_stage_layers=7, last_stage_layers=7), 2048)
                tflops = r["model_tflops_per_gpu"]
                print(f"{gpus:6d} {v:2d} {rc:9s} {tflops:9.0f} {published:9.0f} {tflops / published - 1:+7.1%}  "
                      f"{r['memory_per_gpu_bytes'] / 1e9:5.1f} GB {'fits' if r['fits'] else 'DOES NOT FIT'}")
    print()
    print("DeepSeek-V3 on 2,048 H800s (PP 16, EP 64, DP 128, FP8; published 1,543 tok/s per GPU):")
    ds = load_model("deepseek-v3")
    h800 = hw.with_(name="h800", label="NVIDIA H800 SXM", intra_node_bw=200e9)  # NVLink 400 GB/s bidirectional
    print(f"{'ep_overlap':10s} {'recompute':9s} {'tok/s/GPU':>9s} {'error':>7s}  memory/GPU  layout")
    for overlap in (False, True):
        for rc in ("none", "selective", "full"):
            r = predict(ds, h800, gpus=2048, tp=1, pp=16, ep=64, global_batch=15360, precision="fp8", recompute=rc,
                        first_stage_layers=4, last_stage_layers=1, interleave="auto", ep_overlap=overlap)
            tps = r["tokens_per_s_per_gpu"]
            print(f"{str(overlap):10s} {rc:9s} {tps:9.0f} {tps / 1543 - 1:+7.1%}  {r['memory_per_gpu_bytes'] / 1e9:5.1f} GB "
                  f"{'fits' if r['fits'] else 'DOES NOT FIT'}  {layout_text(r['chosen'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
