"""lsdt quantize -> lsdt seal -> lsdt verify, as a user runs them (subprocesses)."""

from __future__ import annotations

import json
import os
import stat

import pytest

from engine.runtime.seal import s7l


@pytest.mark.slow  # three CLI subprocesses, each importing torch: ~6 s idle, ~15 s on the loaded box
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

    r = lsdt("seal", str(qdir), "--out", str(model), "--json")
    assert r.returncode == 0, r.stderr
    sealed = json.loads(r.stdout)
    assert stat.S_IMODE(os.stat(model).st_mode) == 0o444
    r = lsdt("verify", str(model), "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    v = json.loads(r.stdout)
    assert v["ok"] and v["merkle_root"] == sealed["merkle_root"]
    assert [c["check"] for c in v["checks"]] == [*s7l.CHECKS, "V6_determinism"]


def test_quantizing_twice_gives_the_same_files_and_root(tmp_path, tiny_checkpoint):
    """In-process (the CLI test above covers the subprocess path): same checkpoint -> same bytes."""
    from engine.runtime.seal.qdir import read_qdir
    from engine.runtime.seal.quantize_ckpt import quantize_checkpoint

    blobs = []
    for name in ("a", "b"):
        out = quantize_checkpoint(tiny_checkpoint, tmp_path / name, calib=4, eval_seqs=4, act_mode="static")
        assert out.report["perplexity"]["int8"] > 1
        blobs.append(bytes(s7l.pack(*read_qdir(out.out_dir))))
    assert blobs[0] == blobs[1]
    assert (tmp_path / "a" / "report.json").read_bytes() == (tmp_path / "b" / "report.json").read_bytes()


def test_human_output_in_process(tmp_path, tiny_checkpoint, capsys):
    from engine.cli import main

    assert main(["quantize", str(tiny_checkpoint), "--out", str(tmp_path / "q"), "--calib", "4", "--eval-seqs", "4",
                 "--act", "dynamic"]) == 0
    out = capsys.readouterr().out
    assert "activations dynamic" in out and "embed.weight" in out and "next: lsdt seal" in out
    assert "perplexity on" in out and "delta" in out
    assert main(["seal", str(tmp_path / "q"), "--out", str(tmp_path / "m.s7l")]) == 0
    assert "merkle_root" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "m.s7l")]) == 0
    out = capsys.readouterr().out
    assert "V6_determinism" in out and ": OK" in out


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


def test_usage_errors_exit_2_with_one_line(tmp_path, capsys):
    from engine.cli import main

    for argv, expected in ((["verify", str(tmp_path / "missing.s7l")], "cannot open"),
                           (["seal", str(tmp_path), "--out", str(tmp_path / "x.s7l")], "manifest.json"),
                           (["quantize", str(tmp_path / "nope"), "--out", str(tmp_path / "q")], "no such checkpoint")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert expected in err and err.count("\n") == 1, err


def test_seal_detects_a_tensor_file_changed_after_quantize(tmp_path, lsdt):
    from engine.runtime.seal.qdir import write_qdir

    write_qdir(tmp_path / "q", {"w": ("I8", (4,), b"\x01\x02\x03\x04")}, {"kind": "test"})
    rel = json.loads((tmp_path / "q" / "manifest.json").read_text())["tensors"][0]["file"]
    (tmp_path / "q" / rel).write_bytes(b"\x01\x02\x03\x05")
    r = lsdt("seal", str(tmp_path / "q"), "--out", str(tmp_path / "m.s7l"))
    assert r.returncode == 2 and "SHA-256 does not match" in r.stderr
    assert not (tmp_path / "m.s7l").exists()
