"""The sealed format and what it seals: s7l (the torch-free file format), quant / quant_infer (INT8
models), quantize_ckpt and qdir (`lsdt quantize`).

This package fills the s7l registry of V6 determinism checks: s7l.verify runs the check registered
for a file's metadata "kind" and never imports a module by name. The check itself imports torch
only when a file of a model kind is verified.
"""

from __future__ import annotations

from engine.runtime.seal import s7l

# The sealed-model kinds this build can rebuild and run (header metadata "kind").
GPT_KIND = "lsdt-int8-gpt"
MOE_KIND = "lsdt-int8-moe"


def _int8_determinism(path, metadata: dict[str, str]) -> dict:
    from engine.runtime.seal.quant_infer import determinism_check  # torch: only once a model file is verified

    return determinism_check(path, metadata)


for _kind in (GPT_KIND, MOE_KIND):
    s7l.register_v6_check(_kind, _int8_determinism)
