"""Pseudo-log-likelihood over every unit, and the other quick monitors.

PL(v) = sum over units i of log p(v_i | v_-i). For a binary (or spin) unit,
log p(v_i | v_-i) = -log(1 + exp(F(v) - F(v with unit i flipped))), with F the
free energy; a one-hot group compares all its K values, a unit of more values
(binomial counts 0..n) all of them (F holds their base measure). This is exact, unlike
scikit-learn's BernoulliRBM.score_samples, which flips one random unit per
row and multiplies by the number of units (an unbiased but noisy estimate of
the same sum).
"""

from __future__ import annotations

import numpy as np
from ..runtime.numerics import logsumexp

from .. import units
from ..errors import DSLError


def pseudo_log_likelihood(compiled, data, chunk: int = 4096) -> np.ndarray:
    """Exact pseudo-log-likelihood of each row, summed over every observed discrete unit."""
    from ..runtime.train import as_data

    data = as_data(compiled, data)
    if not set(compiled.kept) <= set(data):
        raise DSLError(
            f"pseudo-likelihood needs a free energy of the observed layers; {compiled.model.name} keeps "
            f"{', '.join(compiled.kept)}"
        )
    free = _free(compiled, data)
    total = np.zeros(len(free))
    for name, values in data.items():
        info = compiled.layers[name]
        if info["role"] == "input":
            continue
        unit_type = units.get(info["unit"])
        if unit_type.values is not None and len(unit_type.values) == 2:  # the other value: one free energy a unit
            low, high = unit_type.values
            flat = values.reshape(len(values), -1)
            for unit in range(flat.shape[1]):
                flipped = flat.copy()
                flipped[:, unit] = low + high - flipped[:, unit]
                other = _free(compiled, {**data, name: flipped.reshape(values.shape)})
                total -= np.logaddexp(0, free - other)
        elif unit_type.values is not None:  # more values (binomial counts): every value of the unit, each a free energy
            flat = values.reshape(len(values), -1)
            for unit in range(flat.shape[1]):
                alternatives = []
                for value in unit_type.values:
                    changed = flat.copy()
                    changed[:, unit] = value
                    alternatives.append(-_free(compiled, {**data, name: changed.reshape(values.shape)}))
                total += -free - logsumexp(np.array(alternatives), axis=0)
        elif unit_type.event_axes:
            groups = values.reshape(len(values), -1, values.shape[-1])
            for group in range(groups.shape[1]):
                alternatives = []
                for value in range(groups.shape[2]):
                    changed = groups.copy()
                    changed[:, group, :] = np.eye(groups.shape[2])[value]
                    alternatives.append(-_free(compiled, {**data, name: changed.reshape(values.shape)}))
                total += -free - logsumexp(np.array(alternatives), axis=0)
        else:
            raise DSLError(f"pseudo-likelihood needs discrete observed layers; '{name}' is {info['unit']}")
    return total


def _free(compiled, state) -> np.ndarray:
    value = compiled.free_energy(state)
    return np.asarray(value.get() if hasattr(value, "get") else value, dtype=np.float64)


def free_energy_gap(compiled, train, validation) -> float:
    """Mean free energy of held-out rows minus that of training rows (Hinton's guide: watch it grow)."""
    from ..runtime.train import as_data

    return float(np.mean(_free(compiled, as_data(compiled, validation))) - np.mean(_free(compiled, as_data(compiled, train))))
