"""SAELens loads the SAE files LSDT writes: `lsdt sparsity sae` trains an SAE on a real `lsdt train`
run, SAELens's own loader (`SAE.load_from_disk`, the `saelens` extra's pinned release) reads
sae/<layer>/, and its encode / decode / forward equal LSDT's SAE on that layer's real activations."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file

from engine.cli import main
from engine.runtime.sparsity.capture import collect
from engine.runtime.sparsity.sae import SAE, explained_variance
from engine.runtime.sparsity.sources import load_source
from engine.runtime.sparsity.tasks import parse_tasks, tokenize_tasks


def test_saelens_loads_an_lsdt_sae_and_computes_the_same_features(gpt_run, task_spec, tmp_path, capsys):
    # imported here, not at collection: SAELens brings TransformerLens, plotly, ... (seconds)
    from sae_lens import SAE as SAELensSAE
    from sae_lens import StandardSAE

    out = tmp_path / "art"
    assert main(["sparsity", "sae", "--model", str(gpt_run), "--tasks", task_spec, "--out", str(out), "--layers", "1",
                 "--seq", "32", "--max-tokens", "1024", "--sae-tokens", "2048", "--sae-steps", "60", "--l1", "1e-2",
                 "--device", "cpu"]) == 0
    folder = out / "sae" / "1"
    ours = SAE.from_state(load_file(str(folder / "sae_weights.safetensors")))
    theirs = SAELensSAE.load_from_disk(folder)

    assert isinstance(theirs, StandardSAE)  # cfg.json's "architecture": "standard"
    assert (theirs.cfg.d_in, theirs.cfg.d_sae) == (128, 8 * 128)  # the tiny run's d_ff, 8x expansion
    cfg = json.loads((folder / "cfg.json").read_text())
    assert theirs.cfg.metadata.hook_name == cfg["hook_name"] == "1.mlp.down.input"
    assert theirs.cfg.normalize_activations == "none"  # the input scale is folded into the weights

    src = load_source(str(gpt_run))
    tw = tokenize_tasks(parse_tasks(task_spec), src.encode, 32, 1024, src.vocab_size)
    x, _, _ = collect(src, src.layer("1"), tw, 1024)  # the layer's raw MLP activations
    with torch.no_grad():
        f_ours, f_theirs = ours.encode(x), theirs.encode(x)
        assert (f_ours > 0).any(dim=1).float().mean() > 0.5  # real features fire, not an all-zero code
        torch.testing.assert_close(f_theirs, f_ours, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(theirs.decode(f_ours), ours.decode(f_ours), rtol=1e-6, atol=1e-6)
        x_hat = theirs(x)
        torch.testing.assert_close(x_hat, ours(x)[0], rtol=1e-6, atol=1e-6)
        assert explained_variance(x, x_hat) > 0.5  # it reconstructs what it was trained on
