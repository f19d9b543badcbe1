"""Saving and loading trained models: one .npz, never pickled.

The file holds the parameters, the model's .dgm source with every file it
imports (and where each import led), its sizes, dtype, backend and compiler
version, and optionally the trainer's state (momentum, persistent chains,
random-generator state, history) so a run can resume exactly. Strings are stored as numpy unicode arrays, so loading needs no
pickle. Writes are atomic.

A checkpoint is untrusted data: it may be truncated, bit-flipped or made by
hand. Reading checks every member's .npy header (no Python objects, sizes
that agree with the archive, a budget for all of them together) before any
array is read, then the types of `meta`, `source` and the training state;
loading checks the parameters (and resuming the momentum, chains and
activity) against the model: present, shaped as declared, real and finite.
Every failure is one DSLError line naming the file and the member or key.
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
from .gpu import to_host as _host
from .npzfile import read_npz
from .npzfile import shown as _shown

try:
    import fcntl
except ImportError:  # not POSIX: no advisory locks, so temporaries of killed saves are left alone
    fcntl = None

# What the arrays of one checkpoint may declare together, checked from their headers before any is read:
# far above any model this compiler trains on one machine, far below what a few bytes should make it allocate.
MAX_BYTES = 2 * 2**30
MAX_SIZE = 2**31 - 1  # a model size (nv=...) beyond this is damage, not a model


# ---- saving ----

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
    arrays["files"] = np.array(json.dumps(_embedded(compiled.model.files)))
    if training is not None:
        for group in ("velocity", "chains"):
            for name, value in (training.get(group) or {}).items():
                arrays[f"train/{group}/{name}"] = np.asarray(_host(value))
        state = {k: v for k, v in training.items() if k not in ("velocity", "chains")}
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


# ---- reading: the archive, then its members' types ----

def read(path) -> dict:
    """The checkpoint's contents as plain data (no model built), each member checked before it is used.

    {"meta", "source", "files", "params", "training"}: the arrays as stored
    (real numbers of any shape: the model decides the shapes); "files" the
    embedded .dgm files (None in checkpoints older than them); "training" is
    None or the trainer's state with its "velocity" and "chains" arrays.
    """
    members = _members(path)
    if "meta" not in members or "source" not in members:
        raise DSLError(f"{path} is not a pgmdsl checkpoint (no model source in it)")
    source = _text(path, members, "source")
    return {
        "meta": _checked(path, "meta", _json(path, members, "meta"), META),
        "source": source,
        "files": _files(path, members, source) if "files" in members else None,
        "params": _numbers(path, members, "param/", _parameter),
        "training": _training(path, members) if "train/state" in members else None,
    }


def _members(path) -> dict[str, np.ndarray]:
    return read_npz(path, f"checkpoint {path}", lambda headers: _within_budget(path, headers))


def _within_budget(path, headers) -> None:
    declared = sum(header.bytes for header in headers)
    if declared > MAX_BYTES:
        raise DSLError(f"cannot read checkpoint {path}: it declares {declared} bytes of arrays in all, "
                       f"over the limit of {MAX_BYTES}")


def _text(path, members: dict, name: str) -> str:
    value = members[name]
    if value.dtype.kind != "U" or value.shape != ():
        raise DSLError(f"checkpoint {path}: member '{name}' must be one text string, "
                       f"got {value.dtype} values of shape {value.shape}")
    return str(value[()])


def _json(path, members: dict, name: str) -> dict:
    try:
        document = json.loads(_text(path, members, name))
    except (ValueError, RecursionError) as error:
        raise DSLError(f"checkpoint {path}: {name} is not JSON ({_shown(str(error))})") from None
    if not isinstance(document, dict):
        raise DSLError(f"checkpoint {path}: {name} is not a JSON object")
    return document


def _checked(path, where: str, document: dict, table: dict) -> dict:
    """`document` with every key of `table` present and passing its check (unknown keys are left alone)."""
    for key, (check, wanted) in table.items():
        if key not in document:
            raise DSLError(f"checkpoint {path}: {where} has no '{key}'")
        if not check(document[key]):
            got = _shown(repr(document[key]), 60)
            raise DSLError(f"checkpoint {path}: {where} '{key}' must be {wanted}, got {got}")
    return document


def _is_int(value, low: int = 0, high: int | None = None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_text(value) -> bool:
    return isinstance(value, str)


def _is_sizes(value) -> bool:
    return isinstance(value, dict) and all(_is_int(size, 1, MAX_SIZE) for size in value.values())


# The backend's name is only typed here: codegen.backends looks it up among the known ones.
META = {
    "model": (_is_text, "a string"),
    "filename": (_is_text, "a string"),
    "sizes": (_is_sizes, f"an object of size names to integers from 1 to {MAX_SIZE}"),
    "dtype": (lambda value: value in ("float32", "float64"), "'float32' or 'float64'"),
    "backend": (_is_text, "a string"),
    "version": (_is_text, "a string"),
}


def _numbers(path, members: dict, prefix: str, label) -> dict[str, np.ndarray]:
    """The arrays named `prefix`NAME, each refused unless it holds real numbers (integers or floats)."""
    found = {name[len(prefix):]: value for name, value in members.items() if name.startswith(prefix)}
    for name, value in found.items():
        if value.dtype.kind == "c":
            raise DSLError(f"checkpoint {path}: {label(name)} holds complex values")
        if value.dtype.kind not in "fiu":
            raise DSLError(f"checkpoint {path}: {label(name)} holds {value.dtype} values, not numbers")
    return found


def _is_history(value) -> bool:
    return isinstance(value, list) and all(_is_metrics(row) for row in value)


def _is_metrics(row) -> bool:
    return isinstance(row, dict) and all(map(_is_number, row.values()))


def _is_pcg64_state(value) -> bool:
    """The trainer's generator (default_rng: PCG64) state, as its setter wants it: numpy accepts some wrong ones."""
    inner = value.get("state") if isinstance(value, dict) else None
    return (isinstance(inner, dict) and value.get("bit_generator") == "PCG64"
            and all(_is_int(inner.get(key), 0, 2**128 - 1) for key in ("state", "inc"))
            and _is_int(value.get("has_uint32"), 0, 1) and _is_int(value.get("uinteger"), 0, 2**32 - 1))


