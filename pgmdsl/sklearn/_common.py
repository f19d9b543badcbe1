"""What the scikit-learn estimators share: pickling a compiled model, seeds, host arrays (BLAS threads: runtime.threads)."""

from __future__ import annotations

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


