"""`lsdt bands` through a subprocess: JSON contract, probe and pilot files, one-line errors."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_lsdt
from tests.sizing.test_bands import PROBE
from tests.sizing.test_pilot import curve

ROW_KEYS = {"depth", "d_model", "n_head", "params", "matmul_params", "flops_per_token", "seq_len", "max_device_batch",
            "tokens_per_s", "tokens_in_window", "tokens_per_param", "band"}
TOP_KEYS = {"rows", "envelope_flop", "split", "curriculum", "recommended", "fallback"}


def test_json_contract():
    r = run_lsdt("bands", "--hardware", "rtx4090", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert TOP_KEYS <= set(d)
    assert [row["depth"] for row in d["rows"]] == [12, 14, 16, 18, 20]
    for row in d["rows"]:
        assert ROW_KEYS <= set(row)
    assert {"pretrain_fraction", "sft_fraction", "pretrain_tokens", "sft_tokens"} <= set(d["split"])
    assert d["recommended"]["depth"] in (12, 14, 16, 18, 20) and d["pilot"] is None and d["measured"] is None


def test_human_table_marks_recommendation():
    r = run_lsdt("bands", "--hours", "48", "--depths", "12,16,20", "--vocab", "32768", "--kv-heads", "2",
                 "--curriculum", "512:0.5,2048:0.5")
    assert r.returncode == 0, r.stderr
    assert "RECOMMEND" in r.stdout and "\n>" in r.stdout and "curriculum" in r.stdout


def test_probe_file_and_hardware_from_probe(tmp_path):
    p = tmp_path / "probe.json"
    p.write_text(json.dumps(PROBE))
    r = run_lsdt("bands", "--probe", str(p), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["hardware"] == "rtx4090" and d["rows"][0]["tokens_per_s_source"] == "probe"
    assert len(d["measured"]) == 4
    text = run_lsdt("bands", "--probe", str(p)).stdout
    assert "measured map" in text and "oom" in text


def test_pilot_ok_and_refused(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(json.dumps(x) for x in curve(2.5, 30.0, 0.4, n=500, t_end=4 * 3600)) + '\n{"step": 50')
    r = run_lsdt("bands", "--pilot", str(good), "--json")
    assert r.returncode == 0, r.stderr
    pilot = json.loads(r.stdout)["pilot"]
    assert pilot["status"] == "ok" and pilot["axis"] == "time" and pilot["target"] == pytest.approx(24 * 3600 * 0.85)
    r = run_lsdt("bands", "--pilot", str(good), "--pilot-axis", "tokens", "--json")
    d = json.loads(r.stdout)
    assert d["pilot"]["axis"] == "tokens" and d["pilot"]["target"] == d["split"]["pretrain_tokens"]
    short = tmp_path / "short.jsonl"
    short.write_text("\n".join(json.dumps(x) for x in curve(2.5, 30.0, 0.4, n=100, t_end=600)))
    r = run_lsdt("bands", "--pilot", str(short))
    assert r.returncode == 2 and "REFUSED" in r.stdout
    assert r.stderr.count("\n") == 1 and "pilot refused: too short" in r.stderr


@pytest.mark.parametrize("args, needle", [
    (["--depths", "12,x"], "--depths"),
    (["--depths", "0"], "--depths"),
    (["--kv-heads", "4", "--depths", "12"], "n_kv_head = 4 does not divide n_head = 6"),
    (["--window-pattern", "LQ"], "window_pattern"),
    (["--hours", "0"], "--hours"),
    (["--mfu", "1.5"], "--mfu"),
    (["--sft-fraction", "1"], "--sft-fraction"),
    (["--vram-reserve-gb", "nan"], "--vram-reserve-gb"),
    (["--curriculum", "2048,512"], "curriculum"),
    (["--hardware", "nope"], "unknown hardware profile"),
    (["--probe", "/no/such/probe.json"], "no such file"),
    (["--pilot", "/no/such/metrics.jsonl"], "no such file"),
    (["--hardware", "h100-sxm", "--probe", "PROBE"], "measured on hardware"),
    (["--probe", "BADJSON"], "invalid JSON"),
])
def test_errors_are_one_line(tmp_path, args, needle):
    probe = tmp_path / "probe.json"
    probe.write_text(json.dumps(PROBE))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    args = [str(probe) if a == "PROBE" else str(bad) if a == "BADJSON" else a for a in args]
    r = run_lsdt("bands", *args)
    assert r.returncode == 2, r.stdout
    assert needle in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
