"""The artifact directory of a sparsity run (torch-free: the TUI reads it).

    artifacts/YYYYMMDD_HHMMSS-<model>/     (or --out DIR), created exclusively: never overwritten
      meta.jsonl           one JSON object per line: {"kind": "config"} (full config, seed, SHA-256 of
                           the weights and of every task's text, library versions), {"kind": "parent"}
                           for each earlier artifact a stage read, {"kind": "stage"} per finished stage
      progress.jsonl       live progress lines (stage, step, ...) for the TUI; appended
      sparsity.csv         layer, width, tokens, frac, pr, dead                        (capture)
      sae/<layer>/         cfg.json + sae_weights.safetensors (SAELens layout), runs/l1_<x>/ run dirs  (sae)
      sae.csv              layer, l1, chosen, steps, L0, mse, explained_variance, ce_*, dead_frac      (sae)
      si_modularity.csv    layer, task, SI, Q, n_communities, ...                      (si)
      si_units.csv         one row per unit: SI and its shuffled-label null            (si)
      dynamic_k.csv        k, perplexity, tokens_per_sec, flops_reduction, quality_delta (+ stds)     (dynamic-k)
      acts/<layer>.npy     raw activations, only with --save-acts N

Every file is written atomically and left read-only (0444). CSV numbers are printed with a fixed
format, so the same seed and inputs give byte-identical CSVs (the timing columns aside). If a stage
fails, the directory this run created is removed: nothing half-written is left behind.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import time
from pathlib import Path

from engine.atomic import write_atomic
from engine.errors import UserError

META_FILE = "meta.jsonl"
PROGRESS_FILE = "progress.jsonl"
DEFAULT_ROOT = "artifacts"
TIMING_COLUMNS = ("tokens_per_sec", "tokens_per_sec_std", "seconds")
MIN_FREE_BYTES = 64 << 20  # headroom beyond the estimate: CSVs, SAE files, meta


def fmt(value) -> str:
    """A CSV cell: ints as is, floats with 8 significant digits, None/nan as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.8g}"
    return str(value)


def csv_bytes(columns: list[str], rows: list[dict]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([fmt(r.get(c)) for c in columns])
    return buf.getvalue().encode("utf-8")


def read_csv(path: str | os.PathLike) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def default_dir(model_name: str, root: str = DEFAULT_ROOT, now: float | None = None) -> Path:
    stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(now))
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in model_name)[:60] or "model"
    return Path(root) / f"{stamp}-{safe}"


def check_free_space(where: Path, need_bytes: int) -> None:
    parent = where
    while not parent.exists():
        parent = parent.parent
    free = shutil.disk_usage(parent).free
    if free < need_bytes + MIN_FREE_BYTES:
        raise UserError(f"--out {where}: {free / 1e6:,.0f} MB free on its disk, the run needs about "
                        f"{(need_bytes + MIN_FREE_BYTES) / 1e6:,.0f} MB; accepted: fewer --save-acts tokens or another --out")


class Artifact:
    """A freshly created artifact directory (exclusive: an existing path is an error)."""

    def __init__(self, path: str | os.PathLike, need_bytes: int = 0):
        self.path = Path(path)
        if self.path.exists():
            raise UserError(f"--out {self.path}: already exists; artifacts are never overwritten: accepted: a new path")
        check_free_space(self.path, need_bytes)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(self.path)  # exclusive: fails if another run created it meanwhile
        except FileExistsError:
            raise UserError(f"--out {self.path}: already exists; artifacts are never overwritten: accepted: a new path") from None
        except OSError as exc:
            raise UserError(f"--out {self.path}: cannot create ({exc.strerror})") from None
        self.meta: list[dict] = []

    def write(self, name: str, data: bytes | str) -> Path:
        return write_atomic(self.path / name, data, mode=0o444)

    def write_csv(self, name: str, columns: list[str], rows: list[dict]) -> Path:
        return self.write(name, csv_bytes(columns, rows))

    def add_meta(self, record: dict) -> None:
        self.meta.append(record)
        text = "".join(json.dumps(r, sort_keys=True, allow_nan=False, default=str) + "\n" for r in self.meta)
        self.write(META_FILE, text)

    def progress(self, **record) -> None:
        """Append one progress line (single write, so a reader sees whole lines)."""
        record = {"time": time.time(), **record}
        line = json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()},
                          allow_nan=False, default=str) + "\n"
        fd = os.open(self.path / PROGRESS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def seal(self) -> None:
        """Leave every file read-only (the appended logs too), once the run is done."""
        for p in self.path.rglob("*"):
            if p.is_file():
                os.chmod(p, 0o444)

    def discard(self) -> None:
        """Remove the directory this run created (a stage failed: nothing half-written stays)."""
        for p in [self.path, *self.path.rglob("*")]:
            try:
                os.chmod(p, 0o755 if p.is_dir() else 0o644)
            except OSError:
                pass
        shutil.rmtree(self.path, ignore_errors=True)


def read_meta(path: str | os.PathLike) -> list[dict]:
    p = Path(path) / META_FILE
    if not p.is_file():
        raise UserError(f"{path}: no {META_FILE}; accepted: a directory written by `lsdt sparsity`")
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def library_versions() -> dict:
    import platform
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("lsdt", "torch", "numpy", "safetensors", "networkx", "transformers"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


# --------------------------------------------------------------------------- reading (the TUI's view)

SI_BINS = 10


def si_histogram(units: list[dict], unit: str = "neuron", bins: int = SI_BINS) -> tuple[list[int], list[int]]:
    """Counts of units per SI bin [0, 0.1), ..., [0.9, 1.0], for the real labels and the shuffled null."""
    real, null = [0] * bins, [0] * bins
    for r in units:
        if r.get("unit") != unit:
            continue
        for value, hist in ((r.get("SI"), real), (r.get("SI_null"), null)):
            try:
                v = float(value)
            except (TypeError, ValueError):
                continue
            if math.isfinite(v):
                hist[min(bins - 1, max(0, int(v * bins)))] += 1
    return real, null


def read_artifact(path: str | os.PathLike) -> dict:
    """What exists so far of an artifact (a run may still be writing it): the CSV rows, the SAE
    training curves per layer/L1 run, the SI histogram, and the last progress line."""
    from engine.runtime.train.rundir import read_jsonl

    root = Path(path)
    view: dict = {"sparsity": [], "sae": [], "si": [], "si_units": [], "dynamic_k": [], "sae_curves": {}, "progress": None}
    for key, name in (("sparsity", "sparsity.csv"), ("sae", "sae.csv"), ("si", "si_modularity.csv"),
                      ("si_units", "si_units.csv"), ("dynamic_k", "dynamic_k.csv")):
        if (root / name).is_file():
            view[key] = read_csv(root / name)
    for metrics in sorted(root.glob("sae/*/runs/*/metrics.jsonl")):
        run = f"{metrics.parts[-4]} {metrics.parent.name.replace('_', '=')}"
        view["sae_curves"][run] = read_jsonl(metrics)
    if (root / PROGRESS_FILE).is_file():
        lines = read_jsonl(root / PROGRESS_FILE)
        view["progress"] = lines[-1] if lines else None
    return view
