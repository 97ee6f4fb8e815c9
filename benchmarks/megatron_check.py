"""Check LSDT's Megatron-LM record and export against a checkout of the pinned release (maintainers only).

    git clone https://github.com/NVIDIA/Megatron-LM && git -C Megatron-LM checkout core_v0.19.0
    PYTHONPATH=. python benchmarks/megatron_check.py Megatron-LM

Megatron-LM's training code is not on the package index, so CI checks exports against the record in
engine/sizing/megatron_args.py; this script is how that record is kept honest. With the checkout on
sys.path (torch installed; Transformer Engine, Apex and a GPU not needed) it:
  1. compares ARGUMENTS with the parser `add_megatron_arguments` builds (name, dest, kind, choices),
  2. runs each shipped profile's export (and a few layouts) through the release's own
     `validate_args` and `TransformerConfig`,
  3. builds each profile's model on the meta device from its flags with the release's own builder
     (gpt_builders.gpt_builder, as pretrain_gpt.py does: MoE block spec, MLA, MTP) and prints its
     parameter count (tests/sizing/test_export_megatron.py MEGATRON_BUILT_COUNTS).
Where the CPU build lacks something the release asks for, the script stands in for it and says so:
Python 3.12's typing.override, one Triton kernel module, a Hopper GPU for the arch query, the CUDA
device MLA's plain-RoPE embedding asks for, MLA's head widths passed to the local core attention
(neither holds parameters), and --no-rope-fusion / --transformer-impl local (Transformer Engine
kernels; no effect on the rules checked or on the count).

Last run (core_v0.19.0 at 5be96267, 2-core CPU, shared/loaded machine, about 4 minutes): 104 profile x
layout exports valid (the layout string of a one-layer last stage under v4 among them), 0 record
mismatches, and every count in MEGATRON_BUILT_COUNTS, DeepSeek-V3
671,026,404,352 (682,636,472,320 with its MTP module) included.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import os
import sys
import typing
from unittest import mock

from engine.sizing import export
from engine.sizing import megatron_args as mg
from engine.specs import builtin_names, load_model

STUB_MODULES = ("megatron.core.transformer.moe.ops.paged_stash",)  # imports triton unconditionally
KINDS = {"_StoreTrueAction": "true", "_StoreFalseAction": "false", "_StoreAction": "value"}
ONE_RANK = {"gpus": 1, "dp": 1, "tp": 1, "pp": 1, "micro_batch": 1, "recompute": "none", "zero": 0, "interleave": 1,
            "sequence_parallel": False}


def layouts(model) -> dict[str, dict]:
    """A few layouts of 64 ranks (TP the largest of 4, 2, 1 dividing the heads; an odd layer count
    splits unevenly over PP 2) plus an offloading one, and EP 8 for a model with experts."""
    tp = next(t for t in (4, 2, 1) if model.n_head % t == 0)
    first = {"first_stage_layers": model.n_layer // 2} if model.n_layer % 2 else {}
    out = {
        "tp-pp2-zero1": {**ONE_RANK, "gpus": 64, "dp": 32 // tp, "tp": tp, "pp": 2, "zero": 1, "sequence_parallel": tp > 1, **first},
        "zero2-full": {**ONE_RANK, "gpus": 64, "dp": 64 // tp, "tp": tp, "zero": 2, "recompute": "full"},
        "zero3-selective": {**ONE_RANK, "gpus": 64, "dp": 64, "zero": 3, "recompute": "selective"},
        "cp2": {**ONE_RANK, "gpus": 64, "dp": 32 // tp, "tp": tp, "cp": 2, "zero": 1},
        "offload": {**ONE_RANK, "gpus": 8, "dp": 8, "zero": 1, "offload_optimizer": True, "offload_activations": True},
    }
    if model.n_experts:
        out["ep8"] = {**out["tp-pp2-zero1"], "ep": 8}
    # a one-layer last stage under interleaving (the plan's DeepSeek-V3 layout on 2,048 GPUs): only
    # --pipeline-model-parallel-layout expresses it
    pp, v = 16, 4
    if (model.n_layer - 1) % (pp - 1) == 0 and (model.n_layer - 1) // (pp - 1) % v == 0:
        out["pp16-v4-last1"] = {**ONE_RANK, "gpus": 2048, "dp": 2048 // (pp * tp), "tp": tp, "pp": pp, "interleave": v,
                                "last_stage_layers": 1, "zero": 1, "sequence_parallel": tp > 1, "ep": 2 if model.n_experts else 1}
    return out


def models() -> dict[str, object]:
    """Every shipped profile Megatron builds (no two-phase MoE), and DeepSeek-V3 with its MTP module."""
    out = {n: load_model(n) for n in builtin_names("models") if not load_model(n).trunk_layers}
    out["deepseek-v3+mtp1"] = out["deepseek-v3"].with_(mtp_layers=1)
    return out


class _Stub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if any(name == m or name.startswith(m + ".") for m in STUB_MODULES):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        module = mock.MagicMock(name=spec.name)
        module.__path__, module.__spec__, module.__name__ = [], spec, spec.name
        return module

    def exec_module(self, module):
        pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkout", help=f"a Megatron-LM checkout at {mg.RELEASE}")
    root = ap.parse_args().checkout
    sys.path.insert(0, root)
    if not hasattr(typing, "override"):
        typing.override = lambda f: f
    import torch  # noqa: F401  (before the stub, so torch's own optional imports are untouched)

    sys.meta_path.insert(0, _Stub())
    import megatron.training.arguments as arguments
    import megatron.training.utils.common_utils as common_utils
    from megatron.training.argument_utils import core_transformer_config_from_args

    arguments.get_device_arch_version = common_utils.get_device_arch_version = lambda: 9  # Hopper
    failures = 0

    parser = arguments.add_megatron_arguments(argparse.ArgumentParser(allow_abbrev=False))
    actions = {s: a for a in parser._actions for s in a.option_strings}
    for flag, rec in mg.ARGUMENTS.items():
        a = actions.get(flag)
        real = a and (a.dest, KINDS.get(type(a).__name__), tuple(a.choices) if a.choices else None)
        if real != (rec.dest, rec.kind, rec.choices):
            failures += 1
            print(f"ARG MISMATCH {flag}: release {real}, record {(rec.dest, rec.kind, rec.choices)}")

    def megatron_args(flags: list[str], world: int):
        os.environ.update(WORLD_SIZE=str(world), RANK="0")
        if "--use-megatron-fsdp" in flags:
            os.environ.pop("CUDA_DEVICE_MAX_CONNECTIONS", None)
        else:
            os.environ["CUDA_DEVICE_MAX_CONNECTIONS"] = "1"
        sys.argv = ["pretrain_gpt.py", *flags, "--mock-data", "--lr", "1e-4", "--no-rope-fusion"]
        args = arguments.parse_args()
        arguments.validate_args(args, {})
        return args, core_transformer_config_from_args(args)

    profiles = models()
    for name, model in profiles.items():
        for label, layout in layouts(model).items():
            try:
                flags = export.megatron_args(model, layout, 512, 10)
            except Exception as exc:  # LSDT refused (e.g. heads not divisible by this TP): not a release check
                print(f"skip  {name} {label}: {exc}")
                continue
            try:
                megatron_args(flags, layout["gpus"])
                print(f"valid {name} {label}")
            except BaseException as exc:
                failures += 1
                print(f"INVALID {name} {label}: {type(exc).__name__}: {exc}")

    import torch.distributed as dist
    from gpt_builders import gpt_builder  # pretrain_gpt.py's model builder (decoder block and MTP specs)
    from megatron.core import parallel_state
    from megatron.core.tokenizers.utils.build_tokenizer import vocab_size_with_padding

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT="29533")
    dist.init_process_group("gloo", rank=0, world_size=1)
    parallel_state.initialize_model_parallel(1, 1)
    # MLA's plain-RoPE embedding asks torch.cuda for its device (no --use-cpu-initialization there);
    # it holds no parameters, so the CPU stands in
    torch.cuda.current_device = lambda: "cpu"
    # MLA passes its q/k and v head widths to the core attention, which only Transformer Engine's
    # takes; the local DotProductAttention (no parameters) stands in and drops them
    from megatron.core.transformer import dot_product_attention as dpa

    local_init = dpa.DotProductAttention.__init__
    dpa.DotProductAttention.__init__ = lambda self, *a, k_channels=None, v_channels=None, **kw: local_init(self, *a, **kw)
    for name, model in profiles.items():
        flags = export.megatron_args(model, ONE_RANK, 8, 10)
        args, config = megatron_args(flags + ["--transformer-impl", "local", "--no-gradient-accumulation-fusion",
                                              "--no-masked-softmax-fusion", "--no-bias-swiglu-fusion", "--no-bias-dropout-fusion",
                                              "--no-persist-layer-norm", "--use-cpu-initialization", "--init-model-with-meta-device"], 1)
        args.padded_vocab_size = vocab_size_with_padding(args.vocab_size, args)
        with torch.device("meta"):
            built = gpt_builder(args, pre_process=True, post_process=True, config=config)
        print(f"count {name} {sum(p.numel() for p in built.parameters())}")
    print("ok" if not failures else f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
