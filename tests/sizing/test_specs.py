"""Specs: every shipped profile loads; strict validation; Hugging Face config.json mapping."""

from __future__ import annotations

import json
import math

import pytest

from engine.errors import UserError
from engine.specs import (
    builtin_names,
    hardware_from_dict,
    load_hardware,
    load_model,
    model_from_dict,
    model_from_hf_config,
)

HARDWARE = ["rtx4090", "rtx3090", "a100-40g-sxm", "a100-80g-sxm", "h100-sxm", "h100-pcie", "h200", "l40s", "b200", "mi300x"]
MODELS = (
    ["gpt2-124m", "gpt2-350m", "gpt2-774m", "gpt2-1558m"]
    + [f"nanochat-d{d}" for d in range(12, 27, 2)]
    + ["llama-7b", "llama-13b", "llama3-8b", "llama3-70b", "llama3-405b", "gpt3-175b", "s7-moe-140m"]
)


def test_every_required_profile_is_shipped():
    assert set(HARDWARE) <= set(builtin_names("hardware"))
    assert set(MODELS) <= set(builtin_names("models"))


@pytest.mark.parametrize("name", builtin_names("hardware"))
def test_hardware_profiles_load_with_sources(name):
    hw = load_hardware(name)
    assert hw.name == name and hw.source and hw.peak_flops > 0 and hw.memory_bytes > 0


@pytest.mark.parametrize("name", builtin_names("models"))
def test_model_profiles_load_with_sources(name):
    m = load_model(name)
    assert m.name == name and m.source
    assert m.n_head * m.head_dim >= m.n_kv_head * m.head_dim


def test_issue_peak_figures_are_dense_bf16():
    assert load_hardware("rtx4090").peak_flops == 165.2e12  # not the 330 sparse / FP16-accumulate figure
    assert load_hardware("rtx3090").peak_flops == 71e12
    assert load_hardware("h100-sxm").peak_flops == 989.4e12


def test_workstation_cards_have_no_guessed_network():
    assert load_hardware("rtx4090").inter_node_bw is None


def test_defaults_resolve():
    m = model_from_dict({"name": "x", "n_layer": 2, "d_model": 64, "n_head": 4, "vocab_size": 100, "seq_len": 32})
    assert (m.n_kv_head, m.head_dim, m.d_ff, m.ffn, m.short_window) == (4, 16, 256, "gelu", 16)


def test_window_pattern_tiles_with_last_layer_full():
    m = model_from_dict({"name": "x", "n_layer": 5, "d_model": 64, "n_head": 4, "vocab_size": 10, "seq_len": 64,
                         "window_pattern": "sssl", "short_window": 16})
    assert m.layer_windows() == [16, 16, 16, 64, 64]


BASE = {"name": "x", "n_layer": 2, "d_model": 64, "n_head": 4, "vocab_size": 100, "seq_len": 32}


@pytest.mark.parametrize(
    "change, words",
    [
        ({"n_layer": 0}, "n_layer"),
        ({"d_model": -5}, "d_model"),
        ({"seq_len": math.nan}, "seq_len"),
        ({"vocab_size": math.inf}, "vocab_size"),
        ({"n_head": "four"}, "n_head"),
        ({"n_head": 3.5}, "n_head"),
        ({"ffn": "tanh"}, "gelu | swiglu | relu2"),
        ({"tie_embeddings": "yes"}, "true or false"),
        ({"colour": 1}, "unknown key 'colour'"),
        ({"n_kv_head": 3}, "n_kv_head"),
        ({"window_pattern": "SXL"}, "window_pattern"),
        ({"n_experts": 4, "experts_per_token": 5}, "experts_per_token"),
        ({"d_model": 65}, "divisible"),
    ],
)
def test_bad_model_values_name_the_key(change, words):
    with pytest.raises(UserError) as exc:
        model_from_dict({**BASE, **change}, where="m.toml")
    msg = str(exc.value)
    assert words in msg and "\n" not in msg


def test_missing_key_is_named():
    raw = dict(BASE)
    del raw["vocab_size"]
    with pytest.raises(UserError, match="m.toml: missing required key 'vocab_size'"):
        model_from_dict(raw, where="m.toml")


def test_bad_hardware_value():
    with pytest.raises(UserError, match="peak_flops"):
        hardware_from_dict({"name": "x", "peak_flops": 0, "memory_bytes": 1e9, "gpus_per_node": 1, "intra_node_bw": 1e9}, "h.toml")


def test_unknown_profile_lists_known_names():
    with pytest.raises(UserError) as exc:
        load_model("llama-99b")
    assert "known:" in str(exc.value) and "llama-13b" in str(exc.value)


def test_unreadable_files(tmp_path):
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(UserError, match="not UTF-8"):
        load_model(str(bad))
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    with pytest.raises(UserError, match="invalid TOML"):
        load_model(str(broken))
    with pytest.raises(UserError, match="no such file"):
        load_model(str(tmp_path / "missing.toml"))


