"""Saving and loading trained models: one .npz, never pickled.

The file holds the parameters, the model's .dgm source with every file it
imports (and where each import led), its sizes, dtype, backend and compiler
version, the standardisation of its real-valued data when it was trained on
standardised rows (runtime.standardize: `compiled.standardization`), and
optionally the trainer's state (momentum, persistent chains, the
negative-phase sampler's own arrays, random-generator state, history) so a
run can resume exactly. Strings are
stored as numpy unicode arrays, so loading needs no pickle. Writes are atomic.

A checkpoint is untrusted data: it may be truncated, bit-flipped or made by
hand. Reading checks every member before using it and loading checks the
parameters (and resuming the momentum, chains and activity) against the
model (runtime.checkpoint_contents); the model itself is rebuilt from the
embedded .dgm files, never from the directory it is loaded in.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import DSLError
from ..ir.library import SourceFile
from .checkpoint_contents import (ARRAY_GROUPS, META, checked, described, embedded_files, fit_activity, fit_chains,
                                  fit_parameters, fit_standardization, fit_velocity, json_member, numbers, parameter,
                                  read_members, standardization_arrays, text_member, training_state)
from .gpu import to_host as _host

try:
    import fcntl
except ImportError:  # not POSIX: no advisory locks, so temporaries of killed saves are left alone
    fcntl = None

# ---- saving ----

def save(path, compiled, training: dict | None = None) -> Path:
    """Write `compiled` (a Compiled, or a CompiledStack: every level's parameters, `param/<level>/<name>`, and
    untied recognition parameters, `recognition/<level>/<name>`) to one .npz, atomically."""
    path = Path(path)
    arrays = _parameter_arrays(compiled)
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
    arrays["files"] = np.array(json.dumps(_embedded(compiled.model.files)))
    standardization = compiled.standardization
    if standardization is not None:
        for layer in standardization.layers:
            arrays[f"standardize/mean/{layer}"] = np.asarray(standardization.mean[layer], dtype=np.float64)
            arrays[f"standardize/scale/{layer}"] = np.asarray(standardization.scale[layer], dtype=np.float64)
    if training is not None:
        for group in ARRAY_GROUPS:
            for name, value in (training.get(group) or {}).items():
                arrays[f"train/{group}/{name}"] = np.asarray(_host(value))
        state = {k: v for k, v in training.items() if k not in ARRAY_GROUPS}
        arrays["train/state"] = np.array(json.dumps(state))
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    temporary = path.parent / f"{_temporary_prefix(path)}{secrets.token_hex(8)}.tmp"
    # O_EXCL: never through a planted file or link; mode 0o666 less the umask: a checkpoint is an ordinary file
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(handle, "wb") as stream:
            _lock(stream)  # held until the file is renamed and closed: a live save's temporary is never stale
            np.savez(stream, **arrays)
            os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def _parameter_arrays(compiled) -> dict:
    levels = getattr(compiled, "levels", None)
    if levels is None:
        return {f"param/{name}": np.asarray(_host(value)) for name, value in compiled.params.items()}
    arrays = {}
    for number, (level, recognition) in enumerate(zip(levels, compiled.recognition)):
        arrays.update({f"param/{number}/{name}": np.asarray(_host(value)) for name, value in level.params.items()})
        arrays.update({f"recognition/{number}/{name}": np.asarray(_host(value))
                       for name, value in (recognition or {}).items()})
    return arrays


def _temporary_prefix(path: Path) -> str:
    """Hidden, beside the target (so os.replace is atomic), and named after it: `.model.npz.<16 hex>.tmp`."""
    return f".{path.name}."


def _lock(stream) -> None:
    if fcntl is not None:
        fcntl.flock(stream, fcntl.LOCK_EX)


def _remove_stale_temporaries(path: Path) -> None:
    """Remove what saves of `path` killed midway (kill -9, power loss) left beside it.

    A temporary is stale when no process holds its lock: the kernel drops a
    lock when its holder dies, so a save in progress (another thread or
    process saving the same path) keeps its temporary. Only the short moment
    between another save creating its temporary and locking it is unguarded;
    two saves of one path at once are unusual, and the loser's os.replace
    then fails loudly rather than leaving a wrong file. Without POSIX locks
    nothing is removed.
    """
    if fcntl is None:
        return
    name = re.compile(re.escape(_temporary_prefix(path)) + r"[0-9a-f]{16}\.tmp")
    with os.scandir(path.parent) as entries:
        stale = [e.path for e in entries if name.fullmatch(e.name) and e.is_file(follow_symlinks=False)]
    for candidate in stale:
        try:
            handle = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue  # gone already, or not ours to open
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.remove(candidate)
        except OSError:
            pass  # locked (a save in progress), or not ours to remove
        finally:
            os.close(handle)


# ---- reading ----

def read(path) -> dict:
    """The checkpoint's contents as plain data (no model built), each member checked before it is used.

    {"meta", "source", "files", "params", "standardization", "training"}: the
    arrays as stored (real numbers of any shape: the model decides the
    shapes); "files" the embedded .dgm files (None in checkpoints older than
    them); "standardization" None or {"mean": {layer: array}, "scale": ...};
    "training" is None or the trainer's state with its "velocity", "chains" and "sampler" arrays (the
    last as stored: the sampler checks them when it restores them, runtime.samplers).
    """
    members = read_members(path)
    if "meta" not in members or "source" not in members:
        raise DSLError(f"{path} is not a pgmdsl checkpoint (no model source in it)")
    source = text_member(path, members, "source")
    return {
        "meta": checked(path, "meta", json_member(path, members, "meta"), META),
        "source": source,
        "files": embedded_files(path, members, source) if "files" in members else None,
        "params": numbers(path, members, "param/", parameter),
        "recognition": numbers(path, members, "recognition/", parameter),
        "standardization": standardization_arrays(path, members),
        "training": training_state(path, members) if "train/state" in members else None,
    }


def load_trained(path, backend: str | None = None):
    """A Compiled model from a checkpoint: recompiled from the .dgm files stored in it.

    The parameters (and the standardisation) are checked against the model
    before it is compiled, so sizes edited in `meta` never make compile
    allocate what the file does not hold. `compiled.standardization` is the
    runtime.standardize.Standardization of the training rows, or None: the
    model's samples are in standardised units until it undoes them.
    """
    contents = read(path)
    meta = contents["meta"]
    model = _model(contents)
    if model.stack:
        return _load_stack(path, contents, model, backend)
    params = fit_parameters(path, contents["params"], model, np.dtype(meta["dtype"]))
    standardization = fit_standardization(path, contents["standardization"], model)
    compiled = model.compile(backend=backend or meta["backend"], dtype=meta["dtype"])
    for name, value in params.items():
        compiled.params[name] = compiled.xp.asarray(value, dtype=compiled.dtype)
    compiled.checkpoint = contents
    compiled.standardization = standardization
    compiled.trained = True
    return compiled


def _load_stack(path, contents: dict, model, backend):
    """A CompiledStack from a stack's checkpoint: each level's parameters (and recognition ones) checked first."""
    meta, dtype = contents["meta"], np.dtype(contents["meta"]["dtype"])
    levels = len(model.stack)
    for group in ("params", "recognition"):
        stray = sorted(name for name in contents[group] if name.split("/", 1)[0] not in map(str, range(levels)))
        if stray:
            raise DSLError(f"checkpoint {path}: {group} '{stray[0]}' belong to no level of the {levels}-level "
                           f"stack {model.name}")
    fitted, untied = [], []
    for number, part in enumerate(model.stack):
        prefix = f"{number}/"
        own = {k[len(prefix):]: v for k, v in contents["params"].items() if k.startswith(prefix)}
        fitted.append(fit_parameters(path, own, part, dtype))
        recognition = {k[len(prefix):]: v for k, v in contents["recognition"].items() if k.startswith(prefix)}
        untied.append(fit_parameters(path, recognition, part, dtype) if recognition else None)
    stack = model.compile(backend=backend or meta["backend"], dtype=meta["dtype"])
    for level, params, recognition, number in zip(stack.levels, fitted, untied, range(levels)):
        for name, value in params.items():
            level.params[name] = level.xp.asarray(value, dtype=level.dtype)
        if recognition is not None:
            stack.recognition[number] = {k: level.xp.asarray(v, dtype=level.dtype) for k, v in recognition.items()}
    for level in stack.levels:
        level.trained = True
    stack.checkpoint = contents
    stack.standardization = None
    return stack


def resumable(path, compiled) -> dict:
    """read(path) with everything Trainer.resume uses checked against `compiled`, the model being trained.

    The same model and sizes; the parameters and their momentum present,
    shaped as declared and finite; the chains in one of the trainer's forms;
    the sparsity activity shaped as its bias. Arrays come back on the host as
    `compiled`'s dtype.
    """
    contents = read(path)
    training = contents["training"]
    if training is None:
        raise DSLError(f"{path} holds no training state to resume from")
    meta, model = contents["meta"], compiled.model
    if (meta["model"], meta["sizes"]) != (model.name, model.arguments):
        raise DSLError(f"checkpoint {path} holds model {described(meta['model'], meta['sizes'])}, "
                       f"not {described(model.name, model.arguments)}")
    params = fit_parameters(path, contents["params"], model, compiled.dtype)
    velocity = fit_velocity(path, training["velocity"], params, compiled)
    return {**contents, "params": params,
            "training": {**training, "velocity": velocity, "chains": fit_chains(path, training, compiled),
                         "activity": fit_activity(path, training["activity"], compiled)}}


def _model(contents: dict):
    """The checkpoint's model, rebuilt from its embedded files (imports included) wherever it is loaded.

    A checkpoint older than embedded files has only its main file's text:
    its imports resolve from the current directory, as they did when it was written.
    """
    from ..loading import load_files

    meta = contents["meta"]
    files = contents["files"] or (SourceFile(meta["filename"], contents["source"]),)
    return load_files(files, meta["model"], **meta["sizes"])


def _embedded(files) -> list:
    """The model's files as JSON: each by its base name (no directories of the machine it was made on)."""
    return [{"name": Path(f.name).name, "text": f.text, "imports": [list(i) for i in f.imports]} for f in files]


