"""Hugging Face Trainer output directories: trainer_state.json's `log_history`.

The Trainer rewrites trainer_state.json whole at every checkpoint save (in `checkpoint-N/`) and at
the end of training (in the output dir), so the newest of those files is re-read when it changes
and the entries past those already seen are new. An entry is one `log()` call: training steps
carry `loss`, `grad_norm`, `learning_rate`, `epoch`, `step`; evaluations `eval_loss`, ...; the last
one the run's summary (`train_runtime`, `train_loss` as an average), which is not a point of any
series and is kept for the config panel instead. log_history has no wall clock: `time` is None.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

from engine.runtime.monitor.reader import RunReader
from engine.runtime.monitor.tags import series_name

STATE_FILE = "trainer_state.json"
CHECKPOINT_DIR = re.compile(r"checkpoint-(\d+)")
SUMMARY_KEYS = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos")


def state_files(path: Path) -> list[Path]:
    """trainer_state.json in the output dir and in each checkpoint-N/ dir."""
    files = [path / STATE_FILE]
    try:
        files += [d / STATE_FILE for d in path.iterdir() if CHECKPOINT_DIR.fullmatch(d.name)]
    except OSError:
        pass
    return [f for f in files if f.is_file()]


def newest_state_file(path: Path) -> Path | None:
    """The most recently written one: a checkpoint's at each save, the output dir's at the end."""
    best = None
    for f in state_files(path):
        try:
            key = (f.stat().st_mtime, f)
        except OSError:
            continue
        if best is None or key > best:
            best = key
    return None if best is None else best[1]


class HfTrainerReader(RunReader):
    source = "hf"
    label = "Hugging Face Trainer dir"

    def __init__(self, path: str | os.PathLike) -> None:
        super().__init__(path)
        self.state: dict = {}
        self.summary: dict = {}
        self.entries_seen = 0
        self._signature: tuple | None = None

    @staticmethod
    def detect(path: Path) -> bool:
        return path.is_dir() and bool(state_files(path))

    def files(self) -> list[Path]:
        return state_files(self.path)

    def _read(self, max_records: int) -> list[dict]:
        self.backlog = False
        f = newest_state_file(self.path)
        if f is None:
            return []
        try:
            st = f.stat()
            signature = (f, st.st_mtime_ns, st.st_size)
            if signature != self._signature:
                state = json.loads(f.read_text(encoding="utf-8"))
                if not isinstance(state, dict) or not isinstance(state.get("log_history", []), list):
                    raise ValueError("no log_history list")
                self.state, self._signature = state, signature
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            # A save in progress (the Trainer writes it in place) reads as broken JSON: try again next poll.
            self.note(f"{f}: not a readable trainer_state.json ({type(exc).__name__}); showing what was read before")
            return []
        history = self.state.get("log_history", [])
        if len(history) < self.entries_seen:  # a run restarted into the same dir: read it afresh
            self.entries_seen = 0
        new = history[self.entries_seen:self.entries_seen + max_records]
        self.entries_seen += len(new)
        self.backlog = self.entries_seen < len(history)
        out = []
        for entry in new:
            if not isinstance(entry, dict):
                continue
            if any(k in entry for k in SUMMARY_KEYS):
                self.summary = entry
                continue
            record: dict = {"step": entry.get("step"), "time": None}
            for key, value in entry.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                    record[series_name(key)] = value
            out.append(record)
        return out

    def ended_marker(self) -> str | None:
        if self.summary:
            return "completed"
        max_steps, step = self.state.get("max_steps"), self.state.get("global_step")
        if isinstance(max_steps, int) and max_steps > 0 and isinstance(step, int) and step >= max_steps:
            return "completed"
        return None

    def config(self) -> dict:
        """trainer_state.json's own settings, the run summary, and the model's config.json when
        a checkpoint holds one (it names the model: the Monitor's prediction needs it)."""
        state = {k: v for k, v in self.state.items() if k != "log_history" and not isinstance(v, (dict, list))}
        out: dict = {"trainer_state": state}
        if self.summary:
            out["summary"] = self.summary
        for f in [self.path / "config.json"] + sorted(self.path.glob("checkpoint-*/config.json")):
            if f.is_file():
                try:
                    out["model_config"] = json.loads(f.read_text(encoding="utf-8"))
                    break
                except (OSError, UnicodeDecodeError, ValueError):
                    self.note(f"{f}: not readable JSON; model config not shown")
        return out
