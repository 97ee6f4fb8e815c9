"""The run-directory schema: writer, incremental reader, partial lines, end detection, CSV export."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import UserError
from engine.runtime.train import rundir as rd


def _metric(step, **extra):
    return {"step": step, "time": 1.0 * step, "loss": 2.0, "lr": 1e-3, "tokens": 100 * step, "tok_per_s": 50.0,
            "mfu": None, "vram_alloc_bytes": None, "vram_peak_bytes": None, **extra}


def test_rundir_module_is_torch_free():
    code = "import sys, engine.runtime.train.rundir; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_writer_and_reader_round_trip(tmp_path):
    w = rd.RunWriter(tmp_path)
    w.write_config({"model": {"n_layer": 2, "none_dropped": None}, "train": {"lr": 1e-3}})
    w.event("start", step=0)
    w.metric(_metric(1))
    w.metric(_metric(2, val_loss=1.5, mfu=float("nan")))
    assert rd.read_config(tmp_path) == {"model": {"n_layer": 2}, "train": {"lr": 1e-3}}
    m = rd.read_metrics(tmp_path)
    assert [r["step"] for r in m] == [1, 2] and m[1]["val_loss"] == 1.5 and m[1]["mfu"] is None
    ev = rd.read_events(tmp_path)
    assert ev[0]["event"] == "start" and ev[0]["pid"] == os.getpid()
    assert rd.is_run_dir(tmp_path) and (tmp_path / "checkpoints").is_dir()


def test_metric_without_required_keys_is_refused(tmp_path):
    with pytest.raises(ValueError, match="lacks"):
        rd.RunWriter(tmp_path).metric({"step": 1})


def test_tail_is_incremental_and_waits_for_a_partial_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    tail = rd.JsonlTail(path)
    assert tail.poll() == []
    path.write_bytes(b'{"step": 1}\n{"step": 2}\n{"step"')
    assert [r["step"] for r in tail.poll()] == [1, 2]
    assert tail.poll() == []
    with open(path, "ab") as fh:
        fh.write(b': 3}\n')
    assert [r["step"] for r in tail.poll()] == [3]
    path.write_bytes(b'{"step": 9}\n')  # rewritten shorter: start over
    assert [r["step"] for r in tail.poll()] == [9]


def test_torn_line_in_the_middle_is_skipped(tmp_path):
    (tmp_path / "metrics.jsonl").write_bytes(b'{"step": 1}\n{"ste\n{"step": 3}\n')
    assert [r["step"] for r in rd.read_metrics(tmp_path)] == [1, 3]


def test_status_end_error_running_gone(tmp_path):
    assert rd.run_status(tmp_path).state == "not_started"
    w = rd.RunWriter(tmp_path)
    w.event("start")
    assert rd.run_status(tmp_path).state == "running"  # this test process is alive
    w.event("end", reason="completed", step=10)
    s = rd.run_status(tmp_path)
    assert (s.state, s.reason) == ("ended", "completed")

    failed = tmp_path / "failed"
    w = rd.RunWriter(failed)
    w.event("start")
    w.event("error", message="loss is nan at step 7", step=7)
    w.event("end", reason="nan_loss", step=7)
    s = rd.run_status(failed)
    assert (s.state, s.reason, s.message) == ("failed", "nan_loss", "loss is nan at step 7")

    gone = tmp_path / "gone"
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    rd.RunWriter(gone).event("start", pid=proc.pid)
    s = rd.run_status(gone)
    assert s.state == "gone" and str(proc.pid) in s.message

    other = tmp_path / "other"
    rd.RunWriter(other).event("start", host="some-other-host")
    assert rd.run_status(other).state == "unknown"


def test_csv_export(tmp_path):
    w = rd.RunWriter(tmp_path)
    w.metric(_metric(1))
    w.metric(_metric(2, val_loss=1.25))
    out = rd.export_csv(tmp_path)
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0])[: len(rd.METRIC_KEYS)] == list(rd.METRIC_KEYS)
    assert rows[0]["val_loss"] == "" and rows[1]["val_loss"] == "1.25" and rows[0]["mfu"] == ""


def test_missing_run_dir_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        rd.read_config(tmp_path / "nope")
    with pytest.raises(UserError, match="no such file"):
        rd.export_csv(tmp_path / "nope")


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=30), st.lists(st.integers(1, 40), min_size=1, max_size=80))
@settings(max_examples=50, deadline=None)
def test_tail_sees_every_record_once_however_the_bytes_arrive(tmp_path_factory, values, cuts):
    """Appends arrive in arbitrary chunks (mid-line, mid-number); polls return each record exactly once, in order."""
    path = tmp_path_factory.mktemp("tail") / "metrics.jsonl"
    stream = b"".join(rd._json_line({"step": i, "v": v}) for i, v in enumerate(values))
    tail, got, pos = rd.JsonlTail(path), [], 0
    path.write_bytes(b"")
    for cut in cuts * (len(stream) // max(1, sum(cuts)) + 1):
        if pos >= len(stream):
            break
        with open(path, "ab") as fh:
            fh.write(stream[pos: pos + cut])
        pos += cut
        got += tail.poll()
    with open(path, "ab") as fh:
        fh.write(stream[pos:])
    got += tail.poll()
    assert got == [{"step": i, "v": v} for i, v in enumerate(values)]


def test_read_config_failures_are_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file \\(not a run directory, or the run has not started\\)"):
        rd.read_config(tmp_path)
    (tmp_path / rd.CONFIG_FILE).mkdir()  # was an IsADirectoryError traceback
    with pytest.raises(UserError, match="is a directory"):
        rd.read_config(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / rd.CONFIG_FILE).write_text("steps = [")
    with pytest.raises(UserError, match="invalid TOML"):
        rd.read_config(bad)
