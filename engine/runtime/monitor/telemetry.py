"""GPU and host telemetry: NVML (via nvidia-ml-py) per GPU, psutil for the CPU, RAM and one process.

Torch-free and cheap to import: the TUI and `lsdt monitor` use it. The pattern follows nvitop's
library layer (XuehaiPan/nvitop, nvitop/api): every NVML call goes through one wrapper,
`Nvml.query`, which answers None ("N/A") when the call is unsupported on this GPU/driver instead of
raising; NVML is initialised lazily, once, under a lock, and shut down at exit.

With no NVIDIA driver or GPU (the usual case on a laptop or a CPU box) nothing raises: a `Sample`
has `gpus == ()` and `gpu_error` says why in one line, e.g.
"no NVIDIA GPU/driver: NVML shared library not found (libnvidia-ml.so.1 ...)".

Units: bytes, watts, degrees Celsius, MHz, percent (0-100) as NVML and psutil report them.
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import importlib
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import psutil

# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class GpuProcess:
    """A process holding a CUDA context on one GPU. used_memory_bytes None: NVML could not say."""

    pid: int
    name: str | None
    used_memory_bytes: int | None
    command: str | None = None  # its command line (psutil), None when not ours to read or gone


@dataclass(frozen=True)
class GpuSample:
    """One GPU at one instant. Every None means "N/A": NVML does not support it here."""

    index: int
    name: str | None
    uuid: str | None
    utilization_pct: float | None  # % of the last sample period a kernel ran (NVML utilization.gpu)
    memory_utilization_pct: float | None  # % of that period the memory was read/written
    memory_used_bytes: int | None
    memory_total_bytes: int | None
    power_w: float | None
    power_limit_w: float | None  # the enforced limit
    temperature_c: float | None
    sm_clock_mhz: int | None
    mem_clock_mhz: int | None
    processes: tuple[GpuProcess, ...] = ()


@dataclass(frozen=True)
class HostSample:
    cpu_pct: float  # all cores together, 0-100 (psutil.cpu_percent)
    cpu_count: int | None  # logical CPUs
    ram_used_bytes: int  # total - available, what `free` calls used-by-apps
    ram_total_bytes: int
    ram_available_bytes: int


@dataclass(frozen=True)
class ProcessSample:
    """The watched process (e.g. the training PID). alive False: it is gone (or never existed)."""

    pid: int
    alive: bool
    name: str | None = None
    cpu_pct: float | None = None  # psutil: 100 = one core busy, may exceed 100 on several cores
    rss_bytes: int | None = None
    gpu_memory_bytes: int | None = None  # summed over the GPUs that list this PID; None if none do


@dataclass(frozen=True)
class Sample:
    time: float  # Unix seconds
    gpus: tuple[GpuSample, ...]
    gpu_error: str | None  # why there are no GPUs ("no NVIDIA GPU/driver: ..."); None when NVML works
    driver_version: str | None
    host: HostSample
    process: ProcessSample | None = None

    def to_dict(self) -> dict:
        """JSON-ready (nested dicts and lists only)."""
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- NVML wrapper


def _text(value: Any) -> Any:
    """Old pynvml versions return bytes for names and versions."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _init_failure_reason(exc: BaseException) -> str:
    """One line: why NVML cannot be used on this machine."""
    kind = type(exc).__name__
    if kind == "NVMLError_LibraryNotFound":
        why = "NVML shared library not found (libnvidia-ml.so.1; is the NVIDIA driver installed?)"
    elif kind == "NVMLError_DriverNotLoaded":
        why = "the NVIDIA kernel driver is not loaded"
    elif kind == "NVMLError_NoPermission":
        why = "no permission to talk to the NVIDIA driver"
    elif kind == "NVMLError_LibRmVersionMismatch":
        why = "NVML library and kernel driver versions differ (reboot or reinstall the driver)"
    else:
        why = " ".join(str(exc).split()) or kind
    return f"no NVIDIA GPU/driver: {why}"


