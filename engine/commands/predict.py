"""`lsdt predict`: step time, MFU and memory per GPU of one layout (Step-2 engineering model)."""

from __future__ import annotations

import argparse
import sys

from engine import fmt
from engine.commands.common import fraction, path_arg, positive_int, print_json
from engine.sizing.calibrate import calibrated_efficiency
from engine.sizing.efficiency import efficiency_for
from engine.sizing.prediction import Prediction
from engine.sizing.refine import ATTENTION_KERNELS, RECOMPUTE, predict
from engine.specs import PRECISIONS, load_hardware, load_model


def _auto_int(text: str):
    return "auto" if text == "auto" else positive_int(text)


OFFLOAD_PARTS = ("optimizer", "weights", "activations")


def _offload(text: str) -> tuple[str, ...]:
    """A comma-separated subset of OFFLOAD_PARTS."""
    parts = tuple(p.strip() for p in text.split(","))
    bad = [p for p in parts if p not in OFFLOAD_PARTS]
    if bad or not parts:
        raise argparse.ArgumentTypeError(f"{bad[0] if bad else text!r}: accepted: a comma-separated list of {', '.join(OFFLOAD_PARTS)}")
    return parts


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, type=path_arg, help="built-in model profile name, a TOML file or an HF config.json")
    p.add_argument("--hardware", required=True, type=path_arg, help="built-in hardware profile name or a TOML file")
    p.add_argument("--gpus", type=positive_int, required=True, help="GPUs in the job (= dp x tp x pp x cp)")
    p.add_argument("--tp", type=positive_int, default=1, help="tensor-parallel degree (default 1)")
    p.add_argument("--pp", type=positive_int, default=1, help="pipeline-parallel degree (default 1)")
    p.add_argument("--dp", type=positive_int, help="data-parallel degree (default: gpus / (tp x pp x cp))")
    p.add_argument("--cp", type=positive_int, default=1, help="context-parallel degree: each sequence split over cp GPUs (default 1)")
    p.add_argument("--ep", type=positive_int, default=1, help="expert-parallel degree: routed experts sharded over ep of the dp ranks (MoE; default 1)")
    p.add_argument("--first-stage-layers", type=positive_int, help="layers on the first pipeline stage (default: an even split)")
    p.add_argument("--last-stage-layers", type=positive_int, help="layers on the last pipeline stage (default: an even split)")
    p.add_argument("--offload", type=_offload, default=(), metavar="PARTS",
                   help="keep these in host memory, streamed over the host link: optimizer,weights,activations")
    p.add_argument("--flexible-batch", action="store_true",
                   help="when dp does not divide --global-batch, run the largest multiple of dp below it (and say so)")
    p.add_argument("--ep-overlap", action="store_true",
                   help="the stack overlaps MoE all-to-alls with compute (DeepSeek's DualPipe); default: fully exposed")
    p.add_argument("--zero3-recompute-gather", action="store_true",
                   help="ZeRO-3 with full recompute gathers the weights again for the recomputed forward (DeepSpeed); default: once (FSDP)")
    p.add_argument("--mtp", action="store_true", help="HF config.json: count DeepSeek's multi-token-prediction module (num_nextn_predict_layers)")
    p.add_argument("--global-batch", type=positive_int, required=True, help="sequences per optimizer step")
    p.add_argument("--micro-batch", type=_auto_int, default="auto", help="sequences per micro-batch, or auto (fastest that fits)")
    p.add_argument("--seq", type=positive_int, help="sequence length (default: the model's seq_len)")
    p.add_argument("--recompute", choices=(*RECOMPUTE, "auto"), default="auto", help="activation recompute (default auto)")
    p.add_argument("--zero", type=int, choices=(0, 1, 2, 3), default=1, help="ZeRO stage (default 1: sharded optimizer)")
    p.add_argument("--interleave", type=_auto_int, default=1, help="virtual pipeline stages per GPU, or auto (the fastest valid; default 1)")
    p.add_argument("--no-sequence-parallel", action="store_true", help="turn off sequence parallelism (on by default when tp > 1)")
    p.add_argument("--precision", choices=PRECISIONS, default="bf16",
                   help="bf16 (16 B/param state), bf16-fp32grad (18), or fp8 (FP8 GEMMs at the profile's peak_flops_fp8; 16)")
    p.add_argument("--attention", choices=ATTENTION_KERNELS, default="flash", help="attention kernel (default flash)")
    p.add_argument("--dropout", action="store_true", help="model dropout (masks stored; GPT-3-era recipes)")
    # One vocabulary with `lsdt plan`, where --eta-gemm is the engineering model's GEMM efficiency
    # and --eta-compute the seed model's; predict is the engineering model alone, so it takes both
    # spellings for eta_gemm (--eta-compute kept for existing scripts).
    p.add_argument("--eta-gemm", "--eta-compute", dest="eta_compute", type=fraction,
                   help="override the GEMM efficiency (sustained / peak FLOP/s on large matmuls); --eta-compute is an alias")
    p.add_argument("--calibrate", type=path_arg, metavar="PROBE.json", help="take the GEMM efficiency from `lsdt probe` results on this hardware")
    p.add_argument("--json", action="store_true", help="print the prediction as JSON")


