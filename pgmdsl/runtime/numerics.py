"""Numerically stable reductions on the host, so evaluation needs nothing beyond NumPy."""

from __future__ import annotations

import numpy as np


def logsumexp(values, axis=None, keepdims: bool = False):
    """log(sum(exp(values))) along `axis` without overflow; -inf for an empty or all -inf sum."""
    values = np.asarray(values, dtype=np.float64)
    top = np.max(values, axis=axis, keepdims=True) if values.size else np.array(-np.inf)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        result = np.log(np.sum(np.exp(values - top), axis=axis, keepdims=True)) + top
    return result if keepdims else np.squeeze(result, axis=axis) if axis is not None else result.reshape(())[()]
