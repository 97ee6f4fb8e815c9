"""`lsdt predict` results are a typed record (engine/sizing/prediction.py): Prediction.of reads
refine.predict's dict once, and to_dict() gives it back key for key (the `--json` object)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from engine.sizing.prediction import Prediction
from engine.sizing.refine import PREDICT_KEYS, predict
from engine.specs import load_hardware, load_model
from tests.conftest import run_lsdt

CASES = [
    ("gpt3-175b", "a100-80g-sxm", dict(gpus=1024, tp=8, pp=16, global_batch=1536)),
    ("gpt3-175b", "a100-80g-sxm", dict(gpus=1024, tp=8, pp=16, global_batch=1536, micro_batch=1, recompute="full",
                                       zero=0, interleave=2)),
    ("llama3-70b", "h100-sxm", dict(gpus=64, tp=8, pp=2, global_batch=1001, flexible=True, offload_optimizer=True,
                                    offload_weights=True, interleave="auto")),
    ("llama3-70b", "h100-sxm", dict(gpus=64, tp=4, pp=4, cp=2, global_batch=512, first_stage_layers=18,
                                    last_stage_layers=18, precision="fp8")),
    ("llama3-70b", "h100-sxm", dict(gpus=8, tp=8, pp=1, global_batch=8, micro_batch=8, recompute="none", zero=0)),  # no fit
]


@pytest.mark.parametrize("model, hardware, kw", CASES)
def test_to_dict_gives_refines_dict_back(model, hardware, kw):
    r = predict(load_model(model), load_hardware(hardware), **kw)
    p = Prediction.of(r)
    assert p.to_dict() == r and list(p.to_dict()) == list(PREDICT_KEYS)
    assert list(p.to_dict()["chosen"]) == list(r["chosen"]) and list(p.to_dict()["breakdown"]) == list(r["breakdown"])
    assert p.chosen.layout.dp * p.chosen.layout.tp * p.chosen.layout.pp * p.chosen.layout.cp == p.chosen.gpus
    assert p.breakdown.efficiency.eta_gemm == r["breakdown"]["efficiency"]["eta_gemm"]


def test_a_key_the_record_does_not_know_is_refused():
    r = predict(load_model("gpt3-175b"), load_hardware("a100-80g-sxm"), gpus=1024, tp=8, pp=16, global_batch=1536)
    with pytest.raises(TypeError):
        Prediction.of({**r, "breakdown": {**r["breakdown"], "new_term_s": 1.0}})  # a new term must be typed, not dropped
    with pytest.raises(dataclasses.FrozenInstanceError):
        Prediction.of(r).fits = False  # type: ignore[misc]


def test_cli_json_is_to_dict():
    args = ["--model", "llama3-70b", "--hardware", "h100-sxm", "--gpus", "64", "--tp", "8", "--pp", "2",
            "--global-batch", "1001", "--flexible-batch", "--offload", "optimizer,weights", "--interleave", "auto"]
    out = run_lsdt("predict", *args, "--json")
    assert out.returncode == 0, out.stderr
    want = Prediction.of(predict(load_model("llama3-70b"), load_hardware("h100-sxm"), **CASES[2][2])).to_dict()
    assert json.loads(out.stdout) == want