def test_hf_llama3_config(tmp_path):
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32, "num_hidden_layers": 32,
        "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 8192, "tie_word_embeddings": False,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    m = load_model(str(path))
    ref = load_model("llama3-8b")
    for key in ("n_layer", "d_model", "n_head", "n_kv_head", "d_ff", "ffn", "vocab_size", "seq_len", "tie_embeddings"):
        assert getattr(m, key) == getattr(ref, key), key


def test_hf_gpt2_config():
    m = model_from_hf_config({"model_type": "gpt2", "n_layer": 12, "n_embd": 768, "n_head": 12, "vocab_size": 50257, "n_positions": 1024})
    ref = load_model("gpt2-124m")
    assert (m.n_layer, m.d_model, m.ffn, m.tie_embeddings, m.d_ff, m.seq_len) == (12, 768, "gelu", True, 3072, 1024)
    assert m.d_model == ref.d_model


def test_hf_mixtral_and_mistral_windows():
    m = model_from_hf_config({
        "model_type": "mixtral", "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336,
        "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "vocab_size": 32000,
        "max_position_embeddings": 32768, "num_local_experts": 8, "num_experts_per_tok": 2, "sliding_window": 4096,
    })
    assert (m.n_experts, m.experts_per_token, m.window_pattern, m.short_window) == (8, 2, "S", 4096)


def test_hf_config_errors():
    with pytest.raises(UserError, match="hidden_size"):
        model_from_hf_config({"num_hidden_layers": 2, "num_attention_heads": 2, "vocab_size": 10}, "c.json")
    with pytest.raises(UserError, match="JSON object"):
        model_from_hf_config([1, 2], "c.json")


def test_hf_config_plans_at_a_training_context_and_is_named_after_the_model(tmp_path):
    """Llama 3.1's config says 131,072 positions: planning at that gave 609 GB per device. The
    plan takes 8,192 (Llama 3's pre-training context), says so, and names the model, not 'llama'."""
    cfg = {"model_type": "llama", "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336,
           "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "vocab_size": 128256,
           "max_position_embeddings": 131072}
    folder = tmp_path / "Meta-Llama-3.1-8B"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(cfg))
    m = load_model(str(folder / "config.json"))
    assert m.seq_len == 8192 and m.name == "Meta-Llama-3.1-8B"
    assert "max_position_embeddings 131,072" in m.source and "--seq" in m.source
    named = model_from_hf_config({**cfg, "_name_or_path": "meta-llama/Llama-3.1-8B", "max_position_embeddings": 2048})
    assert named.name == "meta-llama/Llama-3.1-8B" and named.seq_len == 2048  # a shorter maximum is kept


def test_hardware_profiles_carry_a_dated_price_or_say_why_not():
    from engine.specs import PROFILES_DIR, builtin_names

    for name in builtin_names("hardware"):
        hw = load_hardware(name)
        text = (PROFILES_DIR / "hardware" / f"{name}.toml").read_text()
        if hw.price_per_hour is None:
            assert "# price_per_hour: n/a" in text, name
        else:
            assert hw.price_per_hour > 0 and "(read 20" in hw.price_source, name


def test_hardware_profiles_carry_a_measured_matmul_ceiling_with_its_source_or_say_why_not():
    """The engineering model's eta_gemm scales with matmul_flops (efficiency.py): each built-in
    profile gives the measurement and where it is from, or says n/a in a comment."""
    from engine.specs import PROFILES_DIR, builtin_names

    for name in builtin_names("hardware"):
        hw = load_hardware(name)
        text = (PROFILES_DIR / "hardware" / f"{name}.toml").read_text()
        if hw.matmul_flops is None:
            assert "# matmul_flops: n/a" in text, name
        else:
            assert 0 < hw.matmul_flops <= hw.peak_flops and "TFLOPS" in hw.matmul_source, name


def test_matmul_flops_above_peak_is_refused_naming_the_key():
    raw = {"name": "x", "peak_flops": 1e15, "memory_bytes": 1e9, "gpus_per_node": 1, "intra_node_bw": 1e9, "matmul_flops": 2e15}
    with pytest.raises(UserError, match=r"h\.toml: matmul_flops = 2e\+15; accepted: .*peak_flops") as exc:
        hardware_from_dict(raw, "h.toml")
    assert exc.value.field == "matmul_flops"


def test_bad_matmul_flops_profile_file_exits_2_without_traceback(tmp_path):
    from tests.conftest import REPO, run_lsdt

    src = (REPO / "profiles" / "hardware" / "h100-sxm.toml").read_text()
    bad = tmp_path / "fast.toml"
    bad.write_text(src.replace("matmul_flops = 792.1e12", "matmul_flops = 1.2e15"))
    r = run_lsdt("predict", "--model", "llama3-8b", "--hardware", str(bad), "--gpus", "8", "--tp", "1", "--pp", "1", "--global-batch", "8")
    assert r.returncode == 2 and "matmul_flops" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
