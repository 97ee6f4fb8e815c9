"""The lab's stages over one model and one artifact directory: capture, sae, si, dynamic-k, or all
of them in order (`run`). Each stage writes its CSV into the artifact (artifacts.py) and a
`{"kind": "stage"}` line into meta.jsonl; progress lines go to progress.jsonl for the TUI.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from engine.errors import UserError
from engine.runtime.sparsity import artifacts, capture as cap, dynamic_k as dk, sae as S, si as SI
from engine.runtime.sparsity.sources import Source, load_source, select_layers
from engine.runtime.sparsity.tasks import parse_tasks, tokenize_tasks

STAGES = ("capture", "sae", "si", "dynamic-k")
SPARSITY_COLUMNS = ["layer", "width", "tokens", "frac", "pr", "dead"]
SAE_COLUMNS = ["layer", "l1", "chosen", "steps", "d_sae", "train_tokens", "val_tokens", "l0", "mse", "explained_variance",
               "ce_clean", "ce_sae", "ce_zero", "ce_loss_recovered", "dead_frac"]
SI_COLUMNS = ["layer", "task", "SI", "Q", "n_communities", "unit", "n_units", "SI_null", "edges"]
SI_UNIT_COLUMNS = ["layer", "unit", "index", "task", "SI", "SI_null"]
DK_COLUMNS = ["k", "perplexity", "tokens_per_sec", "flops_reduction", "quality_delta",
              "perplexity_std", "tokens_per_sec_std", "quality_delta_std", "mode"]


@dataclass
class LabConfig:
    model: str
    tasks: str = "builtin"
    layers: str = "auto"
    gate_layers: str = "all"  # dynamic-k gates every MLP layer unless told otherwise
    seq_len: int = 128  # capped at the model's context
    max_tokens: int = 8192  # per task
    batch: int = 8
    threshold: float = 0.0  # seed 004
    save_acts: int = 0
    seed: int = 0
    device: str = "cpu"
    data_cache: str | None = None
    # sae
    expansion: int = S.DEFAULT_EXPANSION
    l1: list = field(default_factory=lambda: list(S.DEFAULT_L1))
    sae_tokens: int = 16384
    sae_steps: int = 2000
    sae_lr: float = 1e-3
    ce_windows: int = 32
    # si
    min_support: int = SI.DEFAULT_MIN_SUPPORT
    top_edges: int = SI.DEFAULT_TOP_EDGES
    sae_from: str | None = None
    # dynamic-k
    k: list = field(default_factory=lambda: list(dk.DEFAULT_K))
    seeds: int = dk.DEFAULT_SEEDS
    eval_windows: int = 32
    mode: str = "mask"


class Lab:
    """A loaded model, its tasks and layers, and the artifact being written."""

    def __init__(self, cfg: LabConfig, out: str | None, stages: list[str], log=None):
        self.cfg = cfg
        self.log = log or (lambda msg: print(f"lsdt sparsity: {msg}", file=sys.stderr, flush=True))
        # Everything a user can get wrong is checked before the artifact directory exists.
        _require_packages(stages)
        if out is not None and Path(out).exists():
            raise UserError(f"--out {out}: already exists; artifacts are never overwritten: accepted: a new path")
        self.src: Source = load_source(cfg.model, cfg.device)
        self.seq = min(cfg.seq_len, self.src.seq_len)
        self.tasks = parse_tasks(cfg.tasks, cfg.data_cache)
        self.tw = tokenize_tasks(self.tasks, self.src.encode, self.seq, cfg.max_tokens, self.src.vocab_size)
        self.layers = select_layers(self.src, cfg.layers)
        self.gate_layers = select_layers(self.src, cfg.gate_layers) if "dynamic-k" in stages else []
        self.sae_parent = Path(cfg.sae_from) if cfg.sae_from else None
        if self.sae_parent is not None:
            artifacts.read_meta(self.sae_parent)
            for layer in self.layers:
                if not (self.sae_parent / "sae" / layer.label / "sae_weights.safetensors").is_file():
                    raise UserError(f"--sae-from {self.sae_parent}: no SAE for layer {layer.label} "
                                    f"(sae/{layer.label}/sae_weights.safetensors); accepted: an artifact whose sae stage covered it")
        if cfg.mode == "gather" and "dynamic-k" in stages:
            dk.check_gather_device(cfg.device)
        need = cfg.save_acts * sum(l.width for l in self.layers) * 4 if cfg.save_acts else 0
        self.art = artifacts.Artifact(out or artifacts.default_dir(self.src.name), need)
        for w in self.tw.warnings:
            self.log(f"warning: {w}")
        self.art.add_meta({"kind": "config", "stages": stages, "config": asdict(cfg), "seed": cfg.seed,
                           "model": {"kind": self.src.kind, "name": self.src.name, "path": self.src.path,
                                     "weights_sha256": self.src.weights_sha256, "tokenizer": self.src.tokenizer,
                                     "layers": [l.label for l in self.src.layers]},
                           "seq_len": self.seq, "layers": [l.label for l in self.layers],
                           "tasks": [{"name": t.name, "origin": t.origin, "sha256": t.sha256,
                                      "tokens": self.tw.tokens(i)} for i, t in enumerate(self.tasks)],
                           "warnings": self.tw.warnings, "versions": artifacts.library_versions()})
        self.results: dict = {"artifact": str(self.art.path)}

    def stage_done(self, stage: str, t0: float, **extra) -> None:
        seconds = time.perf_counter() - t0
        self.art.add_meta({"kind": "stage", "stage": stage, "seconds": round(seconds, 3), **extra})
        self.art.progress(stage=stage, status="done", seconds=seconds)
        self.log(f"{stage}: done in {seconds:.1f} s")

    # ---------------------------------------------------------------- capture

    def capture(self) -> list[dict]:
        t0 = time.perf_counter()
        self.art.progress(stage="capture", status="start")
        res = cap.capture(self.src, self.layers, self.tw, batch=self.cfg.batch, threshold=self.cfg.threshold, seed=self.cfg.seed,
                          device=self.cfg.device, coactivation=False, tasks=False, save_acts=self.cfg.save_acts,
                          acts_dir=self.art.path / "acts", progress=self._progress("capture"))
        rows = [{"layer": l.label, "width": l.width, "tokens": res.stats[l.label].n, "frac": res.stats[l.label].frac(),
                 "pr": res.stats[l.label].pr(), "dead": res.stats[l.label].dead()} for l in self.layers if l.label in res.stats]
        self.art.write_csv("sparsity.csv", SPARSITY_COLUMNS, rows)
        self.results["sparsity"] = rows
        self.stage_done("capture", t0, tokens=res.tokens, saved_acts=res.saved)
        return rows

    def _progress(self, stage: str):
        last = [0.0]

        def report(done: int, total: int) -> None:
            now = time.perf_counter()
            if now - last[0] > 0.5 or done == total:
                last[0] = now
                self.art.progress(stage=stage, done=done, total=total)

        return report

    # ---------------------------------------------------------------- sae

    def sae(self) -> list[dict]:
        from engine.runtime.train.rundir import RunWriter

        t0 = time.perf_counter()
        c = self.cfg
        rows = []
        pool = np.concatenate(self.tw.windows)
        for layer in self.layers:
            self.art.progress(stage="sae", layer=layer.label, status="collect")
            x, wins, _ = cap.collect(self.src, layer, self.tw, c.sae_tokens, batch=c.batch, device=c.device)
            tr, va = S.split_windows(wins, c.seed)
            if len(va) == 0 or len(tr) == 0:
                raise UserError(f"layer {layer.label}: {len(torch.unique(wins))} window(s) of activations; the 80/20 split "
                                "needs at least 2; accepted: more task text or a larger --sae-tokens")
            scale = S.normalisation_scale(x[tr])
            x_train, x_val = (x[tr] * scale).to(c.device), x[va].to(c.device)
            val_windows = pool[np.unique(wins[va].numpy())][: c.ce_windows]
            ce_clean = S.spliced_ce(self.src, layer, val_windows, None, c.device, c.batch)
            ce_zero = S.spliced_ce(self.src, layer, val_windows, torch.zeros_like, c.device, c.batch)
            d_sae = c.expansion * layer.width
            layer_rows = []
            for l1 in c.l1:
                run_dir = self.art.path / "sae" / layer.label / "runs" / f"l1_{l1:g}"
                writer = RunWriter(run_dir)
                (run_dir / "checkpoints").rmdir()  # RunWriter makes it; an SAE run keeps its weights in sae/<layer>/
                writer.event("start", stage="sae", layer=layer.label, l1=l1, d_sae=d_sae)
                scfg = S.SAEConfig(c.expansion, tuple(c.l1), c.sae_lr, max_steps=c.sae_steps, seed=c.seed)
                state, steps = S.train_one(x_train, x_val * scale, d_sae, l1, scfg, log=writer.metric)
                raw = S.fold_scale(state, scale)
                sae = S.SAE.from_state(raw).to(c.device)
                m = S.reconstruction_metrics(sae, x_val)
                ce_sae = S.spliced_ce(self.src, layer, val_windows, lambda act: sae(act)[0], c.device, c.batch)
                row = {"layer": layer.label, "l1": l1, "chosen": False, "steps": steps, "d_sae": d_sae,
                       "train_tokens": len(tr), "val_tokens": len(va), **m, "ce_clean": ce_clean, "ce_sae": ce_sae,
                       "ce_zero": ce_zero, "ce_loss_recovered": S.ce_loss_recovered(ce_clean, ce_sae, ce_zero)}
                writer.event("end", reason="completed", step=steps, **{k: row[k] for k in ("l0", "explained_variance", "ce_loss_recovered")})
                layer_rows.append((row, raw))
                self.art.progress(stage="sae", layer=layer.label, l1=l1, status="done", l0=m["l0"],
                                  explained_variance=m["explained_variance"], ce_loss_recovered=row["ce_loss_recovered"])
                self.log(f"sae layer {layer.label} l1 {l1:g}: L0 {m['l0']:.1f}  EV {m['explained_variance']:.3f}  "
                         f"CE rec {row['ce_loss_recovered']:.3f}  dead {m['dead_frac']:.2f}  ({steps} steps)")
            best_row, best_state = choose(layer_rows, S.TARGET_EV)
            best_row["chosen"] = True
            self._save_sae(layer, best_state, best_row, scale)
            rows += [r for r, _ in layer_rows]
        self.art.write_csv("sae.csv", SAE_COLUMNS, rows)
        self.results["sae"] = rows
        self.stage_done("sae", t0)
        return rows

    def _save_sae(self, layer, state: dict, row: dict, scale: float) -> None:
        from safetensors.torch import save

        d_in, d_sae = state["W_enc"].shape
        cfg = {  # SAELens's cfg.json keys (standard architecture) and LSDT's provenance
            "architecture": "standard", "d_in": int(d_in), "d_sae": int(d_sae), "dtype": "float32", "device": "cpu",
            "model_name": self.src.name, "hook_name": f"{layer.label}.mlp.down.input", "hook_layer": layer.label,
            "hook_head_index": None, "activation_fn_str": "relu", "apply_b_dec_to_input": True,
            "finetuning_scaling_factor": False, "sae_lens_training_version": None, "prepend_bos": False,
            "dataset_path": self.cfg.tasks, "context_size": self.seq, "normalize_activations": "none",
            "lsdt": {"l1": row["l1"], "steps": row["steps"], "input_scale_folded": scale, "seed": self.cfg.seed,
                     "weights_sha256": self.src.weights_sha256},
        }
        base = Path("sae") / layer.label
        self.art.write(str(base / "sae_weights.safetensors"), save({k: state[k].contiguous() for k in ("W_enc", "W_dec", "b_enc", "b_dec")}))
        self.art.write(str(base / "cfg.json"), json.dumps(cfg, indent=2, sort_keys=True))

    # ---------------------------------------------------------------- si

    def si(self) -> list[dict]:
        t0 = time.perf_counter()
        c = self.cfg
        self.art.progress(stage="si", status="start")
        neurons = cap.capture(self.src, self.layers, self.tw, batch=c.batch, threshold=c.threshold, seed=c.seed,
                              device=c.device, coactivation=True, progress=self._progress("si"))
        rows, units = [], []
        for layer in self.layers:
            st = neurons.stats.get(layer.label)
            if st is None:
                continue
            q, n_comm, n_edges = SI.graph_modularity(st.coactive, st.n, c.seed, c.min_support, c.top_edges)
            self._si_rows(layer.label, "neuron", st, q, n_comm, n_edges, rows, units)
        saes = self._load_saes()
        if saes:
            feats = cap.capture(self.src, [l for l in self.layers if l.label in saes], self.tw, batch=c.batch, threshold=0.0,
                                seed=c.seed, device=c.device, coactivation=False,
                                transform=lambda l, x: saes[l.label].encode(x.float()))
            for layer in self.layers:
                if layer.label in feats.stats:
                    # features: no co-activation graph (d_sae^2 counts would dwarf the rest); Q is n/a
                    self._si_rows(layer.label, "feature", feats.stats[layer.label], None, None, None, rows, units)
        self.art.write_csv("si_modularity.csv", SI_COLUMNS, rows)
        self.art.write_csv("si_units.csv", SI_UNIT_COLUMNS, units)
        self.results["si"] = rows
        self.stage_done("si", t0)
        return rows

    def _load_saes(self) -> dict:
        from safetensors.torch import load_file

        base = self.sae_parent or self.art.path
        out = {}
        for layer in self.layers:
            f = base / "sae" / layer.label / "sae_weights.safetensors"
            if f.is_file():
                out[layer.label] = S.SAE.from_state(load_file(str(f))).to(self.cfg.device)
        if self.sae_parent is not None and out:
            self.art.add_meta({"kind": "parent", "stage": "sae", "path": str(self.sae_parent),
                               "meta_sha256": _sha(self.sae_parent / artifacts.META_FILE)})
        return out

    def _si_rows(self, label, unit, st, q, n_comm, n_edges, rows, units) -> None:
        si = SI.specialization_index(st.task_active, st.task_tokens)
        null = SI.specialization_index(st.null_active, st.null_tokens)
        pref = SI.preferred_task(st.task_active, st.task_tokens)
        live = ~np.isnan(si)
        common = {"layer": label, "Q": q, "n_communities": n_comm, "unit": unit, "edges": n_edges}
        rows.append({**common, "task": "all", "n_units": int(live.sum()),
                     "SI": float(si[live].mean()) if live.any() else None,
                     "SI_null": float(np.nanmean(null)) if (~np.isnan(null)).any() else None})
        for k, name in enumerate(self.tw.names):
            mine = live & (pref == k)
            rows.append({**common, "task": name, "n_units": int(mine.sum()),
                         "SI": float(si[mine].mean()) if mine.any() else None,
                         "SI_null": float(np.nanmean(null[mine])) if mine.any() and (~np.isnan(null[mine])).any() else None})
        for i in np.flatnonzero(live):
            units.append({"layer": label, "unit": unit, "index": int(i), "task": self.tw.names[pref[i]],
                          "SI": float(si[i]), "SI_null": float(null[i]) if not np.isnan(null[i]) else None})

    # ---------------------------------------------------------------- dynamic-k

    def dynamic_k(self) -> list[dict]:
        t0 = time.perf_counter()
        c = self.cfg

        def progress(seed, k, ppl, tps):
            self.art.progress(stage="dynamic-k", seed=seed, k=k, perplexity=ppl, tokens_per_sec=tps)

        rows = dk.sweep(self.src, self.gate_layers, self.tw.windows, c.k, c.seeds, c.eval_windows, c.device, c.mode, c.batch, progress)
        for r in rows:
            r["mode"] = c.mode
        self.art.write_csv("dynamic_k.csv", DK_COLUMNS, rows)
        self.results["dynamic_k"] = rows
        self.stage_done("dynamic-k", t0, gated_layers=[l.label for l in self.gate_layers])
        return rows


def _require_packages(stages: list[str]) -> None:
    """The `sparsity` extra's packages, checked before anything runs (a missing one was a traceback mid-run)."""
    import importlib.util

    needed = {"safetensors": {"sae", "si"}, "networkx": {"si"}}
    for module, users in needed.items():
        if users & set(stages) and importlib.util.find_spec(module) is None:
            raise UserError(f"lsdt sparsity {'/'.join(sorted(users & set(stages)))}: needs the `{module}` package; "
                            "accepted: pip install 'lsdt[sparsity]'")


def choose(layer_rows: list[tuple[dict, dict]], target_ev: float) -> tuple[dict, dict]:
    """The sparsest (lowest L0) L1 whose validation explained variance reaches target_ev, else the best EV."""
    good = [(r, s) for r, s in layer_rows if r["explained_variance"] >= target_ev]
    if good:
        return min(good, key=lambda rs: (rs[0]["l0"], rs[0]["l1"]))
    return max(layer_rows, key=lambda rs: (rs[0]["explained_variance"], -rs[0]["l1"]))


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_stages(cfg: LabConfig, stages: list[str], out: str | None = None, log=None) -> dict:
    """Run `stages` (in STAGES order) into one new artifact; the directory is removed if one fails."""
    torch.manual_seed(cfg.seed)
    lab = Lab(cfg, out, stages, log)
    try:
        for stage in STAGES:
            if stage in stages:
                getattr(lab, stage.replace("-", "_"))()
        lab.art.progress(stage="all", status="done")
        lab.art.seal()
    except BaseException:
        lab.art.discard()
        raise
    return lab.results
