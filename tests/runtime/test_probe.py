"""Probes: the batch search with injected OOMs, the helpers, and real tiny CPU sweeps through the CLI
(one subprocess per config), including a real OOM under a CPU memory cap."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import UserError
from engine.sizing.bands import read_probe
from engine.runtime.train.device import mfu
from engine.runtime.probe.runner import (
    RESULT_KEYS, SATURATION_PATIENCE, ProbeSettings, grad_accum_for, is_oom, largest_fitting_batch, parse_int_list,
    run_config, search_batch, search_cap,
)

TINY = ["--head-dim", "16", "--vocab", "256", "--steps", "2", "--warmup", "1", "--device", "cpu"]


# --------------------------------------------------------------------------- the search, OOM injected


def oom_above(limit: int):
    """A `fits` whose step raises a CUDA-style OOM above `limit`, classified the way the worker does."""
    calls = []

    def fits(batch: int) -> bool:
        calls.append(batch)
        try:
            if batch > limit:
                raise RuntimeError(f"CUDA out of memory. Tried to allocate {batch} GiB")
            return True
        except RuntimeError as exc:
            if not is_oom(exc):
                raise
            return False

    return fits, calls


def test_search_stops_at_first_oom():
    fits, calls = oom_above(12)
    best, tried = largest_fitting_batch(fits, max_batch=1024)
    assert best == 8 and calls == [1, 2, 4, 8, 16]
    assert tried[-1] == {"batch": 16, "fits": False}


def test_search_even_batch_one_oom_and_cap():
    assert largest_fitting_batch(oom_above(0)[0], 64) == (None, [{"batch": 1, "fits": False}])
    best, tried = largest_fitting_batch(oom_above(10**6)[0], 5)
    assert best == 4 and [t["batch"] for t in tried] == [1, 2, 4]  # never tries past the cap


def test_search_lets_non_oom_errors_through():
    def fits(batch):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes"):
        largest_fitting_batch(fits, 8)
    with pytest.raises(ValueError):
        largest_fitting_batch(fits, 0)


@given(limit=st.integers(0, 5000), cap=st.integers(1, 5000))
def test_search_finds_the_largest_power_of_two_that_fits(limit, cap):
    best, tried = largest_fitting_batch(lambda b: b <= limit, cap)
    bound = min(limit, cap)
    if bound < 1:
        assert best is None
    else:
        assert best & (best - 1) == 0 and best <= bound < 2 * best
    assert [t["batch"] for t in tried] == [2**i for i in range(len(tried))]
    assert all(t["fits"] for t in tried[:-1])


# --------------------------------------------------------------------------- the CPU saturation rule


def rates(curve: dict[int, float | None]):
    calls = []

    def measure(batch: int):
        calls.append(batch)
        return curve.get(batch)

    return measure, calls


def test_saturation_stops_where_throughput_stops_improving():
    """CPU: tokens/s rises to batch 8 and is flat after; the search stops two flat doublings later
    and keeps 8, far below the 8,192-sequence cap that used to run into the OOM killer."""
    curve = {1: 100.0, 2: 190.0, 4: 330.0, 8: 420.0, 16: 425.0, 32: 418.0, 64: 430.0}
    measure, calls = rates(curve)
    best, tried = search_batch(measure, 8192, saturation=0.05)
    assert best == 8 and calls == [1, 2, 4, 8, 16, 32] and SATURATION_PATIENCE == 2
    assert [t["tok_per_s"] for t in tried] == [curve[b] for b in calls]


def test_one_slow_measurement_does_not_end_the_search():
    measure, calls = rates({1: 100.0, 2: 20.0, 4: 330.0, 8: 600.0, 16: 610.0, 32: 600.0})
    best, _ = search_batch(measure, 1024, saturation=0.05)
    assert best == 8 and calls == [1, 2, 4, 8, 16, 32]


def test_saturation_still_stops_at_an_oom_and_at_the_cap():
    assert search_batch(rates({1: 1.0, 2: 2.0, 4: None})[0], 1024, 0.05)[0] == 2
    measure, calls = rates({b: float(b) for b in (1, 2, 4, 8)})
    assert search_batch(measure, 8, 0.05)[0] == 8 and calls == [1, 2, 4, 8]
    assert search_batch(rates({1: None})[0], 8, 0.05) == (None, [{"batch": 1, "fits": False}])


@given(curve=st.lists(st.floats(1.0, 1e6), min_size=1, max_size=14), cap=st.integers(1, 8192))
def test_saturation_keeps_the_fastest_point_it_saw_and_never_passes_the_cap(curve, cap):
    by_batch = {2**i: r for i, r in enumerate(curve)}
    best, tried = search_batch(lambda b: by_batch.get(b), cap, 0.05)
    assert all(t["batch"] <= cap for t in tried)
    seen = [t for t in tried if t["fits"]]
    if seen:
        top = max(t["tok_per_s"] for t in seen)
        assert by_batch[best] * 1.05 >= top  # within the saturation margin of the fastest point seen


def test_is_oom_kinds():
    import torch

    assert is_oom(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_oom(MemoryError())
    assert is_oom(RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory"))
    assert not is_oom(RuntimeError("expected scalar type Float but found BFloat16"))
    assert not is_oom(ValueError("out of memory"))  # only allocator failures count


def test_helpers():
    assert grad_accum_for(2**19, 16, 2048) == 16
    assert grad_accum_for(2**19, 1024, 2048) == 1
    assert grad_accum_for(1000, 3, 100) == 4  # rounds up: at least the target batch
    assert search_cap(ProbeSettings(batch_tokens=2**19), 2048) == 256
    assert search_cap(ProbeSettings(batch_tokens=100), 2048) == 1
    assert search_cap(ProbeSettings(batch_tokens=2**19, max_batch=32), 512) == 32
    assert mfu(6e9, 1e5, None) is None  # unknown peak: null, never a guess
    assert mfu(6e9, 1e5, 989.4e12) == pytest.approx(6e14 / 989.4e12)
    assert mfu(6e9, 1e5, 989.4e12, n_devices=2) == pytest.approx(3e14 / 989.4e12)
    assert parse_int_list("12, 14,12", "--depths") == (12, 14)
    for bad in ("", "a,b", "0,1", "-3"):
        with pytest.raises(UserError, match="--depths"):
            parse_int_list(bad, "--depths")


def test_worker_timeout_is_an_error_row_not_a_crash():
    row = run_config(1, 32, ProbeSettings(head_dim=16, vocab_size=256, device="cpu", timeout_s=0.2), max_batch=1)
    assert row["status"] == "error" and "timed out" in row["error"]
    assert all(k in row for k in RESULT_KEYS)


# --------------------------------------------------------------------------- real sweeps (CLI)


@pytest.mark.slow
def test_tiny_cpu_sweep_jsonl_and_file_contract(lsdt, tmp_path):
    out = tmp_path / "sub" / "probe.json"
    r = lsdt("probe", "--depths", "1,2", "--seqs", "32", *TINY, "--batch-tokens", "256", "--max-batch", "4",
             "--jsonl", "--out", str(out), timeout=120)
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]  # stdout is JSON lines only
    assert [e["event"] for e in events] == ["start", "result", "result", "done"]
    assert events[0]["total"] == 2 and events[0]["configs"] == [{"depth": 1, "seq_len": 32}, {"depth": 2, "seq_len": 32}]
    assert [e["index"] for e in events[1:3]] == [0, 1]
    assert events[-1]["counts"] == {"ok": 2, "oom": 0, "error": 0}
    assert "[2/2] d2" in r.stderr  # human progress on stderr in --jsonl mode

    doc = json.loads(out.read_text())
    assert set(doc) == {"device", "hardware", "results"}
    assert doc["hardware"] is None and doc["device"]  # a CPU matches no hardware profile
    assert doc["results"] == [e["result"] for e in events[1:3]]
    for row, depth in zip(doc["results"], (1, 2)):
        assert all(k in row for k in RESULT_KEYS)
        assert (row["depth"], row["seq_len"], row["status"]) == (depth, 32, "ok")
        assert row["device_batch"] in (1, 2, 4) and row["tok_per_s"] > 0 and row["step_time_s"] > 0
        assert row["tok_per_s"] == pytest.approx(row["device_batch"] * 32 / row["step_time_s"], rel=1e-6)
        assert row["mfu"] is None and row["peak_vram_bytes"] is None
        assert row["grad_accum"] == grad_accum_for(256, row["device_batch"], 32)
        assert row["params"] > 0 and row["flops_per_token"] > 0
    assert read_probe(out)["results"][0]["device_batch"] == doc["results"][0]["device_batch"]  # what `lsdt bands --probe` reads


@pytest.mark.slow
def test_oom_config_is_marked_and_the_sweep_goes_on(lsdt, tmp_path):
    """A real CPU OOM: under a 250 MB cap the vocab-32768 model fits at seq 32 but its logits at
    seq 1024 (134 MB per batch row in fp32) do not, even at batch 1."""
    out = tmp_path / "probe.json"
    r = lsdt("probe", "--depths", "1", "--seqs", "32,1024", "--head-dim", "16", "--vocab", "32768",
             "--steps", "1", "--warmup", "0", "--device", "cpu", "--max-batch", "2", "--memory-cap", "250e6",
             "--out", str(out), timeout=120)
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())["results"]
    assert [row["status"] for row in rows] == ["ok", "oom"], rows
    assert rows[1]["device_batch"] is None and rows[1]["tok_per_s"] is None
    assert "1 ok, 1 oom, 0 error" in r.stdout
    assert [row["status"] for row in read_probe(out)["results"]] == ["ok", "oom"]  # bands takes failed rows too


@pytest.mark.parametrize("args, words", [
    (["--depths", "1,x"], "--depths '1,x'"),
    (["--device", "tpu"], "--device 'tpu'"),
    (["--head-dim", "15"], "--head-dim 15"),
    (["--steps", "0"], "--steps"),
    (["--compile", "--warmup", "0"], "--warmup >= 1"),
])
def test_bad_flags_one_line_exit_2(lsdt, args, words):
    r = lsdt("probe", *TINY[:-2], *args)
    assert r.returncode == 2 and words in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_out_is_a_directory(lsdt, tmp_path):
    r = lsdt("probe", *TINY, "--depths", "1", "--seqs", "32", "--out", str(tmp_path))
    assert r.returncode == 2 and "is a directory" in r.stderr


def test_cuda_without_gpu_is_a_user_error(lsdt, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    out = tmp_path / "p.json"
    r = lsdt("probe", *TINY[:-2], "--device", "cuda", "--depths", "1", "--seqs", "32", "--out", str(out), timeout=60)
    assert r.returncode == 2 and "no CUDA GPU" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()  # nothing half-written


@pytest.mark.gpu
def test_gpu_sweep_measures_vram(lsdt, tmp_path):
    out = tmp_path / "p.json"
    r = lsdt("probe", "--depths", "2", "--seqs", "128", "--head-dim", "64", "--vocab", "1024", "--steps", "3",
             "--warmup", "1", "--device", "cuda", "--max-batch", "8", "--out", str(out), timeout=300)
    assert r.returncode == 0, r.stderr
    row = json.loads(out.read_text())["results"][0]
    assert row["status"] == "ok" and row["peak_vram_bytes"] > 0 and row["device_batch"] == 8


@pytest.mark.slow
def test_sigterm_stops_the_sweep_kills_the_worker_and_keeps_finished_configs(tmp_path):
    """How the TUI stops a probe: SIGTERM. The running worker must not outlive the sweep."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    out = tmp_path / "p.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "probe", "--depths", "1,2,3", "--seqs", "32", *TINY,
         "--max-batch", "2", "--jsonl", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert json.loads(proc.stdout.readline())["event"] == "start"
        assert json.loads(proc.stdout.readline())["event"] == "result"
        deadline = time.time() + 20
        while not (workers := psutil.Process(proc.pid).children()) and time.time() < deadline:
            time.sleep(0.05)
        assert workers  # the second config's worker is running
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143 and "terminated (SIGTERM)" in stderr  # stopped, not completed, for schedulers
    assert all(not psutil.pid_exists(w.pid) or w.status() == psutil.STATUS_ZOMBIE for w in workers)
    doc = json.loads(out.read_text())
    assert [r["depth"] for r in doc["results"]] == [1]  # the finished config survived
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path))


