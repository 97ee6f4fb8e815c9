"""The layouts the export tests run every target over, sized to a model (a shared helper, not a test)."""

from __future__ import annotations


def layouts_for(model) -> dict[str, dict]:
    """DP only; TP + PP; ZeRO 1/2/3; recompute; interleave; CP; uneven stages; offload; EP (models with
    experts); sized to the model."""
    L = model.n_layer
    tp = next(t for t in (4, 2, 1) if model.n_head % t == 0)
    pp = next((p for p in (4, 2) if L % p == 0), 4)
    # a layer count neither PP 4 nor 2 divides (DeepSeek-V3's 61) puts the rest on the first stage
    stages = {"first_stage_layers": L - 3 * (L // 4), "last_stage_layers": L // 4} if L % pp else {}
    base = {"micro_batch": 1, "recompute": "none", "zero": 0, "interleave": 1, "sequence_parallel": False}

    def lay(dp=8, tp=1, pp=1, cp=1, **kw):
        return {**base, "gpus": dp * tp * pp * cp, "dp": dp, "tp": tp, "pp": pp, "cp": cp, **kw}

    out = {
        "dp-only": lay(dp=64),
        "tp-pp": lay(tp=tp, pp=pp, sequence_parallel=True, zero=1, **stages),
        "zero2-full-recompute": lay(dp=16, tp=tp, zero=2, recompute="full"),
        "zero3-selective": lay(dp=32, zero=3, recompute="selective"),
        "cp2": lay(dp=4, tp=tp, cp=2, zero=1),
        "uneven": lay(dp=4, pp=2, first_stage_layers=L // 2 - 1, last_stage_layers=L - (L // 2 - 1)),
        "offload": lay(dp=8, zero=1, offload_optimizer=True, offload_activations=True),
    }
    if L % (pp * 2) == 0:
        out["interleave"] = lay(tp=tp, pp=pp, interleave=2, zero=1)
    if model.n_experts:
        out["ep"] = lay(dp=16, tp=tp, pp=pp, sequence_parallel=True, zero=1, ep=8, **stages)
    return out
