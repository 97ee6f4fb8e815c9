"""lsdt quantize -> lsdt seal -> lsdt verify, as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import stat

from engine.runtime import s7l


def test_quantize_seal_verify_end_to_end(tmp_path, tiny_checkpoint, lsdt):
    qdir, model = tmp_path / "q", tmp_path / "model.s7l"
    r = lsdt("quantize", str(tiny_checkpoint), "--out", str(qdir), "--calib", "8", "--eval-seqs", "8", "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["checkpoint_step"] == 7 and report["path"] in ("w8a8", "weight-only")
    ppl = report["perplexity"]
    assert ppl["delta_pct"] == 100 * (ppl["int8"] / ppl["fp32"] - 1)
    assert report["calibration"]["sequences"] == 8 and report["evaluation"]["sequences"] == 8
    assert json.loads((qdir / "report.json").read_text()) == report
    assert len(report["errors"]) == 4 * 6 + 2  # 4 layers x (q k v o up down) + embedding + untied head
    first = {p.name: p.read_bytes() for p in (qdir / "tensors").iterdir()}

    r = lsdt("seal", str(qdir), "--out", str(model), "--json")
    assert r.returncode == 0, r.stderr
    sealed = json.loads(r.stdout)
    assert stat.S_IMODE(os.stat(model).st_mode) == 0o444
    r = lsdt("verify", str(model), "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    assert v["ok"] and v["merkle_root"] == sealed["merkle_root"]
    assert [c["check"] for c in v["checks"]] == [*s7l.CHECKS, "V6_determinism"]

    # deterministic: quantizing again gives the same files and the same root
    r = lsdt("quantize", str(tiny_checkpoint), "--out", str(tmp_path / "q2"), "--calib", "8", "--eval-seqs", "8", timeout=120)
    assert r.returncode == 0, r.stderr
    assert "perplexity" in r.stdout and "next: lsdt seal" in r.stdout
    assert {p.name: p.read_bytes() for p in (tmp_path / "q2" / "tensors").iterdir()} == first
    r = lsdt("seal", str(tmp_path / "q2"), "--out", str(tmp_path / "again.s7l"))
    assert r.returncode == 0 and sealed["merkle_root"] in r.stdout
    assert (tmp_path / "again.s7l").read_bytes() == model.read_bytes()


def test_verify_names_the_first_failure(tmp_path, lsdt):
    good = bytearray(s7l.pack({"w": ("F32", [3], bytes(12))}, {}))
    good[-10] ^= 1  # inside the zero padding after w (12 data bytes, padded to 32)
    bad = tmp_path / "bad.s7l"
    bad.write_bytes(good)
    r = lsdt("verify", str(bad))
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "FAILED padding" in r.stderr
    r = lsdt("verify", str(bad), "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["failed_check"] == "padding"


def test_usage_errors_exit_2_with_one_line(tmp_path, lsdt):
    r = lsdt("verify", str(tmp_path / "missing.s7l"))
    assert r.returncode == 2 and "cannot open" in r.stderr and r.stderr.count("\n") == 1
    r = lsdt("seal", str(tmp_path), "--out", str(tmp_path / "x.s7l"))
    assert r.returncode == 2 and "manifest.json" in r.stderr
    r = lsdt("quantize", str(tmp_path / "nope"), "--out", str(tmp_path / "q"))
    assert r.returncode == 2 and "no such checkpoint" in r.stderr


def test_seal_detects_a_tensor_file_changed_after_quantize(tmp_path, lsdt):
    from engine.runtime.qdir import write_qdir

    write_qdir(tmp_path / "q", {"w": ("I8", (4,), b"\x01\x02\x03\x04")}, {"kind": "test"})
    (tmp_path / "q" / "tensors" / "w.bin").write_bytes(b"\x01\x02\x03\x05")
    r = lsdt("seal", str(tmp_path / "q"), "--out", str(tmp_path / "m.s7l"))
    assert r.returncode == 2 and "SHA-256 does not match" in r.stderr
    assert not (tmp_path / "m.s7l").exists()
