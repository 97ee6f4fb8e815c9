"""The lines `lsdt train` prints when a run ends: how it ended, final train/val loss, tokens,
elapsed time and which checkpoint to pick up (issue 17: a run ended with no summary at all).

Read back from the run directory (what the run wrote is what the summary says), so the CLI, a
resumed run and a reader of the directory agree.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine import fmt
from engine.runtime.train import rundir


def _loss(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def end_summary(run_dir: str | os.PathLike, reason: str, step: int, tokens: int, elapsed_s: float) -> list[str]:
    """Three lines: the end, the losses (last train, last and best val), the checkpoints (last,
    and the one at the best val step when one was kept there)."""
    metrics = rundir.read_metrics(run_dir) if (Path(run_dir) / rundir.METRICS_FILE).exists() else []
    last = metrics[-1] if metrics else {}
    vals = [(m["val_loss"], m["step"]) for m in metrics if m.get("val_loss") is not None]
    last_val = vals[-1] if vals else None
    best_val = min(vals) if vals else None
    ckpts = dict(rundir.checkpoint_steps(run_dir))
    lines = [f"lsdt train: ended ({reason}) at step {step:,} after {fmt.duration(elapsed_s)} · {tokens:,} tokens"]
    val = "n/a (no eval yet)" if last_val is None else f"{_loss(last_val[0])} (step {last_val[1]:,})"
    best = "" if best_val is None or best_val == last_val else f", best {_loss(best_val[0])} (step {best_val[1]:,})"
    train = "n/a (no log line yet)" if not last else f"{_loss(last.get('loss'))} (step {last.get('step', 0):,})"
    lines.append(f"  train loss {train} · val loss {val}{best}")
    if not ckpts:
        lines.append("  checkpoint none written")
        return lines
    last_step = max(ckpts)
    text = f"  checkpoint last {ckpts[last_step]}"
    if best_val is not None and best_val[1] != last_step:
        at_best = ckpts.get(best_val[1])
        text += f" · best-val {at_best}" if at_best else f" · best-val n/a (none kept at step {best_val[1]:,})"
    lines.append(text)
    return lines
