"""The array module of the CuPy backend, and its documented test seam.

Generated CuPy modules call `array_module()`. It returns cupy; with the
environment variable PGMDSL_CUPY_STANDIN=numpy it returns numpy instead, so
the CuPy module's code runs (and is tested) on a machine without a GPU.
"""

from __future__ import annotations

import os

INSTALL = "pip install cupy-cuda12x (or cupy-cuda11x for CUDA 11)"


def standin() -> bool:
    return os.environ.get("PGMDSL_CUPY_STANDIN", "") == "numpy"


def array_module():
    if standin():
        import numpy

        return numpy
    try:
        import cupy
    except ImportError as error:
        raise RuntimeError(
            f"the cupy backend needs CuPy and an NVIDIA GPU: {INSTALL}; "
            f"set PGMDSL_CUPY_STANDIN=numpy to run its code on NumPy (import cupy failed: {error})"
        ) from None
    _check_device(cupy)
    return cupy


def _check_device(cupy) -> None:
    """CuPy imports without a GPU and fails at the first kernel; say so at compile time instead."""
    runtime = getattr(getattr(cupy, "cuda", None), "runtime", None)
    if runtime is None:  # not CuPy's CUDA build (a test double): nothing to check
        return
    try:
        count = runtime.getDeviceCount()
    except Exception as error:  # CUDARuntimeError: no driver, no device, driver too old
        raise RuntimeError(
            f"the cupy backend found CuPy {getattr(cupy, '__version__', '?')} but no usable NVIDIA GPU ({error}); "
            f"check the driver and that the CuPy package matches its CUDA version ({INSTALL}), "
            "or set PGMDSL_CUPY_STANDIN=numpy to run its code on NumPy"
        ) from None
    if count == 0:
        raise RuntimeError(
            "the cupy backend found CuPy but no NVIDIA GPU; set PGMDSL_CUPY_STANDIN=numpy to run its code on NumPy"
        )


def special_module():
    """cupyx.scipy.special (scipy.special under the stand-in): the special functions some unit types need."""
    if standin():
        import scipy.special

        return scipy.special
    import cupyx.scipy.special

    return cupyx.scipy.special


def to_host(value):
    """A NumPy array from a NumPy or CuPy one (CuPy arrays have .get(); NumPy arrays are returned as they are)."""
    import numpy

    return value.get() if hasattr(value, "get") and not isinstance(value, numpy.ndarray) else value
