"""Run directories written by other tools: non-finite numbers read as null (the writer's own rule)."""

from __future__ import annotations

import json

from engine.runtime.train import rundir as rd
from tests.conftest import run_lsdt


def test_nan_and_overflow_from_another_writer_read_as_null(tmp_path):
    """Python's json writes NaN/Infinity; `lsdt monitor --json` then raised ValueError (a traceback)."""
    w = rd.RunWriter(tmp_path)
    w.event("start", step=0)
    w.metric({"step": 1, "time": 1.0, "loss": 2.0, "lr": 1e-3, "tokens": 10, "tok_per_s": 5.0, "mfu": None,
              "vram_alloc_bytes": None, "vram_peak_bytes": None})
    with open(tmp_path / rd.METRICS_FILE, "a") as fh:
        fh.write('{"step": 2, "time": 2.0, "loss": NaN, "lr": Infinity, "mfu": -Infinity, "tok_per_s": 1e400}\n')
    last = rd.read_metrics(tmp_path)[-1]
    assert last["step"] == 2 and last["loss"] is None and last["lr"] is None and last["mfu"] is None and last["tok_per_s"] is None
    r = run_lsdt("monitor", str(tmp_path), "--once", "--json", timeout=60)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-800:]
    assert json.loads(r.stdout)["run"]["last_metrics"]["loss"] is None
