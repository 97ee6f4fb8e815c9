"""Model sources: randomly initialised tiny GPT-2 / GPT-NeoX / Llama saved with save_pretrained and
loaded offline (nothing downloaded); a two-phase MoE run's trunk and expert layers; layer grammar."""

from __future__ import annotations

import json

import pytest
import torch

from engine.errors import UserError
from engine.runtime.sparsity.capture import capture
from engine.runtime.sparsity.sources import load_source, select_layers
from engine.runtime.sparsity.tasks import parse_tasks, tokenize_tasks

transformers = pytest.importorskip("transformers")  # the [hf] extra, which dev includes


def _save(kind: str, path):
    torch.manual_seed(0)
    if kind == "gpt2":
        cfg = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=300, n_positions=64,
                                      bos_token_id=0, eos_token_id=0)
        model = transformers.GPT2LMHeadModel(cfg)
    elif kind == "neox":
        cfg = transformers.GPTNeoXConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                                         vocab_size=300, max_position_embeddings=64, bos_token_id=0, eos_token_id=0)
        model = transformers.GPTNeoXForCausalLM(cfg)
    else:
        cfg = transformers.LlamaConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, num_key_value_heads=1,
                                       intermediate_size=48, vocab_size=300, max_position_embeddings=64,
                                       bos_token_id=0, eos_token_id=0)
        model = transformers.LlamaForCausalLM(cfg)
    model.save_pretrained(path)
    return model


@pytest.mark.parametrize("kind,width,module", [("gpt2", 128, "Conv1D"), ("neox", 64, "Linear"), ("llama", 48, "Linear")])
def test_hf_dir_loads_offline_and_captures(kind, width, module, tmp_path, task_spec, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # belt and braces: local_files_only already forbids the hub
    original = _save(kind, tmp_path / kind)
    src = load_source(str(tmp_path / kind))
    assert src.kind == "hf" and src.tokenizer == "bytes"  # no tokenizer saved: byte tokens (vocab 300 >= 256)
    assert [l.label for l in src.layers] == ["0", "1"]
    assert all(l.width == width and type(l.down).__name__ == module for l in src.layers)
    idx = torch.randint(0, 256, (1, 16))
    with torch.no_grad():
        assert torch.equal(src.forward(idx), original.eval()(input_ids=idx).logits)
    tw = tokenize_tasks(parse_tasks(task_spec), src.encode, 16, 256, src.vocab_size)
    res = capture(src, src.layers, tw, batch=4)
    assert res.stats["1"].n == sum(tw.tokens(k) for k in range(3))
    assert len(src.weights_sha256) == 64


def test_hf_spec_for_flops_where_the_sizing_engine_knows_it(tmp_path):
    _save("llama", tmp_path / "llama")
    assert load_source(str(tmp_path / "llama")).spec.d_ff == 48


def test_hf_dir_with_corrupt_weights(tmp_path):
    _save("gpt2", tmp_path / "g")
    (tmp_path / "g" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="cannot load it offline"):
        load_source(str(tmp_path / "g"))


def test_relative_depths_match_the_seeds_table():
    from engine.runtime.sparsity.sources import relative_indices

    auto = [0.25, 0.5, 0.75]
    assert relative_indices(auto, 6) == [2, 3, 5]  # pythia-70m
    assert relative_indices(auto, 24) == [6, 12, 18]  # pythia-410m / 1.4b
    assert relative_indices(auto, 32) == [8, 16, 24]  # pythia-6.9b
    assert relative_indices([0.0, 1.0], 4) == [0, 3]


def test_layer_grammar(gpt_run):
    src = load_source(str(gpt_run))
    assert [l.label for l in select_layers(src, "auto")] == ["1"]  # 2 layers: floor(0.5 + 0.5), floor(1 + 0.5), floor(1.5 + 0.5) -> 1
    assert [l.label for l in select_layers(src, "rel:1.0")] == ["1"]
    assert [l.label for l in select_layers(src, "1,0,1")] == ["1", "0"]
    for bad in ("rel:1.5", "rel:", "x", ","):
        with pytest.raises(UserError, match="accepted"):
            select_layers(src, bad)


@pytest.mark.slow
def test_moe_run_trunk_and_expert_layers(tmp_path):
    """A real (very short) two-phase MoE run: expert neurons are counted only on the tokens routed to them."""
    import io

    from engine.runtime.moe import train as moe_train
    from engine.runtime.moe.config import write_config
    from tests.moe.conftest import tiny_config

    cfg = tiny_config()
    write_config(tmp_path, cfg)
    moe_train.run_job(cfg, tmp_path, "trunk", out=io.StringIO())
    moe_train.run_phase2(cfg, tmp_path, workers=1, out=io.StringIO())
    src = load_source(str(tmp_path))
    assert src.kind == "moe"
    labels = [l.label for l in select_layers(src, "auto")]
    assert labels[:2] == ["trunk1", "expert0.0"] and "expert3.1" in labels  # 2 trunk layers: auto picks depth 0.5-0.75 -> trunk1
    tw = tokenize_tasks(parse_tasks("builtin"), src.encode, 32, 256, src.vocab_size)
    res = capture(src, select_layers(src, "all"), tw, batch=4)
    total = sum(tw.tokens(k) for k in range(4))
    assert res.stats["trunk0"].n == total
    routed = sum(res.stats[f"expert{e}.0"].n for e in range(4) if f"expert{e}.0" in res.stats)
    assert routed == total  # top-1: every token counted in exactly one expert
    per_task = [tw.tokens(k) for k in range(4)]
    for label, st in res.stats.items():  # SI normalises by every token of a task, routed or not
        assert list(st.task_tokens) == per_task, label