class Nvml:
    """NVML behind one query wrapper; `module` may be injected (tests pass a fake pynvml).

    `module=None` imports `pynvml` lazily on first use. Initialisation happens once, under a lock;
    its failure is remembered in `error` and every query then answers None.
    """

    def __init__(self, module: Any = None) -> None:
        self._module = module
        self._lock = threading.Lock()
        self._initialised = False
        self._tried = False
        self._atexit_registered = False
        self.error: str | None = None

    def _ensure(self) -> bool:
        if self._initialised:
            return True
        with self._lock:
            if self._tried:
                return self._initialised
            self._tried = True
            try:
                if self._module is None:
                    self._module = importlib.import_module("pynvml")
            except ImportError:
                self.error = "no NVIDIA GPU/driver: the nvidia-ml-py package (pynvml) is not installed"
                return False
            try:
                self._module.nvmlInit()
            except Exception as exc:  # NVMLError subclasses, or OSError from ctypes on odd systems
                self.error = _init_failure_reason(exc)
                return False
            self._initialised = True
            if not self._atexit_registered:
                atexit.register(self.shutdown)
                self._atexit_registered = True
            return True

    @property
    def available(self) -> bool:
        """True when NVML initialised; `error` says why not."""
        return self._ensure()

    def query(self, function: str, *args: Any) -> Any:
        """`pynvml.<function>(*args)`, or None (N/A) when NVML is absent or the call unsupported.

        Any NVMLError (NotSupported, NoPermission, FunctionNotFound, GpuIsLost, Unknown, ...) is N/A:
        a monitor shows "n/a" for that one field and carries on. A function this pynvml lacks is N/A too.
        """
        if not self._ensure():
            return None
        fn = getattr(self._module, function, None)
        if fn is None:
            return None
        try:
            return fn(*args)
        except self._module.NVMLError:
            return None

    def constant(self, name: str, default: int) -> int:
        return getattr(self._module, name, default) if self._module is not None else default

    def shutdown(self) -> None:
        with self._lock:
            if self._initialised:
                try:
                    self._module.nvmlShutdown()
                except Exception:  # shutting down at exit: nothing useful to do with a failure
                    pass
                self._initialised = False
                self._tried = False

    # ---- per-GPU reads --------------------------------------------------------------------

    def device_count(self) -> int:
        return self.query("nvmlDeviceGetCount") or 0

    def driver_version(self) -> str | None:
        return _text(self.query("nvmlSystemGetDriverVersion"))

    def gpu(self, index: int, process_name: Callable[[int], str | None] = lambda pid: None) -> GpuSample:
        handle = self.query("nvmlDeviceGetHandleByIndex", index)
        if handle is None:
            return GpuSample(index, None, None, None, None, None, None, None, None, None, None, None)
        q = self.query
        util = q("nvmlDeviceGetUtilizationRates", handle)
        mem = q("nvmlDeviceGetMemoryInfo", handle)
        power_mw = q("nvmlDeviceGetPowerUsage", handle)
        limit_mw = q("nvmlDeviceGetEnforcedPowerLimit", handle)
        temperature = q("nvmlDeviceGetTemperature", handle, self.constant("NVML_TEMPERATURE_GPU", 0))
        sm_clock = q("nvmlDeviceGetClockInfo", handle, self.constant("NVML_CLOCK_SM", 1))
        mem_clock = q("nvmlDeviceGetClockInfo", handle, self.constant("NVML_CLOCK_MEM", 2))
        return GpuSample(
            index=index,
            name=_text(q("nvmlDeviceGetName", handle)),
            uuid=_text(q("nvmlDeviceGetUUID", handle)),
            utilization_pct=None if util is None else float(util.gpu),
            memory_utilization_pct=None if util is None else float(util.memory),
            memory_used_bytes=None if mem is None else int(mem.used),
            memory_total_bytes=None if mem is None else int(mem.total),
            power_w=None if power_mw is None else power_mw / 1000.0,  # NVML reports milliwatts
            power_limit_w=None if limit_mw is None else limit_mw / 1000.0,
            temperature_c=None if temperature is None else float(temperature),
            sm_clock_mhz=sm_clock,
            mem_clock_mhz=mem_clock,
            processes=self._processes(handle, process_name),
        )

    def _processes(self, handle: Any, process_name: Callable[[int], str | None]) -> tuple[GpuProcess, ...]:
        by_pid: dict[int, GpuProcess] = {}
        for function in ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses"):
            for p in self.query(function, handle) or ():
                if p.pid in by_pid:  # a process with both contexts is listed twice
                    continue
                used = getattr(p, "usedGpuMemory", None)  # pynvml maps NVML's "not available" to None
                by_pid[p.pid] = GpuProcess(int(p.pid), process_name(int(p.pid)), None if used is None else int(used),
                                           _process_command(int(p.pid)))
        return tuple(sorted(by_pid.values(), key=lambda p: p.pid))


_DEFAULT_NVML = Nvml()


# --------------------------------------------------------------------------- psutil


