"""A trained-shape GPT -> INT8: module swap, ties, perplexity, seal -> rebuild, V6."""

from __future__ import annotations

import json

import pytest
import torch

from engine.errors import UserError
from engine.runtime.seal import s7l
from engine.runtime.seal.quant import Int8Embedding, Int8Linear
from engine.runtime.seal.quant_infer import build_int8_gpt, determinism_check, perplexity, quantize_gpt

from .conftest import tiny_gpt


@pytest.mark.parametrize("tie", [False, True])
def test_every_matrix_is_swapped_and_ties_are_stored_once(tie, calib):
    model = tiny_gpt(tie=tie)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = quantize_gpt(model, calib, "static")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # input untouched
    assert not list(r.model.parameters())  # nothing left in fp32
    assert isinstance(r.model.embed, Int8Embedding) and isinstance(r.model.lm_head, Int8Linear)
    quant_meta = json.loads(r.metadata["quant"])
    if tie:
        assert quant_meta["ties"] == {"lm_head": "embed"}
        assert "lm_head.weight" not in r.tensors and "lm_head.act_scale" in r.tensors
        assert r.model.lm_head.weight is r.model.embed.weight
    else:
        assert quant_meta["ties"] == {} and r.tensors["lm_head.weight"].dtype == torch.int8
    n_weights = len([n for n in r.tensors if n.endswith(".weight")])
    assert len(r.errors) == n_weights and all(0 < e.rel_fro < 0.02 for e in r.errors)
    assert r.path == "w8a8" or r.path == "weight-only"


@pytest.mark.parametrize("act_mode", ["static", "dynamic"])
def test_int8_perplexity_close_to_fp32(act_mode, calib, heldout):
    model = tiny_gpt(ffn="relu2")
    r = quantize_gpt(model, calib, act_mode)
    fp32, int8 = perplexity(model, heldout), perplexity(r.model, heldout)
    assert abs(int8 / fp32 - 1) < 0.01


def test_static_without_calibration_is_a_user_error():
    with pytest.raises(UserError, match="calibration"):
        quantize_gpt(tiny_gpt(), None, "static")


@pytest.mark.parametrize("tie", [False, True])
def test_seal_rebuild_gives_the_same_logits_and_passes_V6(tmp_path, calib, tie):
    r = quantize_gpt(tiny_gpt(tie=tie), calib, "static")
    info = s7l.seal_tensors(r.tensors, tmp_path / "m.s7l", r.metadata)
    tensors, meta = s7l.load_tensors(info.path)
    rebuilt = build_int8_gpt(tensors, meta)
    x = torch.randint(0, 64, (2, 32), generator=torch.Generator().manual_seed(5))
    assert torch.equal(rebuilt(x)[0], r.model(x)[0])
    report = s7l.verify(info.path)
    assert report.ok and report.checks[-1]["check"] == "V6_determinism" and report.checks[-1]["ok"] is True
    again = s7l.seal_tensors(quantize_gpt(tiny_gpt(tie=tie), calib, "static").tensors, tmp_path / "n.s7l", r.metadata)
    assert again.merkle_root == info.merkle_root and again.path.read_bytes() == info.path.read_bytes()


def test_V6_is_not_applicable_without_a_model_and_fails_on_a_broken_one(tmp_path):
    plain = s7l.seal_tensors({"w": torch.ones(2)}, tmp_path / "p.s7l", {"kind": "other"})
    check = determinism_check(plain.path, {"kind": "other"})
    assert check["ok"] is None and "n/a" in check["detail"]
    report = s7l.verify(plain.path)
    assert report.ok and report.checks[-1]["ok"] is None
    broken = s7l.seal_tensors({"w": torch.ones(2)}, tmp_path / "b.s7l", {"kind": "lsdt-int8-gpt", "config": "{}", "quant": "{}"})
    report = s7l.verify(broken.path)
    assert not report.ok and report.failed_check == "V6_determinism" and "cannot be built" in report.failure


def test_V6_check_registry_holds_every_kind_this_build_rebuilds():
    """The seal package registers a V6 check for each model kind quant_infer can build (none by a
    module-name string), so `lsdt verify` runs V6 on GPT and MoE files alike."""
    from engine.runtime.seal import quant_infer

    assert set(s7l.V6_CHECKS) == set(quant_infer.MODEL_KINDS) == {quant_infer.KIND, quant_infer.MOE_KIND}


def test_verifying_a_non_model_file_does_not_import_torch(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "p.s7l"
    path.write_bytes(s7l.pack({"w": ("U8", [1], b"\x01")}, {"kind": "other"}))
    code = ("import sys; from engine.runtime.seal import s7l; r = s7l.verify(sys.argv[1]); "
            "assert r.ok, r.failure; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=60)


def test_rebuild_rejects_missing_and_extra_tensors(calib):
    r = quantize_gpt(tiny_gpt(), calib, "dynamic")
    short = dict(r.tensors)
    short.pop("blocks.0.attn.q.weight_scale")
    with pytest.raises(UserError, match="lacks"):
        build_int8_gpt(short, r.metadata)
    with pytest.raises(UserError, match="does not use"):
        build_int8_gpt(dict(r.tensors, extra=torch.ones(1)), r.metadata)