TRAINING = {
    "options": (lambda value: isinstance(value, dict), "an object of fit's options"),
    "rng": (_is_pcg64_state, "a PCG64 generator state"),
    "epoch": (_is_int, "an integer >= 0"),
    "updates": (_is_int, "an integer >= 0"),
    "activity": (lambda value: isinstance(value, dict), "an object of layer names to running means"),
    "history": (_is_history, "a list of objects of metric names to numbers"),
}


def _training(path, members: dict) -> dict:
    """The trainer's state (as Trainer.save wrote it), each key typed; the arrays are fitted to a model later."""
    from .options import options

    training = _checked(path, "train/state", _json(path, members, "train/state"), TRAINING)
    try:
        options(**training["options"])
    except DSLError as error:
        raise DSLError(f"checkpoint {path}: train/state options: {error.message.removeprefix('fit: ')}") from None
    if len(training["history"]) != training["epoch"]:
        raise DSLError(f"checkpoint {path}: train/state holds {len(training['history'])} history rows for "
                       f"{training['epoch']} epochs")
    training["velocity"] = _numbers(path, members, "train/velocity/", _momentum)
    training["chains"] = _numbers(path, members, "train/chains/", _chain)
    return training


# ---- fitting the arrays to the model ----

def _fitted(path, arrays: dict, shapes: dict, dtype, label, whose: str, shaped: str, complete: bool = True) -> dict:
    """`arrays` as `dtype`, refused unless each is named and shaped as in `shapes` and finite.

    whose: what the names are ("model rbm's parameters"); shaped: who wants
    the shapes ("model rbm(nv=8, nh=4) declares"); complete: every name in
    `shapes` must be there. A float64 value beyond float32's range would
    become infinite in the cast, so it is refused too.
    """
    missing = [label(name) for name in shapes if name not in arrays] if complete else []
    if missing:
        raise DSLError(f"checkpoint {path}: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing "
                       f"({whose} are {', '.join(shapes)})")
    result = {}
    for name, value in arrays.items():
        if name not in shapes:
            raise DSLError(f"checkpoint {path}: {label(name)} is not one of {whose} ({', '.join(shapes) or 'none'})")
        if value.shape != shapes[name]:
            raise DSLError(f"checkpoint {path}: {label(name)} has shape {value.shape}; {shaped} {shapes[name]}")
        if not np.all(np.isfinite(value)):
            raise DSLError(f"checkpoint {path}: {label(name)} holds NaN or infinite values")
        with np.errstate(over="ignore"):
            result[name] = np.asarray(value, dtype=dtype)
        if not np.all(np.isfinite(result[name])):
            raise DSLError(f"checkpoint {path}: {label(name)} holds values beyond {np.dtype(dtype).name}'s range")
    return result


def _parameters(path, params: dict, model, dtype) -> dict:
    """The stored parameters checked against `model`'s declarations: all of them, no others, as declared."""
    shapes = {param.name: tuple(param.shape) for param in model.params}
    return _fitted(path, params, shapes, dtype, _parameter, f"model {model.name}'s parameters",
                   f"model {_described(model.name, model.arguments)} declares")


def _parameter(name: str) -> str:
    return f"parameter '{name}'"


def _momentum(name: str) -> str:
    return f"momentum 'train/velocity/{name}'"