class HostProbe:
    """psutil reads. Keeps psutil.Process objects so CPU % is measured between calls (psutil's
    first cpu_percent() of a process or of the system compares against nothing and says 0.0)."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}
        self._lock = threading.Lock()

    def prime(self, pid: int | None = None) -> None:
        """Start the CPU % measuring window for the system and `pid`."""
        psutil.cpu_percent(interval=None)
        if pid is not None:
            proc = self._process(pid)
            if proc is not None:
                try:
                    proc.cpu_percent(interval=None)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass

    def _process(self, pid: int) -> psutil.Process | None:
        with self._lock:
            proc = self._procs.get(pid)
            if proc is None:
                try:
                    proc = self._procs[pid] = psutil.Process(pid)
                except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
                    return None
            return proc

    def host(self) -> HostSample:
        vm = psutil.virtual_memory()
        return HostSample(
            cpu_pct=float(psutil.cpu_percent(interval=None)),
            cpu_count=psutil.cpu_count(logical=True),
            ram_used_bytes=int(vm.total - vm.available),
            ram_total_bytes=int(vm.total),
            ram_available_bytes=int(vm.available),
        )

    def process(self, pid: int, gpu_memory_bytes: int | None = None) -> ProcessSample:
        proc = self._process(pid)
        if proc is None:
            return ProcessSample(pid, alive=False, gpu_memory_bytes=gpu_memory_bytes)
        try:
            with proc.oneshot():
                if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
                    raise psutil.NoSuchProcess(pid)
                return ProcessSample(
                    pid=pid,
                    alive=True,
                    name=proc.name(),
                    cpu_pct=float(proc.cpu_percent(interval=None)),
                    rss_bytes=int(proc.memory_info().rss),
                    gpu_memory_bytes=gpu_memory_bytes,
                )
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            with self._lock:
                self._procs.pop(pid, None)
            return ProcessSample(pid, alive=False, gpu_memory_bytes=gpu_memory_bytes)
        except psutil.AccessDenied:
            return ProcessSample(pid, alive=True, gpu_memory_bytes=gpu_memory_bytes)


def _process_name(pid: int) -> str | None:
    try:
        return psutil.Process(pid).name()
    except (psutil.Error, ValueError):
        return None


def _process_command(pid: int) -> str | None:
    try:
        return " ".join(psutil.Process(pid).cmdline()) or None
    except (psutil.Error, ValueError):
        return None


# --------------------------------------------------------------------------- sampling


def _collect(nvml: Nvml, host: HostProbe, pid: int | None) -> Sample:
    gpus: tuple[GpuSample, ...] = ()
    if nvml.available:
        gpus = tuple(nvml.gpu(i, _process_name) for i in range(nvml.device_count()))
    gpu_error = nvml.error if not nvml.available else (None if gpus else "no NVIDIA GPU/driver: NVML reports 0 GPUs")
    process = None
    if pid is not None:
        used = [p.used_memory_bytes for g in gpus for p in g.processes if p.pid == pid]
        known = [u for u in used if u is not None]
        process = host.process(pid, sum(known) if known else None)
    return Sample(
        time=time.time(),
        gpus=gpus,
        gpu_error=gpu_error,
        driver_version=nvml.driver_version() if gpus else None,
        host=host.host(),
        process=process,
    )


def sample(pid: int | None = None, interval_s: float = 0.1, nvml: Nvml | None = None) -> Sample:
    """One snapshot of the machine (and of process `pid`).

    CPU % needs a window: this blocks `interval_s` between priming psutil and reading it. Pass 0
    to skip the wait (CPU % then covers the time since psutil's previous call in this process).
    """
    host = HostProbe()
    host.prime(pid)
    if interval_s > 0:
        time.sleep(interval_s)
    return _collect(nvml or _DEFAULT_NVML, host, pid)


class Sampler:
    """Samples every `interval_s` on a daemon thread into a bounded history (for live views).

    `history()` and `latest()` may be called from any thread. A listener (`on_sample`) runs on the
    sampler thread: a Textual app should hand over with `call_from_thread` / `post_message` there.
    The next sample is taken only after the last one finished, so slow NVML calls never pile up.
    """

    def __init__(
        self,
        interval_s: float = 0.5,
        history: int = 600,
        pid: int | None = None,
        nvml: Nvml | None = None,
        on_sample: Callable[[Sample], None] | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s = {interval_s}; accepted: > 0")
        if history < 1:
            raise ValueError(f"history = {history}; accepted: >= 1")
        self.interval_s = interval_s
        self.pid = pid  # may be changed while running (e.g. when a run starts)
        self.on_sample = on_sample
        self._nvml = nvml or _DEFAULT_NVML
        self._host = HostProbe()
        self._history: collections.deque[Sample] = collections.deque(maxlen=history)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None  # a listener's exception, kept rather than killing the thread

    def prime(self) -> None:
        """Start the CPU % window (system and `pid`) now; the next sample measures from here."""
        self._host.prime(self.pid)

    def sample_now(self) -> Sample:
        """Take one sample on the calling thread and append it to the history."""
        s = _collect(self._nvml, self._host, self.pid)
        with self._lock:
            self._history.append(s)
        return s

    def history(self) -> list[Sample]:
        with self._lock:
            return list(self._history)

    def latest(self) -> Sample | None:
        with self._lock:
            return self._history[-1] if self._history else None

    def start(self) -> "Sampler":
        if self._thread is not None and self._thread.is_alive():
            return self
        self._stop.clear()
        self.prime()
        self._thread = threading.Thread(target=self._loop, name="lsdt-telemetry", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            s = self.sample_now()
            if self.on_sample is not None:
                try:
                    self.on_sample(s)
                except Exception as exc:  # a broken listener must not stop the sampling
                    self.last_error = f"{type(exc).__name__}: {exc}"

    def __enter__(self) -> "Sampler":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
