"""Stage 2, sae: a sparse autoencoder per layer, trained on captured MLP activations.

Architecture (SAELens "standard", Bricken et al. 2023 "Towards Monosemanticity"):

    f = ReLU((x - b_dec) W_enc + b_enc)        W_enc [d_in, d_sae]
    x_hat = f W_dec + b_dec                     W_dec [d_sae, d_in], d_sae = expansion x d_in (8x)
    loss = mean_tokens ||x - x_hat||^2 / d_in + l1 x mean_tokens sum_i f_i ||W_dec,i||

The L1 term is weighted by decoder row norms (Anthropic, "Training SAEs", April 2024 update) so the
penalty cannot be dodged by shrinking f and growing W_dec. Inputs are scaled by one scalar so that
E||x||^2 = d_in on the train split (SAELens `normalize_activations = expected_average_only_in`);
the scale is folded back into the saved weights, so the file works on raw activations.

Data: windows (not tokens) are split 80/20 into train and validation with the seed, so no
validation token shares a context with a training token. Each L1 of the sweep trains until the
validation reconstruction loss has not improved for `patience` evaluations (or max_steps); the
best-validation weights are kept. The chosen L1 is the sparsest (lowest validation L0) whose
validation explained variance reaches `target_ev`, else the best explained variance.

Metrics, as SAELens reports them, on the validation split:
    L0                   mean number of active features per token
    MSE                  mean over elements of (x - x_hat)^2
    explained variance   1 - E||x - x_hat||^2 / (E||x||^2 - ||E x||^2)
    CE loss recovered    (CE_zero - CE_sae) / (CE_zero - CE_clean): next-token cross-entropy with the
                         SAE's reconstruction spliced in, against the clean model and the layer's
                         activation zero-ablated (1 = as good as clean, 0 = as bad as ablation)
    dead features        fraction of features that never fire on the validation split

Why not SAELens itself: it needs a TransformerLens / hub model and a heavy dependency stack, and
LSDT must run offline on its own checkpoints. The on-disk layout is SAELens's (cfg.json +
sae_weights.safetensors with W_enc, W_dec, b_enc, b_dec), so SAELens users can load what we write.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

DEFAULT_EXPANSION = 8  # seed 004: dictionary = 8x hidden_dim
DEFAULT_L1 = (3e-3, 1e-2, 3e-2, 1e-1)
VAL_FRACTION = 0.2  # seed 004: 80/20 train/val split
TARGET_EV = 0.9  # issue 19's target for the chosen L1


class SAE(nn.Module):
    def __init__(self, d_in: int, d_sae: int):
        super().__init__()
        self.W_enc = nn.Parameter(torch.empty(d_in, d_sae))
        self.W_dec = nn.Parameter(torch.empty(d_sae, d_in))
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.b_dec = nn.Parameter(torch.zeros(d_in))

    def init(self, generator: torch.Generator, b_dec: torch.Tensor) -> None:
        with torch.no_grad():
            w = torch.randn(self.W_dec.shape, generator=generator)
            self.W_dec.copy_(w / w.norm(dim=1, keepdim=True) * 0.1)
            self.W_enc.copy_(self.W_dec.T)  # tied initialisation (SAELens `init_encoder_as_decoder_transpose`)
            self.b_dec.copy_(b_dec)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu((x - self.b_dec) @ self.W_enc + self.b_enc)

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        return f @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.encode(x)
        return self.decode(f), f

    def loss(self, x: torch.Tensor, l1: float) -> tuple[torch.Tensor, torch.Tensor]:
        x_hat, f = self(x)
        mse = ((x_hat - x) ** 2).mean()
        sparsity = (f * self.W_dec.norm(dim=1)).sum(-1).mean()
        return mse + l1 * sparsity, mse

    def state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().to("cpu", torch.float32).contiguous().clone() for k, v in self.state_dict().items()}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> "SAE":
        d_in, d_sae = state["W_enc"].shape
        sae = cls(d_in, d_sae)
        sae.load_state_dict({k: state[k] for k in ("W_enc", "W_dec", "b_enc", "b_dec")})
        return sae.eval()


def fold_scale(state: dict[str, torch.Tensor], scale: float) -> dict[str, torch.Tensor]:
    """Weights trained on x * scale -> weights for raw x (encode and decode unchanged otherwise):
    W_enc * scale, b_dec / scale, W_dec / scale, b_enc as is."""
    return {"W_enc": state["W_enc"] * scale, "b_enc": state["b_enc"].clone(),
            "W_dec": state["W_dec"] / scale, "b_dec": state["b_dec"] / scale}


# --------------------------------------------------------------------------- metrics


def explained_variance(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """1 - E||x - x_hat||^2 / (E||x||^2 - ||E x||^2) over the rows of x [N, d]."""
    x, x_hat = x.double(), x_hat.double()
    err = ((x - x_hat) ** 2).sum(-1).mean()
    var = (x ** 2).sum(-1).mean() - (x.mean(0) ** 2).sum()
    return float(1.0 - err / var) if var > 0 else float("nan")


def reconstruction_metrics(sae: SAE, x: torch.Tensor, batch: int = 4096) -> dict:
    """L0, MSE, explained variance and dead-feature fraction of `sae` on x [N, d] (raw scale)."""
    with torch.no_grad():
        hats, l0, fired = [], 0.0, torch.zeros(sae.W_enc.shape[1], dtype=torch.bool, device=x.device)
        for lo in range(0, len(x), batch):
            x_hat, f = sae(x[lo: lo + batch])
            hats.append(x_hat)
            on = f > 0
            l0 += float(on.sum())
            fired |= on.any(0)
        x_hat = torch.cat(hats)
    return {"l0": l0 / len(x), "mse": float(((x_hat - x).double() ** 2).mean()),
            "explained_variance": explained_variance(x, x_hat), "dead_frac": float((~fired).double().mean())}


def ce_loss_recovered(ce_clean: float, ce_sae: float, ce_zero: float) -> float:
    """(CE_zero - CE_sae) / (CE_zero - CE_clean); nan when ablation costs nothing."""
    gap = ce_zero - ce_clean
    return float((ce_zero - ce_sae) / gap) if gap > 0 else float("nan")


def spliced_ce(src, layer, windows: np.ndarray, replace, device: str = "cpu", batch: int = 8) -> float:
    """Mean next-token cross-entropy of the model on windows [n, T+1], with `replace(act) -> act`
    substituted for the layer's activation (None: clean)."""
    from engine.runtime.sparsity.capture import mlp_hooks

    total, count = 0.0, 0
    hook = (lambda l, act: replace(act)) if replace is not None else (lambda l, act: None)
    with torch.no_grad(), mlp_hooks([layer], hook):
        for lo in range(0, len(windows), batch):
            w = torch.from_numpy(windows[lo: lo + batch]).to(device)
            logits = src.forward(w[:, :-1])
            loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.size(-1)), w[:, 1:].reshape(-1), reduction="sum")
            total += float(loss)
            count += w[:, 1:].numel()
    return total / count


