"""`--model tiny` names the default model: the banner, the run directory and the Train tab's model
field all call it "tiny", so the CLI accepts the name it shows (issue 17)."""

from __future__ import annotations

import argparse

from engine.runtime.train.config import TINY_MODEL, add_arguments, resolve_config


def _config(*argv: str):
    p = argparse.ArgumentParser()
    add_arguments(p)
    return resolve_config(p.parse_args(list(argv)))


def test_model_tiny_is_the_default_model():
    named, default = _config("--model", "tiny"), _config()
    assert named.model == default.model
    assert named.model["name"] == TINY_MODEL["name"] and named.model["n_layer"] == TINY_MODEL["n_layer"]
