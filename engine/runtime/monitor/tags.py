"""Tag names other trainers log, mapped to LSDT's series names (one table, every reader uses it).

LSDT's own metrics.jsonl keys are the series the Monitor draws: `loss`, `val_loss`, `lr`,
`grad_norm`, `tokens`, `tok_per_s`, `mfu`, `vram_alloc_bytes`, `vram_peak_bytes`. Other trainers
spell them their own way: the Hugging Face Trainer logs `loss`, `eval_loss`, `learning_rate`,
`grad_norm` (and `train/loss` … through its TensorBoard callback), Lightning's CSVLogger whatever
`self.log` was given (`train_loss`, `val_loss`) and `lr-AdamW` from LearningRateMonitor, nanoGPT
style scripts `train/loss`, `val/loss`, `lr`. A tag not in the table keeps its own name: it is
still a series a user can pick.
"""

from __future__ import annotations

SERIES_OF_TAG: dict[str, str] = {
    # training loss
    "loss": "loss", "train/loss": "loss", "train_loss": "loss", "loss/train": "loss", "training_loss": "loss",
    "train/loss_step": "loss", "train_loss_step": "loss",
    # validation loss
    "val_loss": "val_loss", "val/loss": "val_loss", "eval_loss": "val_loss", "eval/loss": "val_loss",
    "loss/val": "val_loss", "validation_loss": "val_loss", "valid/loss": "val_loss",
    # learning rate
    "lr": "lr", "learning_rate": "lr", "train/learning_rate": "lr", "train/lr": "lr", "lr/train": "lr",
    # gradient norm
    "grad_norm": "grad_norm", "train/grad_norm": "grad_norm", "gradient_norm": "grad_norm", "grad-norm": "grad_norm",
    # throughput and tokens
    "tokens": "tokens", "train/tokens": "tokens", "num_input_tokens_seen": "tokens", "train/num_input_tokens_seen": "tokens",
    "tok_per_s": "tok_per_s", "tokens_per_second": "tok_per_s", "train/tokens_per_second": "tok_per_s",
    "mfu": "mfu", "train/mfu": "mfu",
}

# Lightning's LearningRateMonitor names its series "lr-<OptimizerClass>" (e.g. lr-AdamW).
_PREFIX_SERIES = (("lr-", "lr"),)


def series_name(tag: str) -> str:
    """LSDT's name for `tag` when it is a known spelling of one of LSDT's series, else `tag` itself."""
    key = tag.strip()
    if key in SERIES_OF_TAG:
        return SERIES_OF_TAG[key]
    lower = key.lower()
    if lower in SERIES_OF_TAG:
        return SERIES_OF_TAG[lower]
    for prefix, series in _PREFIX_SERIES:
        if key.startswith(prefix) and "/" not in key:
            return series
    return key
