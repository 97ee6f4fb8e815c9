"""MoE test fixtures: a private token cache, and tiny configs that train in a few seconds."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def moe_cache(tmp_path_factory):
    """One token cache for the session (built-in slices are written and tokenized once)."""
    path = tmp_path_factory.mktemp("lsdt-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LSDT_CACHE_DIR", str(path))
        yield path


def tiny_config(**changes):
    """The --tiny config with few steps (a real training run, just short)."""
    from engine.runtime.model.moe import tiny_spec
    from engine.runtime.moe.config import BUILTIN, TINY_DEFAULTS, MoETrainConfig
    from engine.runtime.moe.data import default_mix, parse_domains
    from engine.specs import load_model

    spec = tiny_spec(load_model("s7-moe-140m"))
    domains = {n: (s or BUILTIN) for n, s in parse_domains(None, spec.n_experts).items()}
    values = {**TINY_DEFAULTS, "trunk_steps": 6, "expert_steps": 4, "router_steps": 4, "device_batch": 2,
              "warmup": 1, "eval_every": 1000, "ckpt_every": 1000, "log_every": 1000, "eval_batches": 1,
              "device": "cpu"}
    values.update(changes)
    return MoETrainConfig(model=spec.to_dict(), tiny=True, domains=domains, mix=default_mix(list(domains)), **values)


@pytest.fixture
def cfg_factory():
    return tiny_config


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A complete tiny two-phase run (trunk, 4 experts, router) trained in this process."""
    import io

    from engine.runtime.moe import train as moe_train
    from engine.runtime.moe.config import write_config

    root = tmp_path_factory.mktemp("moe-run")
    cfg = tiny_config()
    write_config(root, cfg)
    log = io.StringIO()
    trunk = moe_train.run_job(cfg, root, "trunk", out=log)
    moe_train.run_phase2(cfg, root, workers=1, out=log)
    return root, cfg, trunk