# --------------------------------------------------------------------------- training


def split_windows(window_ids: torch.Tensor, seed: int, val_fraction: float = VAL_FRACTION) -> tuple[torch.Tensor, torch.Tensor]:
    """(train row indices, val row indices): whole windows go to one side, chosen by a seeded shuffle."""
    wins = torch.unique(window_ids)
    perm = wins[torch.randperm(len(wins), generator=torch.Generator().manual_seed(seed))]
    n_val = max(1, round(len(wins) * val_fraction)) if len(wins) > 1 else 0
    val_wins = perm[:n_val]
    is_val = torch.isin(window_ids, val_wins)
    return torch.nonzero(~is_val).flatten(), torch.nonzero(is_val).flatten()


@dataclass
class SAEConfig:
    expansion: int = DEFAULT_EXPANSION
    l1: tuple[float, ...] = DEFAULT_L1
    lr: float = 1e-3  # Adam, as SAELens's default
    batch_tokens: int = 1024
    max_steps: int = 2000
    eval_every: int = 50
    patience: int = 4  # evaluations without a better validation MSE before stopping
    target_ev: float = TARGET_EV
    seed: int = 0


def train_one(x_train: torch.Tensor, x_val: torch.Tensor, d_sae: int, l1: float, cfg: SAEConfig,
              log=None) -> tuple[dict[str, torch.Tensor], int]:
    """Train on normalised inputs; (best-validation state, steps run). `log(record)` gets a record per eval."""
    g = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    sae = SAE(x_train.shape[1], d_sae).to(x_train.device)
    sae.init(g, x_train.mean(0).cpu())
    sae.to(x_train.device)
    opt = torch.optim.Adam(sae.parameters(), lr=cfg.lr)
    best, best_state, bad, step = math.inf, sae.state(), 0, 0
    t0 = time.perf_counter()
    order_gen = torch.Generator().manual_seed(cfg.seed + 1)
    perm, at = torch.randperm(len(x_train), generator=order_gen), 0
    for step in range(1, cfg.max_steps + 1):
        if at + cfg.batch_tokens > len(perm):
            perm, at = torch.randperm(len(x_train), generator=order_gen), 0
        xb = x_train[perm[at: at + cfg.batch_tokens].to(x_train.device)]
        at += cfg.batch_tokens
        loss, _ = sae.loss(xb, l1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % cfg.eval_every == 0 or step == cfg.max_steps:
            m = reconstruction_metrics(sae, x_val)
            if log:
                elapsed = time.perf_counter() - t0
                log({"step": step, "time": time.time(), "loss": loss.item(), "lr": cfg.lr, "tokens": step * cfg.batch_tokens,
                     "tok_per_s": step * cfg.batch_tokens / max(elapsed, 1e-9), "mfu": None, "vram_alloc_bytes": None,
                     "vram_peak_bytes": None, "val_loss": m["mse"], "val_mse": m["mse"], "l0": m["l0"],
                     "explained_variance": m["explained_variance"], "dead_frac": m["dead_frac"], "l1": l1})
            if m["mse"] < best * (1 - 1e-4):
                best, best_state, bad = m["mse"], sae.state(), 0
            else:
                bad += 1
                if bad >= cfg.patience:
                    break
    return best_state, step


def normalisation_scale(x_train: torch.Tensor) -> float:
    """s with E||s x||^2 = d_in on the train split (SAELens expected_average_only_in)."""
    mean_sq = float((x_train.double() ** 2).sum(-1).mean())
    return math.sqrt(x_train.shape[1] / mean_sq) if mean_sq > 0 else 1.0
