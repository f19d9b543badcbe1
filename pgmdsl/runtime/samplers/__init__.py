"""Negative-phase samplers: one interface, explicit state, looked up by name.

The trainer asks `get(options.method)` for a class and never branches on
the name; `Compiled.sample(method=...)` asks the same registry. A sampler
is a `NegativePhase` (runtime.samplers.base): it is made from the model's
block-Gibbs kernels (`Gibbs`) and the training options, keeps its own state
(persistent chains, temperatures, swap counts), takes the random generator
with every call, and saves and restores that state as plain arrays.
The built-ins register through the same public call a plug-in uses:

    cd   CD-k: k sweeps from the data phase (runtime.samplers.cd)
    pcd  PCD-k: k sweeps of persistent chains (runtime.samplers.pcd)
    pt   parallel tempering: persistent chains on a ladder of inverse
         temperatures with swaps between neighbours (runtime.samplers.pt)
"""

from __future__ import annotations

from ...errors import DSLError
from .base import Gibbs, NegativePhase

_REGISTRY: dict[str, type] = {}


def register(name: str, cls: type) -> type:
    """Make `cls` (a NegativePhase) the sampler fit(method=name) uses; returns it, so it can decorate."""
    if not isinstance(name, str) or not name.isidentifier():
        raise DSLError(f"a sampler's name is an identifier, got {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, NegativePhase)):
        raise DSLError(f"sampler '{name}' must be a subclass of pgmdsl.runtime.samplers.NegativePhase, got {cls!r}")
    _REGISTRY[name] = cls
    return cls


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def described() -> str:
    """The registered names as a sentence fragment: "'cd', 'pcd' or 'pt'"."""
    quoted = [f"'{name}'" for name in _REGISTRY]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def get(name: str) -> type:
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise DSLError(f"unknown sampler {name!r} (samplers: {', '.join(_REGISTRY)})")
    return cls


def run(compiled, method: str, n: int, steps: int, rng, given: dict, clamped=(), **settings) -> dict:
    """n chains of a standalone sampler (one that needs no data: pt) after `steps` of its steps.

    Compiled.sample(method=...) calls it: `given` are the rows of clamped and
    initial layers, `settings` the sampler's own options (temperatures=).
    Returns every non-pooled layer of the chains, as a Gibbs sweep leaves them.
    """
    from ..options import options
    from ..sampling import initial_state

    cls = _REGISTRY.get(method) if isinstance(method, str) else None
    if cls is None or not cls.standalone:
        usable = ["'gibbs'"] + [f"'{name}'" for name, found in _REGISTRY.items() if found.standalone]
        raise DSLError(f"sample: method must be {', '.join(usable[:-1])} or {usable[-1]}, got {method!r}"
                       + (" (it starts from the data)" if cls is not None else ""))
    try:
        chosen = options(method=method, k=1, batch_size=n, chains=n, **settings)
    except DSLError as error:
        raise DSLError(f"sample: {error.message.removeprefix('fit: ')}") from None

    def new_chains(count: int) -> dict:
        state = initial_state(compiled, count, rng, given)
        return {k: v for k, v in state.items() if k not in compiled.marginalised}

    from ..hmc import transitions

    sampler = cls(Gibbs(compiled, clamped, new_chains, transitions(compiled, chosen.hmc)), chosen)
    for _ in range(steps):
        sampler.advance(rng)
    return sampler.current(rng)


from .cd import ContrastiveDivergence  # noqa: E402
from .pcd import PersistentContrastiveDivergence  # noqa: E402
from .pt import ParallelTempering  # noqa: E402

register("cd", ContrastiveDivergence)
register("pcd", PersistentContrastiveDivergence)
register("pt", ParallelTempering)

__all__ = ["Gibbs", "NegativePhase", "register", "unregister", "get", "names", "described", "run",
           "ContrastiveDivergence", "PersistentContrastiveDivergence", "ParallelTempering"]
