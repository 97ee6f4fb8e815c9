"""LSDT: plan LLM training compute, then run it."""

__version__ = "0.1.0"
