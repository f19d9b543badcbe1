"""Block-Gibbs sweeps over a compiled model's schedule, with clamped layers held fixed."""

from __future__ import annotations

from .. import units
from ..errors import DSLError


def sweep_order(compiled, clamped=()) -> list[str]:
    """Layers in the order one sweep draws them: the classes holding no observed layer first.

    Starting from data, an RBM sweep draws h then v; a DBM sweep draws h1,
    then v and h2. Clamped layers are never drawn.
    """
    steps = list(compiled.schedule)
    observed = [k for k, step in enumerate(steps) if any(compiled.layers[n]["role"] == "visible" for n in step)]
    if observed:
        first = observed[0]
        steps = steps[first + 1:] + steps[: first + 1]
    return [name for step in steps for name in step if name not in clamped]


def gibbs(compiled, state: dict, rng, steps: int = 1, clamped=(), transitions=None) -> dict:
    """`steps` full sweeps starting from `state` (a dict of arrays, modified copy returned); transitions:
    {layer: a callable with sample_L's signature} drawing those layers instead (runtime.hmc)."""
    state = dict(state)
    order = sweep_order(compiled, clamped)
    transitions = transitions or {}
    for _ in range(steps):
        for name in order:
            if name in transitions:
                state[name] = transitions[name](compiled.params, state, rng)
            else:
                state[name] = compiled.module_sample(name, state, rng)
    return state


def initial_state(compiled, rows: int, rng, given: dict | None = None) -> dict:
    """A state for every non-pooled layer: the given arrays, else random units of the right kind."""
    given = dict(given or {})
    state = {}
    xp = compiled.xp
    for name, info in compiled.layers.items():
        if info["role"] == "pooled":
            continue
        if name in given:
            state[name] = given[name]
            continue
        shape = (rows,) + tuple(info["shape"])
        if info["role"] == "input":
            raise DSLError(f"input layer '{name}' is observed, never sampled: give its values (clamp=...)")
        if info["update"] == "pooled":
            value = xp.zeros(shape)  # all off: a state every pooling block allows
        else:
            value = units.get(info["unit"]).initial(shape, rng, xp)
        state[name] = xp.asarray(value, dtype=compiled.dtype)
    return state

