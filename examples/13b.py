#!/usr/bin/env python3
"""The seed design's three examples: a 13B model (LLaMA-13B) on A100-80GB SXM, 20 tokens/param in 30 days.

    python examples/13b.py                                      # Mode A: auto-size
    python examples/13b.py --G 128                              # Mode B: a fixed 128-GPU cluster
    python examples/13b.py --eta-compute 0.30 --eta-fabric 0.70 # tuned efficiencies

Any other `lsdt plan` flag passes through (e.g. --json, --days 14).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # runnable from a checkout without installing

from engine.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["plan", "--model", "llama-13b", "--hardware", "a100-80g-sxm", *sys.argv[1:]]))
