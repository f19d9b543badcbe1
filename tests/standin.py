"""Compiling for either backend in tests: the CuPy module runs on NumPy through its documented seam."""

import os


def compile_for(model, backend: str, dtype: str):
    """model.compile(backend=..., dtype=..., cache=False) with PGMDSL_CUPY_STANDIN=numpy set only meanwhile."""
    previous = os.environ.get("PGMDSL_CUPY_STANDIN")
    os.environ["PGMDSL_CUPY_STANDIN"] = "numpy"
    try:
        return model.compile(backend=backend, dtype=dtype, cache=False)
    finally:
        if previous is None:
            del os.environ["PGMDSL_CUPY_STANDIN"]
        else:
            os.environ["PGMDSL_CUPY_STANDIN"] = previous
