"""Domain slices of the two-phase MoE: built-in zero-setup corpora, --domains, and mixed batches.

Built-in slices (byte tokens, engine/runtime/train/data.py), nothing downloaded:

    code       the Python standard library's .py sources on this machine (data.py's "stdlib")
    math       generated: arithmetic, fractions, powers and linear equations with worked answers
    reasoning  generated: ordering puzzles, syllogisms and counting problems, step by step
    general    English prose that ships with Python: pydoc_data.topics (the language reference's
               topic texts, ~465 KB on CPython 3.11); where a build lacks it, the docstrings of the
               stdlib modules instead; paragraphs in a seeded shuffle so the val split is typical

The generated slices come from random.Random(GEN_SEED) with a fixed number of examples, so every
machine writes the same bytes (a test pins their SHA-256 prefix). They are written once to
<cache>/moe-domains-v1/<name>.txt and tokenized like any --data file.

Phase 1 draws each row of a micro-batch from a domain chosen with the data mix (seed 002 sec. 3:
code 35 %, math 25 %, reasoning 20 %, general 20 %; engine.sizing.moe.DATA_MIX), seeded by
(seed, step, micro) like data.py's batches, so a resumed run sees the same rows.
"""

from __future__ import annotations

import ast
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import UserError
from engine.runtime.train.data import STDLIB, TokenData, corpus_files, default_cache_dir, load_tokens, stdlib_files
from engine.sizing.moe import DATA_MIX, DOMAINS

GEN_SEED = 20260225  # any fixed value: the generated slices must be the same bytes everywhere
GEN_EXAMPLES = 6000  # ~400 KB per generated slice: 10 % val still holds > 300 windows of 128
_NAMES = ("Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy")
_THINGS = ("cats", "birds", "robots", "poets", "stones", "rivers", "engines", "planets", "teachers", "apples")
_TRAITS = ("mortal", "blue", "heavy", "curious", "ancient", "quiet", "fast", "green", "wise", "round")


def _math_text(n: int = GEN_EXAMPLES) -> str:
    rng = random.Random(GEN_SEED)
    out = []
    for _ in range(n):
        kind = rng.randrange(5)
        a, b = rng.randint(2, 999), rng.randint(2, 999)
        if kind == 0:
            out.append(f"Compute {a} + {b}.\n{a} + {b} = {a + b}.\nAnswer: {a + b}\n")
        elif kind == 1:
            out.append(f"Compute {a} - {b}.\n{a} - {b} = {a - b}.\nAnswer: {a - b}\n")
        elif kind == 2:
            a, b = rng.randint(2, 99), rng.randint(2, 99)
            out.append(f"Compute {a} * {b}.\n{a} * {b} = {a} * {b // 10 * 10} + {a} * {b % 10} = "
                       f"{a * (b // 10 * 10)} + {a * (b % 10)} = {a * b}.\nAnswer: {a * b}\n")
        elif kind == 3:
            x, m, c = rng.randint(-20, 20), rng.randint(2, 12), rng.randint(-50, 50)
            sign, neg = ("+", "-") if c >= 0 else ("-", "+")
            out.append(f"Solve {m}x {sign} {abs(c)} = {m * x + c}.\n{m}x = {m * x + c} {neg} {abs(c)} = {m * x}.\n"
                       f"x = {m * x} / {m} = {x}.\nAnswer: x = {x}\n")
        else:
            base, e = rng.randint(2, 9), rng.randint(2, 6)
            out.append(f"Compute {base}^{e}.\n{base}^{e} = {' * '.join([str(base)] * e)} = {base ** e}.\nAnswer: {base ** e}\n")
    return "\n".join(out)


def _reasoning_text(n: int = GEN_EXAMPLES) -> str:
    rng = random.Random(GEN_SEED + 1)
    out = []
    for _ in range(n):
        kind = rng.randrange(3)
        if kind == 0:
            a, b, c = rng.sample(_NAMES, 3)
            out.append(f"{a} is taller than {b}. {b} is taller than {c}. Who is the tallest?\n"
                       f"Step 1: {a} > {b}.\nStep 2: {b} > {c}, so {a} > {b} > {c}.\nAnswer: {a}\n")
        elif kind == 1:
            x, t = rng.sample(_THINGS, 2)
            trait, name = rng.choice(_TRAITS), rng.choice(_NAMES)
            out.append(f"All {x} are {trait}. {name} is one of the {x}. Is {name} {trait}?\n"
                       f"Step 1: every one of the {x} is {trait}.\nStep 2: {name} is one of the {x}.\n"
                       f"Therefore {name} is {trait}.\nAnswer: yes\n")
        else:
            name, thing = rng.choice(_NAMES), rng.choice(_THINGS)
            have, give, get = rng.randint(5, 40), rng.randint(1, 5), rng.randint(1, 9)
            out.append(f"{name} has {have} {thing}, gives away {give} and then finds {get} more. How many now?\n"
                       f"Step 1: {have} - {give} = {have - give}.\nStep 2: {have - give} + {get} = {have - give + get}.\n"
                       f"Answer: {have - give + get}\n")
    return "\n".join(out)


