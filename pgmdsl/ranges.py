"""Contiguous ranges of indices for work split into parts: chains over threads or Dask tasks (evaluate.chains,
distributed), training rows into workers' shards, enumerated states into tasks."""

from __future__ import annotations

import numpy as np


def split(total: int, parts: int, block: int = 1) -> list[range]:
    """`total` indices in at most `parts` contiguous ranges of whole blocks (the last may be partial), of sizes
    differing by at most one block."""
    blocks = -(-total // block)
    bounds = np.linspace(0, blocks, min(parts, blocks) + 1).round().astype(int) * block
    return [range(int(a), int(min(b, total))) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
