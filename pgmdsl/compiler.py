"""model.compile(): derive, emit, cache and load a model's module."""

from __future__ import annotations

import numpy as np

from .errors import DSLError
from .runtime.compiled import Compiled

DTYPES = ("float32", "float64")


def generate_source(model, backend: str = "numpy", dtype: str = "float32") -> str:
    """The Python source of a model's module (derivation with sympy, then emission)."""
    from .codegen.backends import backend as find_backend
    from .codegen.emit import ModuleEmitter
    from .symbolic.derive import derive

    if model.stack:
        raise DSLError(f"model '{model.name}' is a stack: compile its models one by one (model.stack)")
    if dtype not in DTYPES:
        raise DSLError(f"dtype must be one of {', '.join(DTYPES)}, got '{dtype}'")
    chosen = find_backend(backend)
    return ModuleEmitter(model, derive(model.ir, model.schedule), chosen, dtype).emit()


def compile_model(model, backend: str = "numpy", dtype: str = "float32", seed: int = 0, cache: bool = True) -> Compiled:
    from .codegen.backends import backend as find_backend
    from .codegen.load import cache_key, load_module, read_cached, write_cached

    find_backend(backend)  # an unknown name is an error before anything is keyed, read or run
    if model.stack:
        from .runtime.stack import CompiledStack

        return CompiledStack(model, [part.compile(backend, dtype, seed + k, cache) for k, part in enumerate(model.stack)])
    dtype = np.dtype(dtype).name if dtype in DTYPES or hasattr(dtype, "name") else dtype
    key = cache_key(model, backend, dtype)
    name = f"{model.name}-{backend}-{dtype}-{key[:8]}"
    source = read_cached(key) if cache else None
    module = None
    if source is not None:
        try:
            module = load_module(source, name)
        except Exception:  # noqa: BLE001 - an entry that does not load is a miss, whatever it raises
            pass
    if module is None:
        source = generate_source(model, backend, dtype)
        if cache:
            write_cached(key, source)
        module = load_module(source, name)
    return Compiled(model, module, source, backend, dtype, seed)