def _general_text() -> str:
    try:
        from pydoc_data.topics import topics  # the language reference's topic texts (English prose)

        text = "\n\n".join(topics[k] for k in sorted(topics))
    except ImportError:  # a build without pydoc_data: the stdlib's module docstrings
        docs = []
        for f in stdlib_files():
            try:
                doc = ast.get_docstring(ast.parse(f.read_text(encoding="utf-8", errors="replace")))
            except (SyntaxError, ValueError):
                continue
            if doc:
                docs.append(doc)
        text = "\n\n".join(docs)
    # Paragraphs in a seeded order: the val split (the corpus's tail) must look like the rest, not like
    # the last topics alphabetically (which are tables of code: "typesseq-mutable", ...).
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    random.Random(GEN_SEED + 2).shuffle(paragraphs)
    return "\n\n".join(paragraphs)


_GENERATORS = {"math": _math_text, "reasoning": _reasoning_text, "general": _general_text}


def builtin_source(name: str, cache_dir: str | Path | None = None) -> str:
    """The --data source of a built-in slice (writing its text file into the cache once)."""
    if name == "code":
        return STDLIB
    if name not in _GENERATORS:
        raise UserError(f"domain {name!r} has no built-in slice; accepted: {', '.join(DOMAINS)} (or give {name}=PATH)")
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    path = root / "moe-domains-v1" / f"{name}.txt"
    text = _GENERATORS[name]().encode("utf-8")
    # rewrite only when different: data.py's cache key includes the mtime
    if not path.is_file() or hashlib.sha256(path.read_bytes()).digest() != hashlib.sha256(text).digest():
        from engine.atomic import write_atomic

        write_atomic(path, text)
    return str(path)


def parse_domains(text: str | None, n_experts: int) -> dict[str, str | None]:
    """'code=PATH,math=PATH' -> {domain: source or None (built-in)}, one domain per expert, in expert order.

    Names among the built-in domains override those slices (the others stay built in); any other
    names must list exactly one domain per expert, each with a path.
    """
    given: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, path = part.strip().partition("=")
        if not sep or not name or not path:
            raise UserError(f"--domains {text!r}: {part.strip()!r} is not NAME=PATH; accepted e.g. code=src/,math=math.txt")
        if name in given:
            raise UserError(f"--domains {text!r}: domain {name!r} given twice")
        # Checked here, before any run directory is written: a missing path found later left a
        # moe.toml behind that made the corrected command fail with "already holds a MoE run".
        corpus_files(path, given=f"--domains {name}={path}")
        given[name] = path
    if all(n in DOMAINS for n in given):
        if n_experts != len(DOMAINS):
            if len(given) != n_experts:
                raise UserError(f"--domains: the model has {n_experts} experts; the built-in slices are {len(DOMAINS)} "
                                f"({', '.join(DOMAINS)}); accepted: exactly {n_experts} NAME=PATH entries")
            return dict(given)
        return {d: given.get(d) for d in DOMAINS}
    if len(given) != n_experts:
        raise UserError(f"--domains {text!r}: {len(given)} domain(s) for {n_experts} experts; accepted: one NAME=PATH "
                        f"per expert, or overrides of the built-in {', '.join(DOMAINS)}")
    return dict(given)


def default_mix(names: list[str]) -> list[float]:
    """Seed 002's mix for the four built-in domains; equal shares for any other set."""
    if list(names) == list(DOMAINS):
        return list(DATA_MIX)
    return [1.0 / len(names)] * len(names)


@dataclass
class DomainSet:
    """One token corpus per expert, and the phase-1 mix over them."""

    names: list[str]
    data: list[TokenData]
    mix: list[float]

    @classmethod
    def load(cls, domains: dict[str, str | None], cache_dir: str | None, val_fraction: float,
             mix: list[float] | None = None) -> "DomainSet":
        names = list(domains)
        data = [load_tokens(src or builtin_source(n, cache_dir), cache_dir, val_fraction) for n, src in domains.items()]
        return cls(names, data, list(mix) if mix else default_mix(names))

    def check_seq_len(self, seq_len: int) -> None:
        for name, d in zip(self.names, self.data):
            try:
                d.check_seq_len(seq_len)
            except UserError as exc:
                raise UserError(f"domain {name}: {exc}") from None

    def describe(self) -> str:
        return "; ".join(f"{n} {len(d.train):,}+{len(d.val):,} tok ({d.source})" for n, d in zip(self.names, self.data))

    def mixed_batch(self, split: str, batch_size: int, seq_len: int, *, seed: int, step: int, micro: int = 0):
        """(x, y, domain ids [B]) with each row's domain drawn from the mix."""
        import torch

        rng = np.random.default_rng([seed, step, micro, 0x5A1])
        doms = rng.choice(len(self.names), size=batch_size, p=np.asarray(self.mix) / sum(self.mix))
        rows = []
        for d in doms:
            arr = self.data[d].train if split == "train" else self.data[d].val
            off = int(rng.integers(0, len(arr) - seq_len))
            rows.append(arr[off:off + seq_len + 1].astype(np.int64))
        t = torch.from_numpy(np.stack(rows))
        return t[:, :-1], t[:, 1:], torch.from_numpy(doms.astype(np.int64))
