"""p(label | the other observed layers), exactly, for classification RBMs and any model like them.

Here in the runtime because discriminative training climbs the same
log-probabilities and monitors them each epoch; pgmdsl.evaluate exports them.

With every hidden layer summed out analytically, p(y | x) = exp(-F(x, y)) /
sum over y' of exp(-F(x, y')), F the free energy. Enumerating the label
layer's states (10 for a one-hot digit label) gives it exactly, as
Larochelle and Bengio (2008) classify with a classification RBM. Any model
whose label layer is discrete and observed, and whose latent layers the
compiler sums out, qualifies: the label layer may be one-hot, binary or spin,
of any shape with at most MAX_LABEL_STATES states.
"""

from __future__ import annotations

import numpy as np

from ..errors import DSLError
from .gpu import to_host as _host
from .numerics import logsumexp
from .states import chunks, digits

MAX_LABEL_STATES = 1 << 12


def label_log_probabilities(compiled, data, layer: str) -> tuple[np.ndarray, np.ndarray]:
    """(log p(label state | rest) of shape (rows, states), the states of shape (states,) + the layer's shape).

    data: a dict with every observed layer but `layer` (a value for `layer` is ignored).
    """
    states = label_states(compiled, layer)
    given = _given(compiled, data, layer)
    rows = len(next(iter(given.values())))
    free = np.empty((rows, len(states)))
    for index, state in enumerate(states):
        labelled = {**given, layer: np.broadcast_to(state, (rows,) + state.shape)}
        free[:, index] = np.asarray(_host(compiled.free_energy(labelled)), dtype=np.float64)
    log_unnormalised = -free
    return log_unnormalised - logsumexp(log_unnormalised, axis=1)[:, None], states


def predict_labels(compiled, data, layer: str) -> np.ndarray:
    """The most probable state of `layer` for each row (for a one-hot label: one-hot rows)."""
    log_p, states = label_log_probabilities(compiled, data, layer)
    return states[np.argmax(log_p, axis=1)]


def label_accuracy(compiled, data, layer: str) -> float:
    """Fraction of rows whose given `layer` values are its most probable state given the rest."""
    return label_metrics(compiled, data, layer)["accuracy"]


def label_log_likelihood(compiled, data, layer: str) -> np.ndarray:
    """log p(given `layer` values | rest) of each row: the conditional log-likelihood discriminative training climbs."""
    log_p, states = label_log_probabilities(compiled, data, layer)
    return log_p[np.arange(len(log_p)), _true_states(data, layer, states)]


def label_metrics(compiled, data, layer: str) -> dict:
    """{"accuracy", "log_likelihood"}: label_accuracy and the mean of label_log_likelihood, from one enumeration."""
    log_p, states = label_log_probabilities(compiled, data, layer)
    truth = _true_states(data, layer, states)
    return {"accuracy": float(np.mean(np.argmax(log_p, axis=1) == truth)),
            "log_likelihood": float(np.mean(log_p[np.arange(len(log_p)), truth]))}


def _true_states(data, layer: str, states: np.ndarray) -> np.ndarray:
    """The index among `states` of each row's given value of `layer`."""
    if not isinstance(data, dict) or layer not in data:
        raise DSLError(f"this needs the true values of layer '{layer}' in the data")
    values = np.asarray(data[layer], dtype=np.float64)
    flat = values.reshape(len(values), -1)
    if flat.shape[1] != states[0].size:
        raise DSLError(f"layer '{layer}' has {states[0].size} units per row; the data has {flat.shape[1]}")
    match = np.all(flat[:, None, :] == states.reshape(len(states), -1)[None], axis=2)
    if not match.any(axis=1).all():
        bad = int(np.argmin(match.any(axis=1)))
        raise DSLError(f"row {bad} of layer '{layer}' is not one of its states (one-hot, 0/1 or -1/+1 values)")
    return np.argmax(match, axis=1)


def label_states(compiled, layer: str) -> np.ndarray:
    """Every state of a label layer, (states,) + its shape, after checking that p(layer | rest) is computable:
    `layer` is a discrete visible layer beside another observed one, and every latent layer is summed out."""
    info = compiled.layers.get(layer)
    if info is None:
        raise DSLError(f"model {compiled.model.name} has no layer '{layer}' (its layers: {', '.join(compiled.layers)})")
    observed = _observed(compiled)
    if info["role"] != "visible":
        raise DSLError(f"layer '{layer}' is {info['role']}: labels are a visible layer of the model")
    if observed == [layer]:
        raise DSLError(f"layer '{layer}' is the only observed layer of {compiled.model.name}: labels are predicted "
                       "from another observed layer")
    if not set(compiled.kept) <= set(observed):
        latent = ", ".join(n for n in compiled.kept if n not in observed)
        raise DSLError(f"p({layer} | rest) needs every latent layer summed out; {compiled.model.name} keeps {latent}")
    counted = digits(compiled, layer)
    if counted.count > MAX_LABEL_STATES:
        raise DSLError(f"layer '{layer}' has {counted.count} states, more than the {MAX_LABEL_STATES} a label "
                       "may have to be enumerated")
    return np.asarray(next(chunks([counted], size=counted.count))[layer], dtype=np.float64)


def _observed(compiled) -> list[str]:
    return [n for n, info in compiled.layers.items() if info["role"] in ("visible", "input")]


def _given(compiled, data, layer: str) -> dict:
    """The rows of every observed layer but `layer`, checked and shaped."""
    observed = _observed(compiled)
    if not isinstance(data, dict):
        others = [n for n in observed if n != layer]
        if len(others) != 1:
            raise DSLError(f"pass the data as a dict of arrays for {', '.join(others)}")
        data = {others[0]: data}
    missing = [n for n in observed if n != layer and n not in data]
    if missing:
        raise DSLError(f"the data lacks layer{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    rows = {}
    for name in observed:
        if name == layer:
            continue
        shape = tuple(compiled.layers[name]["shape"])
        value = np.asarray(data[name], dtype=np.float64)
        try:
            rows[name] = value.reshape((len(value),) + shape)
        except ValueError:
            raise DSLError(f"layer '{name}' has shape {shape} per row; the data has shape {value.shape}") from None
    if len({len(v) for v in rows.values()}) > 1:
        raise DSLError("the data's layers have different numbers of rows")
    return rows

