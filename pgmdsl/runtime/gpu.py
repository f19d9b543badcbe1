"""The array module of the CuPy backend, and its documented test seam.

Generated CuPy modules call `array_module()`. It returns cupy; with the
environment variable PGMDSL_CUPY_STANDIN=numpy it returns numpy instead, so
the CuPy module's code runs (and is tested) on a machine without a GPU.
"""

from __future__ import annotations

import os


def standin() -> bool:
    return os.environ.get("PGMDSL_CUPY_STANDIN", "") == "numpy"


def array_module():
    if standin():
        import numpy

        return numpy
    try:
        import cupy
    except ImportError:
        raise RuntimeError(
            "the cupy backend needs CuPy and an NVIDIA GPU (pip install cupy-cuda12x); "
            "set PGMDSL_CUPY_STANDIN=numpy to run its code on NumPy"
        ) from None
    return cupy
