"""The bands memory rule against what autograd really keeps for LSDT's runtime GPT (CPU, bf16 autocast).

Counts the storages handed to saved_tensors_hooks during one forward: activations (not parameters,
not bf16 weight copies) must match activation_bytes_per_token (with the fp32 log-softmax the loss
keeps, instead of the rule's backward peak), and the bf16 copies autocast_copy_bytes.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
gpt = pytest.importorskip("engine.runtime.model.gpt")

from engine.sizing.bands import LOSS_BYTES_PER_TOKEN_PER_VOCAB, activation_bytes_per_token, autocast_copy_bytes  # noqa: E402
from engine.sizing.shapes import band_spec  # noqa: E402


def saved_bytes(spec, batch: int, seq: int) -> tuple[int, int]:
    torch.manual_seed(0)
    model = gpt.GPT(gpt.GPTConfig.from_spec(spec))
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, tuple[int, bool]] = {}

    def pack(t):
        # a linear saves its autocast weight copy as the transposed view (grad_fn TBackward0)
        copy = t.grad_fn is not None and t.grad_fn.name() == "TBackward0"
        seen[t.untyped_storage().data_ptr()] = (t.untyped_storage().nbytes(), copy)
        return t

    idx = torch.randint(0, spec.vocab_size, (batch, seq))
    targets = torch.roll(idx, -1, dims=1)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.autocast("cpu", dtype=torch.bfloat16):
        model(idx, targets)
    acts = sum(n for k, (n, copy) in seen.items() if k not in params and not copy)
    copies = sum(n for k, (n, copy) in seen.items() if k not in params and copy)
    return acts, copies


@pytest.mark.parametrize("depth, ffn", [(2, "relu2"), (3, "relu2"), (2, "swiglu")])
def test_rule_matches_autograd(depth, ffn):
    spec = band_spec(depth, seq_len=256, head_dim=64, vocab_size=640, ffn=ffn)
    batch, seq = 3, 200  # 600 rows: no activation shares a weight's shape
    acts, copies = saved_bytes(spec, batch, seq)
    kept_loss = 4 * spec.vocab_size  # the fp32 log-softmax saved by the forward
    rope = spec.n_layer * 4 * seq * spec.head_dim // 2 * 2  # cos/sin slices for q and k, per step (not in the rule)
    rule = (activation_bytes_per_token(spec) - LOSS_BYTES_PER_TOKEN_PER_VOCAB * spec.vocab_size + kept_loss) * batch * seq + rope
    assert acts == pytest.approx(rule, rel=0.001)
    assert copies == pytest.approx(autocast_copy_bytes(spec), rel=0.01)