def _chain(name: str) -> str:
    return f"chains 'train/chains/{name}'"


def _described(name: str, sizes: dict) -> str:
    return f"{name}({', '.join(f'{k}={v}' for k, v in sizes.items())})"


def load_trained(path, backend: str | None = None):
    """A Compiled model from a checkpoint: recompiled from the .dgm files stored in it.

    The parameters are checked against the model before it is compiled, so
    sizes edited in `meta` never make compile allocate what the file does not hold.
    """
    contents = read(path)
    meta = contents["meta"]
    model = _model(contents)
    params = _parameters(path, contents["params"], model, np.dtype(meta["dtype"]))
    compiled = model.compile(backend=backend or meta["backend"], dtype=meta["dtype"])
    for name, value in params.items():
        compiled.params[name] = compiled.xp.asarray(value, dtype=compiled.dtype)
    compiled.checkpoint = contents
    return compiled


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
        raise DSLError(f"checkpoint {path} holds model {_described(meta['model'], meta['sizes'])}, "
                       f"not {_described(model.name, model.arguments)}")
    params = _parameters(path, contents["params"], model, compiled.dtype)
    velocity = _fitted(path, training["velocity"], {name: value.shape for name, value in params.items()},
                       compiled.dtype, _momentum, f"model {model.name}'s parameters",
                       f"model {_described(model.name, model.arguments)} declares")
    return {**contents, "params": params,
            "training": {**training, "velocity": velocity, "chains": _chains(path, training, compiled),
                         "activity": _activity(path, training["activity"], compiled)}}


def _chains(path, training: dict, compiled) -> dict:
    """The persistent chains, a row per chain (as many as fit's chains= or batch_size), in a form the trainer resumes.

    The generic trainer keeps every layer the compiler keeps (`kept`); the
    packed update and PCD with summed-out hidden units keep those hidden
    units (and the inputs). Chains with one layer dropped would fail mid-sweep.
    """
    chains, options = training["chains"], training["options"]
    count = options["chains"] or options["batch_size"]
    layers = {name: (count,) + tuple(info["shape"]) for name, info in compiled.layers.items()}
    fitted = _fitted(path, chains, layers, compiled.dtype, _chain, f"model {compiled.model.name}'s layers",
                     "the trainer keeps", complete=False)
    inputs = {name for name, info in compiled.layers.items() if info["role"] == "input"}
    if chains and set(chains) != set(compiled.kept) and not set(chains) <= set(compiled.marginalised) | inputs:
        kept, summed = ", ".join(sorted(compiled.kept)), ", ".join(sorted(compiled.marginalised))
        raise DSLError(f"checkpoint {path}: the chains hold layers {', '.join(sorted(chains))}: the trainer keeps "
                       f"either {kept} or some of {summed}")
    return fitted


def _activity(path, activity: dict, compiled) -> dict:
    """The sparsity target's running mean activity per hidden layer, shaped as that layer's bias (Trainer.sparsity)."""
    from .train import _hidden_biases

    def label(name: str) -> str:
        return f"sparsity activity of layer '{name}'"

    arrays = {}
    for layer, value in activity.items():
        try:
            arrays[layer] = np.asarray(value)
        except ValueError:  # ragged lists
            raise DSLError(f"checkpoint {path}: {label(layer)} is not an array of numbers") from None
    shapes = {layer: compiled.params[bias].shape for layer, (bias, _) in _hidden_biases(compiled).items()}
    return _fitted(path, _numbers(path, arrays, "", label), shapes, compiled.dtype, label,
                   f"model {compiled.model.name}'s binary hidden layers with a bias", "the trainer keeps",
                   complete=False)


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


def _files(path, members: dict, source: str) -> tuple:
    """The embedded files, checked: the main file first and equal to `source`, every import pointing at one of them."""
    try:
        document = json.loads(_text(path, members, "files"))
    except (ValueError, RecursionError) as error:
        raise DSLError(f"checkpoint {path}: files is not JSON ({_shown(str(error))})") from None
    count = len(document) if isinstance(document, list) else 0

    def valid(entry) -> bool:
        return (isinstance(entry, dict) and _is_text(entry.get("name")) and _is_text(entry.get("text"))
                and isinstance(entry.get("imports"), list)
                and all(isinstance(i, list) and len(i) == 2 and _is_text(i[0]) and _is_int(i[1], 0, count - 1)
                        for i in entry["imports"]))

    if not count or not all(valid(entry) for entry in document):
        raise DSLError(f"checkpoint {path}: files must be a list of {{name, text, imports}} objects")
    if document[0]["text"] != source:
        raise DSLError(f"checkpoint {path}: its first embedded file is not its source")
    return tuple(SourceFile(e["name"], e["text"], tuple((i[0], i[1]) for i in e["imports"])) for e in document)