def test_module_entry_point_is_the_cli():
    """`python -m engine.cli probe` (how the TUI launches a sweep) is `lsdt probe`."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "engine.cli", "probe", "--depths", "0"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--depths '0'" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_stop_while_the_worker_starts_still_kills_the_worker(tmp_path):
    """SIGTERM landing inside Popen (after the fork, before it returns) must not orphan the worker:
    the sweep's own cleanup has no handle to it yet. The signal is sent from inside Popen here."""
    import subprocess
    import sys

    import psutil

    script = tmp_path / "stop_in_popen.py"
    script.write_text(
        "import os, signal, subprocess, sys\n"
        "import engine.runtime.probe.runner as P\n"
        "from engine.cli import _terminate\n"
        "signal.signal(signal.SIGTERM, _terminate)  # what `lsdt probe` runs under\n"
        "real = subprocess.Popen\n"
        "started = []\n"
        "def popen(*a, **k):\n"
        "    proc = real([sys.executable, '-c', 'import time; time.sleep(60)'], **{**k, 'text': True})\n"
        "    started.append(proc.pid)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)  # the stop arrives before Popen has returned\n"
        "    return proc\n"
        "P.subprocess.Popen = popen\n"
        "try:\n"
        "    P.run_config(1, 32, P.ProbeSettings(device='cpu'), 2)\n"
        "    print('no interrupt')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', started[0])\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    word, pid = out.stdout.split()
    assert word == "interrupted"
    assert not psutil.pid_exists(int(pid)) or psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE


@pytest.mark.slow
def test_the_tiny_cpu_probe_of_the_issue_finishes_in_seconds_under_a_memory_cap(lsdt, tmp_path):
    """Issue 16: this command ran 5 minutes, grew to 11.9 GB and was killed by the OOM killer (its
    batch search doubled towards 8,192 sequences). Now: saturation on CPU and a default memory cap."""
    import time

    out = tmp_path / "p.json"
    t0 = time.monotonic()
    r = lsdt("probe", "--device", "cpu", "--depths", "2", "--seqs", "64", "--head-dim", "64", "--vocab", "256",
             "--steps", "3", "--out", str(out), timeout=120)
    wall_s = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    row = json.loads(out.read_text())["results"][0]
    assert row["status"] == "ok" and row["device_batch"] <= 256 and len(row["tried"]) <= 10
    assert row["memory_cap_bytes"] > 0 and "available RAM" in row["memory_cap_source"]
    assert row["peak_rss_bytes"] < 2e9
    assert wall_s < 60


@pytest.mark.slow
def test_a_worker_dies_with_a_killed_sweep(tmp_path):
    """SIGKILL cannot be caught, so `lsdt probe` cannot kill its worker on the way out: the worker
    itself must go (PR_SET_PDEATHSIG, or its parent-pid watch)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "probe", "--depths", "1", "--seqs", "32", *TINY[:4], "--steps", "1000000",
         "--warmup", "0", "--device", "cpu", "--max-batch", "1", "--out", str(tmp_path / "p.json")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 30
        while not (workers := psutil.Process(proc.pid).children()) and time.time() < deadline:
            time.sleep(0.05)
        assert workers
        time.sleep(1.0)  # the worker is past its start-up (torch imported, model built)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        gone = psutil.wait_procs(workers, timeout=10)[0]
        assert [w.pid for w in gone] == [w.pid for w in workers], "the worker outlived its sweep"
    finally:
        for w in psutil.Process().children(recursive=True):
            w.kill()
