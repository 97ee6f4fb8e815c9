"""Which reader reads a path (detected, or forced by the user), and the recent runs under some roots.

Detection order: an LSDT run dir (its own files say so), a Hugging Face Trainer dir
(trainer_state.json, which it may share with TensorBoard event files under runs/), a Lightning
CSVLogger dir, TensorBoard event files anywhere up to 3 levels down, a CSV/JSONL metrics file.
`source=` forces one reader whatever the directory looks like (e.g. an HF output dir read through
its TensorBoard events, which are written live while trainer_state.json is only saved at checkpoints).
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.errors import UserError
from engine.runtime.monitor.hf import HfTrainerReader
from engine.runtime.monitor.lightning import LightningReader
from engine.runtime.monitor.lsdt import LsdtReader
from engine.runtime.monitor.reader import RunReader
from engine.runtime.monitor.table import TableReader
from engine.runtime.monitor.tensorboard import TensorBoardReader

READERS: dict[str, type[RunReader]] = {
    "lsdt": LsdtReader,
    "hf": HfTrainerReader,
    "lightning": LightningReader,
    "tensorboard": TensorBoardReader,
    "table": TableReader,
}
SOURCES = tuple(READERS)
ACCEPTED = ("an LSDT run dir (config.toml, metrics.jsonl, events.jsonl), a Hugging Face Trainer dir "
            "(trainer_state.json), a Lightning CSVLogger dir (metrics.csv), TensorBoard event files "
            "(events.out.tfevents.*), or a .csv/.jsonl metrics file")


def detect_source(path: Path) -> str | None:
    for name, reader in READERS.items():
        if reader.detect(path):
            return name
    return None


def open_run(path: str | os.PathLike, source: str | None = None, columns: dict[str, str] | None = None) -> RunReader:
    """A reader for `path`; a one-line UserError when it is not a run of any known kind (or not of
    the forced `source`)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"{path}: no such file or directory")
    if source is not None and source not in READERS:
        raise UserError(f"--source {source}: unknown; accepted: {', '.join(SOURCES)}")
    name = source or detect_source(p)
    if name is None:
        raise UserError(f"{path}: not a run of any known kind; accepted: {ACCEPTED}")
    if columns and name != "table":
        raise UserError(f"--columns: only for a CSV/JSONL metrics file, not a {READERS[name].label} ({path})")
    if source is not None and not READERS[name].detect(p):
        raise UserError(f"{path}: not a {READERS[name].label} (--source {source}); "
                        f"detected: {detect_source(p) or 'nothing known'}")
    if name == "table":
        return TableReader(p, columns)
    return READERS[name](p)


def recent_runs(roots: list[Path], limit: int = 30) -> list[tuple[Path, str, float]]:
    """Runs of any known kind directly under `roots` (and one level further, where trainers put
    `<name>/version_N` or `<output>/runs/<date>`): (path, source, mtime of its newest file),
    newest first. A directory counted as a run is not searched further."""
    found: dict[Path, tuple[str, float]] = {}
    for root in roots:
        try:
            children = sorted(root.iterdir())
        except OSError:
            continue
        for d in children:
            if not d.is_dir():
                continue
            source = detect_source(d)
            if source is None:
                continue
            try:
                reader = READERS[source](d)
                mtime = reader.newest_write() or d.stat().st_mtime
            except (UserError, OSError):
                continue
            found[d.resolve()] = (source, mtime)
    ordered = sorted(found.items(), key=lambda kv: kv[1][1], reverse=True)[:limit]
    return [(p, s, t) for p, (s, t) in ordered]


def newest_run(roots: list[Path]) -> Path | None:
    runs = recent_runs(roots, limit=1)
    return runs[0][0] if runs else None


def runs_roots() -> list[Path]:
    """Where recent runs are looked for: $LSDT_RUNS_DIR (':'-separated), then ./runs (lsdt train's default)."""
    roots = [Path(p).expanduser() for p in os.environ.get("LSDT_RUNS_DIR", "").split(os.pathsep) if p]
    roots.append(Path.cwd() / "runs")
    return list(dict.fromkeys(roots))


def quick_state(path: Path, source: str) -> str:
    """A run's state for a list of runs, from its files alone (nothing is read into memory but LSDT's
    events, no process scan): running / idle (a foreign run with no new data for 5 min) / ended /
    failed / gone / not_started / unknown."""
    from engine.runtime.train import rundir

    try:
        if source == "lsdt":
            return rundir.run_status(path, metrics=[]).state
        return READERS[source](path).status(look_for_writer=False).state
    except (UserError, OSError):
        return "unknown"


# Flags trainers take their output directory from (LSDT, HF Trainer, TensorBoard, Lightning, torchtitan).
RUN_DIR_FLAGS = ("--run-dir", "--output_dir", "--output-dir", "--logdir", "--log_dir", "--default_root_dir",
                 "--dump_folder", "--out_dir")


def run_of_process(pid: int) -> tuple[Path | None, str]:
    """Where process `pid` writes its run: (path, how it was found) or (None, what was looked at).

    Looked for in order: a run file it holds open (an event file, metrics.jsonl, metrics.csv,
    trainer_state.json), a run-directory flag or a directory argument on its command line, its working
    directory (itself a run, or its newest run under runs/, lightning_logs/, outputs/).
    """
    import psutil

    try:
        proc = psutil.Process(pid)
        cmdline, cwd = proc.cmdline(), Path(proc.cwd())
        open_paths = [Path(f.path) for f in proc.open_files()]
    except (psutil.Error, OSError) as exc:
        return None, f"pid {pid}: {type(exc).__name__} (gone, or another user's process)"
    for f in open_paths:
        if detect_source(f.parent):
            return f.parent, f"holds {f.name} open"
    candidates = []
    for i, arg in enumerate(cmdline):
        flag, _, value = arg.partition("=")
        if flag in RUN_DIR_FLAGS and value:
            candidates.append(value)
        elif arg in RUN_DIR_FLAGS and i + 1 < len(cmdline):
            candidates.append(cmdline[i + 1])
    candidates += [a for a in cmdline[1:] if not a.startswith("-") and a not in candidates]  # bare paths
    for text in candidates:
        p = Path(text) if Path(text).is_absolute() else cwd / text
        if p.is_dir() and detect_source(p):
            return p, f"its command line names {text}"
    if detect_source(cwd):
        return cwd, "its working directory"
    newest = newest_run([cwd / "runs", cwd / "lightning_logs", cwd / "outputs"])
    if newest is not None:
        return newest, f"the newest run under its working directory {cwd}"
    return None, f"pid {pid}: no run found (no run file open, none on its command line, none under {cwd})"
