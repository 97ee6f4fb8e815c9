"""Reusable widgets of the LSDT app (one per module)."""
