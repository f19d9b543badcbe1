"""Saving and loading trained models: one .npz, never pickled.

The file holds the parameters, the model's .dgm source and its sizes, dtype,
backend and compiler version, and optionally the trainer's state (momentum,
persistent chains, random-generator state, history) so a run can resume
exactly. Strings are stored as numpy unicode arrays, so loading needs no
pickle (np.load(..., allow_pickle=False)). Writes are atomic.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import DSLError
from .gpu import to_host as _host


def save(path, compiled, training: dict | None = None) -> Path:
    path = Path(path)
    arrays = {f"param/{name}": np.asarray(_host(value)) for name, value in compiled.params.items()}
    meta = {
        "model": compiled.model.name,
        "filename": Path(compiled.model.filename).name,
        "sizes": compiled.model.arguments,
        "dtype": compiled.dtype.name,
        "backend": compiled.backend,
        "version": __version__,
    }
    arrays["meta"] = np.array(json.dumps(meta))
    arrays["source"] = np.array(compiled.model.source)
    if training is not None:
        for group in ("velocity", "chains"):
            for name, value in (training.get(group) or {}).items():
                arrays[f"train/{group}/{name}"] = np.asarray(_host(value))
        state = {k: v for k, v in training.items() if k not in ("velocity", "chains")}
        arrays["train/state"] = np.array(json.dumps(state))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    os.close(handle)
    try:
        with open(temporary, "wb") as stream:
            np.savez(stream, **arrays)
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes files private; a checkpoint is an ordinary file
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read(path) -> dict:
    """The checkpoint's contents as plain data (no model built)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            contents = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as error:
        raise DSLError(f"cannot read checkpoint {path}: {error}") from None
    if "meta" not in contents or "source" not in contents:
        raise DSLError(f"{path} is not a pgmdsl checkpoint (no model source in it)")
    result = {
        "meta": json.loads(str(contents["meta"])),
        "source": str(contents["source"]),
        "params": {k[len("param/"):]: v for k, v in contents.items() if k.startswith("param/")},
        "training": None,
    }
    if "train/state" in contents:
        training = json.loads(str(contents["train/state"]))
        for group in ("velocity", "chains"):
            prefix = f"train/{group}/"
            training[group] = {k[len(prefix):]: v for k, v in contents.items() if k.startswith(prefix)}
        result["training"] = training
    return result


def load_trained(path, backend: str | None = None):
    """A Compiled model from a checkpoint: recompiled from the stored .dgm source."""
    from ..loading import parse

    contents = read(path)
    meta = contents["meta"]
    model = parse(contents["source"], filename=meta["filename"], **meta["sizes"])
    if model.name != meta["model"]:
        model = _named(contents["source"], meta)
    compiled = model.compile(backend=backend or meta["backend"], dtype=meta["dtype"])
    for name, value in contents["params"].items():
        if name not in compiled.params or compiled.params[name].shape != value.shape:
            raise DSLError(f"checkpoint {path}: parameter '{name}' does not fit model {model.name}")
        compiled.params[name] = compiled.xp.asarray(value, dtype=compiled.dtype)
    compiled.checkpoint = contents
    return compiled


def _named(source: str, meta: dict):
    from ..ir.build import build_model
    from ..ir.library import Library
    from ..model import Model

    scope = Library().load_text(source, meta["filename"])
    definition, file_scope = scope.models[meta["model"]]
    return Model(build_model(definition, file_scope, meta["sizes"]))
