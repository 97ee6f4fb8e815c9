"""Probe tasks: the labelled text the lab runs through a model (torch-free).

    builtin              the two-phase MoE's four domain slices (code, math, reasoning, general;
                         engine/runtime/moe/data.py), their held-out (val) split: zero setup, K = 4
    tasks.jsonl          one JSON object per line: {"task": NAME, "text": "..."} or {"task": NAME,
                         "path": FILE}; lines of one task are concatenated (paths relative to the file)
    NAME=PATH,NAME=PATH  text files (or folders of them, as `lsdt train --data` reads them)

A task's text is tokenized with the model's tokenizer, cut to `max_tokens`, and split into
non-overlapping windows of seq_len + 1 tokens (inputs and next-token targets). A "sample" below is
one token's activation vector; the seed asks for >= 500 per task for stable SI estimates, and 6+
tasks: fewer gives a warning, fewer than one window an error.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import UserError

BUILTIN = "builtin"
MIN_SAMPLES = 500  # seed 004, "SI requires >= 500 samples per task for stable estimates"
RECOMMENDED_TASKS = 6  # seed 004, "6+ tasks recommended"
MAX_TASK_BYTES = 8 << 20  # read at most this much text per task: far more than any probe needs


@dataclass(frozen=True)
class Task:
    name: str
    text: bytes
    origin: str  # where it came from, for meta.jsonl

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text).hexdigest()


def parse_tasks(spec: str, cache_dir: str | None = None) -> list[Task]:
    """`builtin`, a tasks.jsonl path, or NAME=PATH,...; UserError naming what is wrong."""
    spec = (spec or BUILTIN).strip()
    if spec == BUILTIN:
        return _builtin(cache_dir)
    if "=" not in spec:
        return _manifest(Path(spec))
    tasks, seen = [], set()
    for part in spec.split(","):
        name, sep, path = part.strip().partition("=")
        if not sep or not name or not path:
            raise UserError(f"--tasks {spec!r}: {part.strip()!r} is not NAME=PATH; accepted: builtin, a tasks.jsonl, "
                            "or NAME=PATH,NAME=PATH")
        if name in seen:
            raise UserError(f"--tasks: task {name!r} given twice")
        seen.add(name)
        tasks.append(Task(name, _read_corpus(path, f"--tasks {name}={path}"), path))
    if len(tasks) < 2:
        raise UserError(f"--tasks {spec!r}: {len(tasks)} task; accepted: at least 2 (specialization compares tasks)")
    return tasks


def _read_corpus(path: str, where: str) -> bytes:
    from engine.runtime.train.data import corpus_files

    out, size = [], 0
    for f in corpus_files(path, given=where):
        data = f.read_bytes()[: MAX_TASK_BYTES - size]
        out.append(data)
        size += len(data)
        if size >= MAX_TASK_BYTES:
            break
    return b"".join(out)


def _builtin(cache_dir: str | None) -> list[Task]:
    from engine.runtime.moe.data import builtin_source
    from engine.runtime.train.data import load_tokens
    from engine.sizing.moe import DOMAINS

    tasks = []
    for name in DOMAINS:
        data = load_tokens(builtin_source(name, cache_dir), cache_dir)  # the MoE's val split: never trained on
        tasks.append(Task(name, bytes(data.val[:MAX_TASK_BYTES]), f"builtin:{name} (val split)"))
    return tasks


def _manifest(path: Path) -> list[Task]:
    if not path.is_file():
        raise UserError(f"--tasks {path}: no such file; accepted: builtin, a tasks.jsonl, or NAME=PATH,NAME=PATH")
    texts: dict[str, list[bytes]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise UserError(f"--tasks {path}: not UTF-8 text; accepted: one JSON object per line") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}:{n}: not JSON ({exc.msg}); accepted: {{\"task\": NAME, \"text\": ...}}") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("task"), str) or not rec["task"]:
            raise UserError(f"{path}:{n}: needs a non-empty string 'task'; accepted: {{\"task\": NAME, \"text\": ...}} "
                            "or {\"task\": NAME, \"path\": FILE}")
        if isinstance(rec.get("text"), str):
            data = rec["text"].encode("utf-8")
        elif isinstance(rec.get("path"), str):
            data = _read_corpus(str((path.parent / rec["path"])), f"{path}:{n} path")
        else:
            raise UserError(f"{path}:{n}: task {rec['task']!r} has neither a string 'text' nor a 'path'")
        texts.setdefault(rec["task"], []).append(data)
    if len(texts) < 2:
        raise UserError(f"--tasks {path}: {len(texts)} task(s); accepted: at least 2 distinct 'task' names")
    return [Task(name, b"\n".join(parts)[:MAX_TASK_BYTES], f"{path}") for name, parts in texts.items()]


@dataclass
class TaskWindows:
    """Every task's windows [n, seq_len + 1] (int64), in task order."""

    names: list[str]
    windows: list[np.ndarray]
    warnings: list[str]

    def tokens(self, k: int) -> int:
        return int(self.windows[k][:, :-1].size)


def tokenize_tasks(tasks: list[Task], encode, seq_len: int, max_tokens: int, vocab_size: int) -> TaskWindows:
    """Tokenize, cut to max_tokens per task and window; UserError for a task without one window."""
    windows, warnings = [], []
    for t in tasks:
        ids = np.asarray(encode(t.text[: max_tokens * 8]), dtype=np.int64)[: max_tokens + 1]
        if ids.size and int(ids.max()) >= vocab_size:
            raise UserError(f"task {t.name}: token id {int(ids.max())} >= the model's vocab_size {vocab_size}")
        n = (len(ids) - 1) // seq_len
        if n < 1:
            raise UserError(f"task {t.name}: {len(ids)} tokens, fewer than one window of {seq_len + 1}; "
                            f"accepted: more text for it, or a smaller --seq")
        w = np.stack([ids[i * seq_len: i * seq_len + seq_len + 1] for i in range(n)])
        if w[:, :-1].size < MIN_SAMPLES:
            warnings.append(f"task {t.name}: {w[:, :-1].size} samples (tokens); the seed asks for >= {MIN_SAMPLES} for stable SI")
        windows.append(w)
    if len(tasks) < RECOMMENDED_TASKS:
        warnings.append(f"{len(tasks)} tasks; the seed recommends {RECOMMENDED_TASKS}+ for specialization estimates")
    return TaskWindows([t.name for t in tasks], windows, warnings)
