"""`lsdt bands` results are typed records (engine/sizing/bands_result.py); `to_dict()` is the `--json`
object: exactly the keys docs/bands.md "`--json` (exact keys)" documents, and what the CLI prints."""

from __future__ import annotations

import dataclasses
import json

import pytest

from engine.sizing import bands as B
from engine.sizing.bands_result import BandsPlan, DepthRow
from engine.sizing.pilot import read_metrics
from engine.specs import load_hardware
from tests.conftest import run_lsdt
from tests.sizing.test_bands import PROBE
from tests.sizing.test_pilot import curve

# docs/bands.md, "`--json` (exact keys)", in the order the JSON has them.
TOP = ["hardware", "peak_flops", "memory_bytes", "usable_memory_bytes", "hours", "window_s", "mfu", "sustained_flops",
       "global_batch_tokens", "shape", "rows", "envelope_flop", "split", "curriculum", "recommended", "fallback",
       "measured", "probe_device", "pilot"]
ROW = ["depth", "d_model", "n_head", "n_kv_head", "head_dim", "params", "matmul_params", "flops_per_token", "seq_len",
       "state_bytes", "fixed_bytes", "activation_bytes_per_seq", "max_device_batch", "device_batch", "grad_accum",
       "memory_bytes", "memory_breakdown", "fits", "tokens_per_s", "tokens_per_s_source", "step_time_s",
       "tokens_in_window", "pretrain_tokens", "tokens_per_param", "chinchilla_tokens", "band", "by_seq", "verdict"]
MEMORY = ["weights_bytes", "grads_bytes", "adam_bytes", "autocast_copies_bytes", "activations_bytes"]
BY_SEQ = ["seq_len", "flops_per_token", "activation_bytes_per_seq", "max_device_batch", "device_batch", "grad_accum",
          "memory_bytes", "tokens_per_s", "tokens_per_s_source", "measured_peak_vram_bytes", "tokens_in_window"]
SPLIT = ["pretrain_fraction", "sft_fraction", "pretrain_s", "sft_s", "pretrain_flop", "sft_flop", "depth",
         "pretrain_tokens", "sft_tokens"]
CURRICULUM = ["stages", "time_s", "tokens", "flop", "depth"]
STAGE = ["seq_len", "time_fraction", "time_s", "tokens_per_s", "tokens", "flop", "device_batch", "grad_accum", "fits"]
CHOICE = ["depth", "band", "tokens_per_param", "reason"]
MEASURED = ["depth", "seq_len", "device_batch", "grad_accum", "tok_per_s", "step_time_s", "peak_vram_bytes", "mfu",
            "status", "tokens_in_window"]
SHAPE = ["head_dim", "n_kv_head", "window_pattern", "vocab_size", "ffn", "tie_embeddings"]
PILOT = ["status", "reason", "metric", "axis", "unit", "target", "confidence", "points", "bins", "x_first", "x_last",
         "extrapolation", "last_loss", "fit", "loss_at_target", "range"]
FIT = ["a", "b", "c", "rmse"]


def check_keys(d: dict) -> None:
    assert list(d) == TOP and list(d["shape"]) == SHAPE and list(d["split"]) == SPLIT
    for row in d["rows"]:
        assert list(row) == ROW and list(row["memory_breakdown"]) == MEMORY
        assert all(list(x) == BY_SEQ for x in row["by_seq"])
    assert list(d["curriculum"]) == CURRICULUM and all(list(s) == STAGE for s in d["curriculum"]["stages"])
    assert list(d["recommended"]) == CHOICE and (d["fallback"] is None or list(d["fallback"]) == CHOICE)
    assert d["measured"] is None or all(list(m) == MEASURED for m in d["measured"])
    assert d["pilot"] is None or (list(d["pilot"]) == PILOT and list(d["pilot"]["fit"]) == FIT
                                  and isinstance(d["pilot"]["range"], list))


def test_the_documented_keys_are_in_docs_bands_md():
    import pathlib

    doc = (pathlib.Path(__file__).parents[2] / "docs" / "bands.md").read_text()
    section = doc[doc.index("## `--json` (exact keys)"):doc.index("## Formulas")]
    for key in {*TOP, *ROW, *MEMORY, *BY_SEQ, *SPLIT, *CURRICULUM, *STAGE, *CHOICE, *MEASURED, *SHAPE, *PILOT, *FIT}:
        assert f"`{key}`" in section or f"`{key}[]`" in section, key


@pytest.mark.parametrize("extra", [[], ["--hours", "8", "--depths", "12,16", "--kv-heads", "2", "--curriculum", "512:0.5,2048:0.5"],
                                   ["--probe", "PROBE", "--pilot", "PILOT"]])
def test_cli_json_is_to_dict_and_has_the_documented_keys(tmp_path, extra):
    probe, pilot = tmp_path / "probe.json", tmp_path / "metrics.jsonl"
    probe.write_text(json.dumps(PROBE))
    pilot.write_text("".join(json.dumps(r) + "\n" for r in curve(2.5, 30.0, 0.4)))
    args = [str(probe) if a == "PROBE" else str(pilot) if a == "PILOT" else a for a in extra]
    r = run_lsdt("bands", *args, "--json")
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    check_keys(printed)
    if "--probe" in extra:
        assert printed["measured"] and printed["pilot"]["status"] == "ok"
    hours = 8.0 if "--hours" in extra else 24.0
    depths = [12, 16] if "--depths" in extra else list(B.DEFAULT_DEPTHS)
    same = B.plan_bands(load_hardware("rtx4090"), hours=hours, depths=depths,
                        n_kv_head=2 if "--kv-heads" in extra else None,
                        curriculum=[(512, 0.5), (2048, 0.5)] if "--curriculum" in extra else None,
                        probe=B.read_probe(probe) if "--probe" in extra else None,
                        pilot=read_metrics(pilot) if "--pilot" in extra else None)
    assert same.to_dict() == printed  # the record is the JSON, number for number


def test_records_are_frozen_and_read_by_attribute():
    plan = B.plan_bands(load_hardware("rtx4090"), hours=8)
    assert isinstance(plan, BandsPlan) and all(isinstance(r, DepthRow) for r in plan.rows)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.rows[0].depth = 99  # type: ignore[misc]
    row = plan.row(plan.recommended.depth)
    assert row.at_seq(row.seq_len).device_batch == row.device_batch
    assert row.memory_breakdown.total_bytes == pytest.approx(row.memory_bytes)
    assert plan.measured_rows == 0 and plan.row(999) is None
