"""Telemetry: the NVML wrapper's N/A handling (fake NVML), the real no-driver path, psutil numbers,
the bounded sampler, and that the module stays torch-free."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import types

import pytest

from engine.runtime.monitor import telemetry
from engine.runtime.monitor.telemetry import Nvml, Sampler


# --------------------------------------------------------------------------- a fake pynvml


def make_fake_nvml(init_error: str | None = None, unsupported: tuple[str, ...] = (), missing: tuple[str, ...] = ()):
    """A stand-in for the pynvml module: one GPU, with chosen calls raising NVML errors."""
    m = types.SimpleNamespace()

    class NVMLError(Exception):
        pass

    m.NVMLError = NVMLError
    for name in ("NVMLError_NotSupported", "NVMLError_NoPermission", "NVMLError_LibraryNotFound",
                 "NVMLError_DriverNotLoaded", "NVMLError_GpuIsLost"):
        setattr(m, name, type(name, (NVMLError,), {}))
    m.NVML_TEMPERATURE_GPU, m.NVML_CLOCK_SM, m.NVML_CLOCK_MEM = 0, 1, 2
    m.calls = {"init": 0, "shutdown": 0}

    def init():
        m.calls["init"] += 1
        time.sleep(0.01)  # widen the window a racing second init would need
        if init_error:
            raise getattr(m, init_error)("fake")

    def shutdown():
        m.calls["shutdown"] += 1

    proc = lambda pid, used: types.SimpleNamespace(pid=pid, usedGpuMemory=used)  # noqa: E731
    functions = {
        "nvmlInit": init,
        "nvmlShutdown": shutdown,
        "nvmlDeviceGetCount": lambda: 1,
        "nvmlSystemGetDriverVersion": lambda: b"550.54.15",  # old pynvml returned bytes
        "nvmlDeviceGetHandleByIndex": lambda i: f"handle{i}",
        "nvmlDeviceGetName": lambda h: "NVIDIA H100 80GB HBM3",
        "nvmlDeviceGetUUID": lambda h: "GPU-1234",
        "nvmlDeviceGetUtilizationRates": lambda h: types.SimpleNamespace(gpu=97, memory=41),
        "nvmlDeviceGetMemoryInfo": lambda h: types.SimpleNamespace(used=30_000_000_000, total=85_000_000_000, free=55e9),
        "nvmlDeviceGetPowerUsage": lambda h: 612_345,  # mW
        "nvmlDeviceGetEnforcedPowerLimit": lambda h: 700_000,
        "nvmlDeviceGetTemperature": lambda h, sensor: 64,
        "nvmlDeviceGetClockInfo": lambda h, kind: {1: 1980, 2: 2619}[kind],
        "nvmlDeviceGetComputeRunningProcesses": lambda h: [proc(4242, 29_000_000_000), proc(77, None)],
        "nvmlDeviceGetGraphicsRunningProcesses": lambda h: [proc(4242, 29_000_000_000)],
    }
    for name, fn in functions.items():
        if name in missing:
            continue
        if name in unsupported:
            def fn(*args, _name=name):
                raise m.NVMLError_NotSupported(_name)
        setattr(m, name, fn)
    return m


# --------------------------------------------------------------------------- NVML wrapper


def test_fake_gpu_all_fields():
    g = Nvml(make_fake_nvml()).gpu(0)
    assert g.name == "NVIDIA H100 80GB HBM3" and g.uuid == "GPU-1234"
    assert (g.utilization_pct, g.memory_utilization_pct) == (97.0, 41.0)
    assert (g.memory_used_bytes, g.memory_total_bytes) == (30_000_000_000, 85_000_000_000)
    assert g.power_w == pytest.approx(612.345) and g.power_limit_w == pytest.approx(700.0)
    assert (g.temperature_c, g.sm_clock_mhz, g.mem_clock_mhz) == (64.0, 1980, 2619)
    # pid 4242 is both a compute and a graphics process: listed once; pid 77's memory is unknown
    assert [(p.pid, p.used_memory_bytes) for p in g.processes] == [(77, None), (4242, 29_000_000_000)]


def test_unsupported_and_missing_calls_are_na_not_errors():
    fake = make_fake_nvml(
        unsupported=("nvmlDeviceGetPowerUsage", "nvmlDeviceGetTemperature", "nvmlDeviceGetComputeRunningProcesses"),
        missing=("nvmlDeviceGetClockInfo", "nvmlDeviceGetUUID"),
    )
    nvml = Nvml(fake)
    g = nvml.gpu(0)
    assert g.power_w is None and g.temperature_c is None
    assert g.sm_clock_mhz is None and g.mem_clock_mhz is None and g.uuid is None
    assert g.power_limit_w == pytest.approx(700.0)  # the supported neighbours still come through
    assert [p.pid for p in g.processes] == [4242]  # graphics list still read
    assert nvml.query("nvmlNoSuchFunction", 1) is None
    assert nvml.error is None and nvml.available


def test_unreachable_gpu_handle_gives_all_na():
    fake = make_fake_nvml(unsupported=("nvmlDeviceGetHandleByIndex",))
    g = Nvml(fake).gpu(0)
    assert g.index == 0 and g.name is None and g.memory_total_bytes is None and g.processes == ()


@pytest.mark.parametrize("kind, words", [
    ("NVMLError_LibraryNotFound", "NVML shared library not found"),
    ("NVMLError_DriverNotLoaded", "driver is not loaded"),
])
def test_init_failure_is_a_clear_no_gpu_state(kind, words):
    fake = make_fake_nvml(init_error=kind)
    nvml = Nvml(fake)
    s = telemetry.sample(interval_s=0, nvml=nvml)
    assert s.gpus == () and s.driver_version is None
    assert s.gpu_error.startswith("no NVIDIA GPU/driver: ") and words in s.gpu_error
    assert nvml.query("nvmlDeviceGetCount") is None
    nvml.available  # noqa: B018 - asking again must not retry the failed init
    assert fake.calls["init"] == 1


def test_init_once_under_concurrency_and_shutdown():
    fake = make_fake_nvml()
    nvml = Nvml(fake)
    threads = [threading.Thread(target=lambda: nvml.available) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake.calls["init"] == 1
    nvml.shutdown()
    assert fake.calls["shutdown"] == 1


def test_fake_sample_attributes_gpu_memory_to_the_watched_pid():
    s = telemetry.sample(pid=4242, interval_s=0, nvml=Nvml(make_fake_nvml()))
    assert s.gpu_error is None and s.driver_version == "550.54.15"
    assert len(s.gpus) == 1
    assert s.process.pid == 4242 and s.process.gpu_memory_bytes == 29_000_000_000
    json.dumps(s.to_dict())  # JSON-ready


def _real_nvml_works() -> bool:
    return Nvml().available


@pytest.mark.skipif(_real_nvml_works(), reason="this machine has a working NVIDIA driver")
def test_real_pynvml_without_driver_says_so():
    s = telemetry.sample(interval_s=0, nvml=Nvml())  # the real pynvml module
    assert s.gpus == ()
    assert s.gpu_error.startswith("no NVIDIA GPU/driver: ")
    assert len(s.gpu_error.splitlines()) == 1


@pytest.mark.gpu
def test_real_pynvml_reports_the_gpu():
    s = telemetry.sample(interval_s=0, nvml=Nvml())
    assert s.gpu_error is None and s.gpus
    g = s.gpus[0]
    assert g.name and g.memory_total_bytes and g.memory_total_bytes > 1e9


# --------------------------------------------------------------------------- psutil


def test_host_and_own_process_numbers():
    s = telemetry.sample(pid=os.getpid(), interval_s=0.05, nvml=Nvml(make_fake_nvml(init_error="NVMLError_LibraryNotFound")))
    h = s.host
    assert 0 <= h.cpu_pct <= 100 and h.cpu_count >= 1
    assert 0 < h.ram_used_bytes <= h.ram_total_bytes and 0 < h.ram_available_bytes <= h.ram_total_bytes
    p = s.process
    assert p.alive and p.pid == os.getpid() and p.name
    assert p.rss_bytes > 10e6  # a Python interpreter with pytest loaded is well over 10 MB
    assert p.cpu_pct is not None and p.cpu_pct >= 0
    assert p.gpu_memory_bytes is None


def test_busy_child_process_shows_cpu_use():
    child = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<3: pass"])
    try:
        s = telemetry.sample(pid=child.pid, interval_s=0.3, nvml=Nvml(make_fake_nvml(init_error="NVMLError_LibraryNotFound")))
        assert s.process.alive and s.process.cpu_pct > 20  # a spinning loop: most of one core
    finally:
        child.kill()
        child.wait()


def test_dead_process_is_not_alive():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    s = telemetry.sample(pid=child.pid, interval_s=0, nvml=Nvml(make_fake_nvml(init_error="NVMLError_LibraryNotFound")))
    assert s.process.pid == child.pid and not s.process.alive and s.process.rss_bytes is None


# --------------------------------------------------------------------------- sampler


def test_sampler_history_is_bounded_and_listener_errors_are_kept():
    seen = []

    def listener(sample):
        seen.append(sample)
        if len(seen) == 2:
            raise RuntimeError("boom")

    with Sampler(interval_s=0.01, history=3, pid=os.getpid(), nvml=Nvml(make_fake_nvml()), on_sample=listener) as sampler:
        deadline = time.time() + 5
        while len(seen) < 6 and time.time() < deadline:
            time.sleep(0.01)
        assert sampler.running
    assert not sampler.running
    assert len(seen) >= 6  # the listener's exception did not stop the thread
    assert sampler.last_error == "RuntimeError: boom"
    history = sampler.history()
    assert len(history) == 3 and history[-1] is sampler.latest()
    assert [s.time for s in history] == sorted(s.time for s in history)
    assert history[-1].gpus[0].name == "NVIDIA H100 80GB HBM3"


def test_sampler_rejects_bad_settings():
    with pytest.raises(ValueError):
        Sampler(interval_s=0)
    with pytest.raises(ValueError):
        Sampler(history=0)


def test_telemetry_import_is_torch_free():
    code = "import sys, engine.runtime.monitor.telemetry; print('torch' in sys.modules, 'textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False", "False"]
