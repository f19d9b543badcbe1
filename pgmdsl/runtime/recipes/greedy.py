"""Greedy layer-wise stacking (Hinton, Osindero and Teh 2006): each level trained on the one below's features.

A level is any compiled model with one visible and one hidden layer. Level
k + 1 trains on level k's hidden conditional means of the training rows (the
"mean-field" features the paper's code passes up; sampling them adds noise
and no accuracy). Options are per level: a dict for every level, or a list
with one dict per level (`per_level` merges the two), so a 784-500-500-2000
stack can train its top RBM longer, as the paper did.
"""

from __future__ import annotations

import numpy as np

from ...errors import DSLError
from ..stack import meeting


def per_level(levels: int, shared: dict, each: list[dict] | None = None) -> list[dict]:
    """One options dict per level: `shared` overridden by the level's own entry in `each` (if given)."""
    if each is None:
        return [dict(shared) for _ in range(levels)]
    if len(each) != levels:
        raise DSLError(f"per-level options: the stack has {levels} levels, got options for {len(each)}")
    return [{**shared, **own} for own in each]


def stack(levels: list, data, options: list[dict], validation=None, callbacks_for=None) -> list:
    """Train `levels` bottom first, each on the features of the one below; returns one History per level.

    options: one fit() options dict per level (per_level builds them).
    validation: held-out rows of the bottom level, passed up alongside the data.
    callbacks_for: a function of the level's index giving its fit callbacks (progress, checkpoints), or None.
    """
    if len(options) != len(levels):
        raise DSLError(f"greedy stacking: {len(levels)} levels but {len(options)} option sets")
    histories = []
    inputs, held = data, validation
    for number, (level, own) in enumerate(zip(levels, options)):
        callbacks = tuple(callbacks_for(number)) if callbacks_for is not None else ()
        histories.append(level.fit(inputs, validation=held, callbacks=callbacks, **own))
        inputs = features(level, inputs)
        held = features(level, held) if held is not None else None
    return histories


def features(level, rows):
    """The level's hidden conditional means of `rows` (of its pooling units, for a pooled level), on the host:
    the next level's training data."""
    values = level.transform(rows)
    values = values[meeting(level)] if isinstance(values, dict) else values
    return np.asarray(values.get() if hasattr(values, "get") else values)
