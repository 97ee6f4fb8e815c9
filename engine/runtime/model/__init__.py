"""LSDT's modular GPT decoder: one concern per file.

    embedding.py   token embedding + rotary position tables (RoPE: no learned positions)
    norm.py        parameter-free RMSNorm
    attention.py   causal self-attention: GQA, RoPE, per-layer sliding window through SDPA
    mlp.py         feed-forward: gelu | relu2 | swiglu, bias-free
    block.py       pre-norm residual block (attention + MLP)
    decoder.py     what GPT and MoE share: embedding/RoPE in, norm + LM head + loss out, GPT-2 init
    gpt.py         GPTConfig (every hyper-parameter) and GPT (forward(idx, targets) -> logits, loss)

The parameter count is exactly engine.sizing.counts.param_counts(spec).total (a test pins it).
Importing this package imports torch: only engine.runtime's torch-side modules import it.
"""

from engine.runtime.model.gpt import GPT, GPTConfig

__all__ = ["GPT", "GPTConfig"]
