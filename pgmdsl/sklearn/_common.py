"""What the scikit-learn estimators share: pickling a compiled model, seeds, BLAS threads, host arrays."""

from __future__ import annotations

from contextlib import nullcontext
from functools import lru_cache
from pathlib import Path

import numpy as np
from sklearn.utils import check_random_state

from ..runtime.gpu import to_host as host


def pack_compiled(state: dict) -> dict:
    """An estimator's __dict__ made picklable: `compiled_` (a generated module) travels as its .dgm files
    (imports included), sizes and parameters, and is compiled again on unpickling (`unpack_compiled`)."""
    state = dict(state)
    compiled = state.pop("compiled_", None)
    if compiled is not None:
        state["_compiled_state"] = {
            "files": [(Path(f.name).name, f.text, f.imports) for f in compiled.model.files],
            "name": compiled.model.name,
            "sizes": compiled.model.arguments,
            "dtype": compiled.dtype.name,
            "backend": compiled.backend,
            "params": {name: np.array(host(value)) for name, value in compiled.params.items()},
        }
    return state


def unpack_compiled(state: dict) -> dict:
    state = dict(state)
    saved = state.pop("_compiled_state", None)
    if saved is not None:
        from ..ir.library import SourceFile
        from ..loading import load_files

        files = saved.get("files") or [(saved["filename"], saved["source"], ())]  # older pickles: one file
        model = load_files(tuple(SourceFile(*f) for f in files), saved["name"], **saved["sizes"])
        compiled = model.compile(backend=saved["backend"], dtype=saved["dtype"])
        for name, value in saved["params"].items():
            compiled.params[name] = compiled.xp.asarray(value, dtype=compiled.dtype)
        state["compiled_"] = compiled
    return state


def compile_sized(model, wanted: dict, dtype: str, seed: int, extra: dict | None = None):
    """The model compiled with the sizes in `wanted` it declares (and `extra`, all given), or a ValueError."""
    from ..errors import DSLError
    from ..loading import load

    try:
        declared = load(model).arguments
    except DSLError as error:
        raise ValueError(f"model={model!r}: {error.message}") from None
    sizes = {name: int(value) for name, value in wanted.items() if name in declared}
    sizes.update(extra or {})
    try:
        return load(model, **sizes).compile(dtype=dtype, seed=seed)
    except DSLError as error:
        raise ValueError(f"model={model!r} with sizes {sizes}: {error.message}") from None


def seeds(random_state) -> tuple[int, int]:
    """Two seeds from random_state: parameter initialisation, then training (order, Gibbs draws)."""
    rng = check_random_state(random_state)
    return int(rng.randint(np.iinfo(np.int32).max)), int(rng.randint(np.iinfo(np.int32).max))


def blas_threads(multiply_adds: int):
    """One BLAS thread for fits whose per-update products are small (as digits' 10 x 64 x 100).

    OpenBLAS runs products under about 2^18 multiply-adds on one thread
    anyway; but the trainer's per-epoch monitoring (reconstruction error on
    1000 rows) is large enough to wake its worker threads, which then
    busy-wait and, on a machine with busy cores, take CPU time from the
    training thread: on 2 cores with another process running, epochs of the
    digits example took 1.5-2x as long. Larger models keep every thread.
    """
    if multiply_adds > 1 << 18:
        return nullcontext()
    controller = _threadpools()
    return nullcontext() if controller is None else controller.limit(limits=1, user_api="blas")


@lru_cache(maxsize=1)
def _threadpools():
    """threadpoolctl's view of the loaded BLAS libraries, found once (a scan costs milliseconds per fit)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - scikit-learn depends on threadpoolctl
        return None
    return ThreadpoolController()