def run(args: argparse.Namespace) -> int:
    model, hardware = load_model(args.model, mtp=args.mtp), load_hardware(args.hardware)
    eff = efficiency_for(hardware)
    if args.calibrate:
        eff = calibrated_efficiency(args.calibrate, hardware, eff)
    if args.eta_compute:
        eff = eff.with_(eta_gemm=args.eta_compute, source=f"--eta-gemm {args.eta_compute:g}")
    if args.seq is not None:
        model = model.with_(seq_len=args.seq)
    r = Prediction.of(predict(
        model, hardware, gpus=args.gpus, tp=args.tp, pp=args.pp, dp=args.dp, global_batch=args.global_batch,
        micro_batch=args.micro_batch, seq_len=args.seq, recompute=args.recompute, zero=args.zero,
        interleave=args.interleave, sequence_parallel=False if args.no_sequence_parallel else None,
        precision=args.precision, efficiency=eff, attention=args.attention, dropout=args.dropout,
        cp=args.cp, ep=args.ep, first_stage_layers=args.first_stage_layers, last_stage_layers=args.last_stage_layers,
        offload_optimizer="optimizer" in args.offload, offload_weights="weights" in args.offload,
        offload_activations="activations" in args.offload, flexible=args.flexible_batch, ep_overlap=args.ep_overlap,
        zero3_recompute_gather=args.zero3_recompute_gather,
    ))
    if args.json:
        print_json(r.to_dict())
    else:
        print(render(model.name, hardware, r))
    if not r.fits:
        # Like `lsdt plan` with no solution: the prediction is printed, then one line, exit 2.
        print(f"lsdt: error: does not fit: {fmt.gb(r.memory_per_gpu_bytes)} per GPU > {fmt.gb(hardware.memory_bytes, 0)} "
              "with the most frugal micro-batch/recompute tried; raise --tp/--pp/--zero or lower --micro-batch", file=sys.stderr)
        return 2
    return 0


def render(name: str, hw, r: Prediction) -> str:
    c, b = r.chosen, r.breakdown
    lay = c.layout
    used = c.global_batch_used
    batch = f"{used:,} seq (of {c.global_batch:,} asked: the largest multiple of dp {lay.dp})" if used != c.global_batch else f"{used:,} seq"
    lines = [
        f"LSDT predict: {name} on {c.gpus:,} x {hw.name} -- DP x TP x PP x CP x EP = {lay.text()}",
        f"  batch     {batch} x {c.seq_len:,} tokens; micro-batch {lay.micro_batch} "
        f"({c.microbatches} per replica per step); recompute {lay.recompute}; ZeRO {lay.zero}; "
        f"SP {'on' if lay.sequence_parallel else 'off'}",
        f"  step      {fmt.duration(r.step_time_s)}   {fmt.si(r.tokens_per_s_per_gpu, 'tok/s')} per GPU   "
        f"MFU {fmt.pct(r.mfu)}   {r.model_tflops_per_gpu:.0f} model / {r.hardware_tflops_per_gpu:.0f} hardware TFLOP/s per GPU",
        f"  time      compute {fmt.duration(b.compute_s)} (recompute {fmt.duration(b.recompute_s)}) + bubble {fmt.duration(b.bubble_s)} "
        f"({fmt.pct(b.bubble_fraction)}) + exposed comm {fmt.duration(b.exposed_comm_s)} + optimizer {fmt.duration(b.optimizer_s)}",
        f"  comm      TP {fmt.duration(b.tp_comm_s)}  EP {fmt.duration(b.ep_comm_s)}  CP {fmt.duration(b.cp_comm_exposed_s)} exposed  "
        f"PP {fmt.duration(b.pp_comm_s)}  DP {fmt.duration(b.dp_comm_s)} "
        f"({fmt.duration(b.dp_comm_exposed_s)} exposed)  host offload {fmt.duration(b.host_offload_exposed_s)} exposed",
        f"  memory    {fmt.gb(r.memory_per_gpu_bytes)} of {fmt.gb(hw.memory_bytes, 0)} per GPU "
        f"({'fits' if r.fits else 'DOES NOT FIT'}): " + ", ".join(f"{k} {fmt.gb(v)}" for k, v in b.memory_bytes.items() if v),
        f"  model     eta_gemm {b.efficiency.eta_gemm:g}, attention {b.attention}, {b.precision} "
        f"({b.efficiency.source})",
    ]
    return "\n".join(lines)
