"""Pooling layers in states: each pooling unit read off its detector block.

The sampler draws the detector layer h block by block (at most one unit of a
block on); the pooling layer p is then a function of h, the OR of each block,
which is its sum. States the runtime hands back (samples, features) carry p
next to h, so that p can be read, drawn and stacked on like any layer; given
h's conditional means instead of a draw, the same sum is P(p = 1 | rest).
"""

from __future__ import annotations


def pooling_layers(compiled) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{pooling layer: (its detector layer, the block size)} of a compiled model."""
    found = {}
    for name, info in compiled.layers.items():
        if info["role"] == "pooled":
            detector = compiled.model.layer(name).pooled_from
            found[name] = (detector, tuple(compiled.model.layer(detector).pooling.block))
    return found


def with_pools(compiled, state: dict) -> dict:
    """`state` with every pooling layer whose detector it holds (draws or means) added, as the block sums."""
    for name, (detector, block) in pooling_layers(compiled).items():
        if detector in state:
            state[name] = compiled.module.pooled_units(state[detector], block)
    return state


def detectors_given_pools(compiled, state: dict, pooled, rng):
    """A draw of the pooled detector layer given the other layers and its pooling units `pooled` (0 or 1).

    Where a pooling unit is off its block is all off; where it is on, exactly one unit of the block is, chosen
    with probabilities proportional to exp(field): the block's categorical conditioned on "not all off". The
    pooling layer's own terms add the same field to every unit of a block, so they cancel here. This is the
    conditional a convolutional DBN's top-down pass needs: the level above gives p, the level below its h.
    """
    ((name, (detector, block)),) = pooling_layers(compiled).items()
    module = compiled.module
    field = getattr(module, f"field_{detector}")(compiled.params, state)
    one = module.categorical(module.softmax(module._blocks(field, block), axis=-1), rng)
    return module._unblocks(one * compiled.xp.asarray(pooled, dtype=compiled.dtype)[..., None], field.shape, block)
