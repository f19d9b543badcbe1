"""The conditional log-likelihood of a model with input layers: log p(observed | input), one value per row.

A conditional model (a CRBM's past frames, a structured-output model's input)
has a partition function per input row, Z(input). It is enumerated where the
latent side is small (exact_log_z with inputs=) and estimated by AIS per
input row otherwise, all rows' runs in one batch (ais with inputs=).
"""

from __future__ import annotations

import numpy as np

from ..errors import DSLError
from ..runtime.gpu import to_host
from ..runtime.sequences import predict, sequence_layers
from ..runtime.states import log2_count
from .ais import ais
from .exact import MAX_STATES, cheapest, exact_log_z, log_likelihood


def conditional_log_likelihood(compiled, data: dict, runs: int = 100, schedule=None, seed: int = 0,
                               max_states: int = MAX_STATES, progress: bool = True) -> np.ndarray:
    """log p(observed row | input row) for every row of `data` (a dict holding the input layers too).

    Exact when the cheapest enumeration needs at most `max_states` states per
    row, otherwise log Z(input) comes from AIS (`runs`, `schedule`, `seed`),
    which tends to underestimate log Z and so to overestimate the likelihood.
    """
    names = [n for n, info in compiled.layers.items() if info["role"] == "input"]
    if not names:
        raise DSLError(f"model {compiled.model.name} has no input layers: use log_likelihood")
    missing = [n for n in names if n not in data]
    if missing:
        raise DSLError(f"the data must hold the input layers too: {', '.join(missing)} missing")
    inputs = {n: np.asarray(data[n]) for n in names}
    try:
        _, layers = cheapest(compiled)
        small = 2 ** log2_count(layers) <= max_states
    except DSLError:  # every enumeration would leave a real-valued layer
        small = False
    if small:
        log_z = exact_log_z(compiled, inputs=inputs, max_states=max_states)
    else:
        observed = {k: v for k, v in data.items() if k not in inputs}
        log_z = ais(compiled, observed, runs=runs, schedule=schedule, seed=seed, progress=progress,
                    inputs=inputs).log_z
    return log_likelihood(compiled, data, log_z)


def prediction_error(compiled, data: dict, gibbs_steps: int = 30, seed: int = 0) -> np.ndarray:
    """One-step prediction error of a sequence model, per row: the mean squared difference between each window's
    frame and the frame predicted from its past by the generation step (runtime.sequences.predict: Gibbs with
    the past clamped, the visible mean). Compare with repeating the last frame, `persistence_error`."""
    past, frame = sequence_layers(compiled)
    if past not in data or frame not in data:
        raise DSLError(f"prediction_error needs windows: a dict with '{past}' and '{frame}' (Compiled.windows)")
    predicted = np.asarray(to_host(predict(compiled, data[past], gibbs_steps, rng=compiled.random(seed))))
    difference = predicted - np.asarray(data[frame])
    return (difference ** 2).reshape(len(difference), -1).mean(1)


def persistence_error(compiled, data: dict) -> np.ndarray:
    """The same error for the naive forecast "the next frame is the last one": the baseline to beat."""
    past, frame = sequence_layers(compiled)
    difference = np.asarray(data[past])[:, 0] - np.asarray(data[frame])
    return (difference ** 2).reshape(len(difference), -1).mean(1)
