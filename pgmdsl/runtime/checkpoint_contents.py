"""What each member of a checkpoint must be, and how its arrays are fitted to the model they are loaded into.

A checkpoint is untrusted data (runtime.checkpoint): every member's header
is checked before any array is read (runtime.npzfile), then `meta`,
`source`, the embedded files and the training state are typed key by key,
and the arrays (parameters, momentum, chains, the standardisation of the
data) are fitted to the model (a sampler's own arrays, train/sampler/, by
the sampler when it restores them: runtime.samplers): present, shaped as declared, real,
finite and within the model's dtype. Every failure is one DSLError naming
the file and the member or key.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import DSLError
from ..ir.library import SourceFile
from .npzfile import read_npz
from .npzfile import shown as _shown
from .standardize import Standardization, conditioned_layers, frames_mismatch, standardized_shapes

# What the arrays of one checkpoint may declare together, checked from their headers before any is read:
# far above any model this compiler trains on one machine, far below what a few bytes should make it allocate.
MAX_BYTES = 2 * 2**30
MAX_SIZE = 2**31 - 1  # a model size (nv=...) beyond this is damage, not a model


def read_members(path) -> dict[str, np.ndarray]:
    return read_npz(path, f"checkpoint {path}", lambda headers: _within_budget(path, headers))


def _within_budget(path, headers) -> None:
    declared = sum(header.bytes for header in headers)
    if declared > MAX_BYTES:
        raise DSLError(f"cannot read checkpoint {path}: it declares {declared} bytes of arrays in all, "
                       f"over the limit of {MAX_BYTES}")


def text_member(path, members: dict, name: str) -> str:
    value = members[name]
    if value.dtype.kind != "U" or value.shape != ():
        raise DSLError(f"checkpoint {path}: member '{name}' must be one text string, "
                       f"got {value.dtype} values of shape {value.shape}")
    return str(value[()])


def json_member(path, members: dict, name: str) -> dict:
    try:
        document = json.loads(text_member(path, members, name))
    except (ValueError, RecursionError) as error:
        raise DSLError(f"checkpoint {path}: {name} is not JSON ({_shown(str(error))})") from None
    if not isinstance(document, dict):
        raise DSLError(f"checkpoint {path}: {name} is not a JSON object")
    return document


def checked(path, where: str, document: dict, table: dict) -> dict:
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


def numbers(path, members: dict, prefix: str, label) -> dict[str, np.ndarray]:
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


ARRAY_GROUPS = ("velocity", "chains", "sampler")  # train/GROUP/NAME arrays beside train/state

TRAINING = {
    "options": (lambda value: isinstance(value, dict), "an object of fit's options"),
    "rng": (lambda value: value is None or _is_pcg64_state(value),
            "a PCG64 generator state (null only beside 'workers')"),
    "epoch": (_is_int, "an integer >= 0"),
    "updates": (_is_int, "an integer >= 0"),
    "activity": (lambda value: isinstance(value, dict), "an object of layer names to running means"),
    "history": (_is_history, "a list of objects of metric names to numbers"),
}


def training_state(path, members: dict) -> dict:
    """The trainer's state (as Trainer.save wrote it), each key typed; the arrays are fitted to a model later."""
    from .options import options

    training = checked(path, "train/state", json_member(path, members, "train/state"), TRAINING)
    try:
        options(**training["options"])
    except DSLError as error:
        raise DSLError(f"checkpoint {path}: train/state options: {error.message.removeprefix('fit: ')}") from None
    workers = training.get("workers")  # data-parallel training (pgmdsl.distributed): one stream per worker
    if workers is not None and not (isinstance(workers, list) and workers and all(map(_is_pcg64_state, workers))):
        raise DSLError(f"checkpoint {path}: train/state 'workers' must be a list of PCG64 generator states")
    if training["rng"] is None and workers is None:
        raise DSLError(f"checkpoint {path}: train/state has no random stream: neither 'rng' (the serial trainer's) "
                       "nor 'workers' (data-parallel training's)")
    if training["rng"] is not None and workers is not None:
        raise DSLError(f"checkpoint {path}: train/state has both 'rng' (the serial trainer's) and 'workers' "
                       "(data-parallel training's): a run saves one")
    if len(training["history"]) != training["epoch"]:
        raise DSLError(f"checkpoint {path}: train/state holds {len(training['history'])} history rows for "
                       f"{training['epoch']} epochs")
    training["velocity"] = numbers(path, members, "train/velocity/", momentum)
    training["chains"] = numbers(path, members, "train/chains/", _chain)
    training["sampler"] = numbers(path, members, "train/sampler/", _sampler)
    return training


# ---- fitting the arrays to the model ----

def fit_arrays(path, arrays: dict, shapes: dict, dtype, label, whose: str, shaped: str, complete: bool = True) -> dict:
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


def fit_parameters(path, params: dict, model, dtype) -> dict:
    """The stored parameters checked against `model`'s declarations: all of them, no others, as declared."""
    shapes = {param.name: tuple(param.shape) for param in model.params}
    return fit_arrays(path, params, shapes, dtype, parameter, f"model {model.name}'s parameters",
                   f"model {described(model.name, model.arguments)} declares")


def parameter(name: str) -> str:
    return f"parameter '{name}'"


def momentum(name: str) -> str:
    return f"momentum 'train/velocity/{name}'"


def _chain(name: str) -> str:
    return f"chains 'train/chains/{name}'"


def _sampler(name: str) -> str:
    return f"sampler state 'train/sampler/{name}'"


def described(name: str, sizes: dict) -> str:
    return f"{name}({', '.join(f'{k}={v}' for k, v in sizes.items())})"


def fit_chains(path, training: dict, compiled) -> dict:
    """The persistent chains, a row per chain (as many as fit's chains= or batch_size), in a form the trainer resumes.

    The generic trainer keeps every layer the compiler keeps (`kept`); the
    packed update and PCD with summed-out hidden units keep those hidden
    units (and the inputs). Chains with one layer dropped would fail mid-sweep.
    """
    chains, options = training["chains"], training["options"]
    count = options["chains"] or options["batch_size"]
    layers = {name: (count,) + tuple(info["shape"]) for name, info in compiled.layers.items()}
    fitted = fit_arrays(path, chains, layers, compiled.dtype, _chain, f"model {compiled.model.name}'s layers",
                     "the trainer keeps", complete=False)
    inputs = {name for name, info in compiled.layers.items() if info["role"] == "input"}
    if chains and set(chains) != set(compiled.kept) and not set(chains) <= set(compiled.marginalised) | inputs:
        kept, summed = ", ".join(sorted(compiled.kept)), ", ".join(sorted(compiled.marginalised))
        raise DSLError(f"checkpoint {path}: the chains hold layers {', '.join(sorted(chains))}: the trainer keeps "
                       f"either {kept} or some of {summed}")
    return fitted


def fit_activity(path, activity: dict, compiled) -> dict:
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
    return fit_arrays(path, numbers(path, arrays, "", label), shapes, compiled.dtype, label,
                   f"model {compiled.model.name}'s binary hidden layers with a bias", "the trainer keeps",
                   complete=False)


def embedded_files(path, members: dict, source: str) -> tuple:
    """The embedded files, checked: the main file first and equal to `source`, every import pointing at one of them."""
    try:
        document = json.loads(text_member(path, members, "files"))
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


def standardization_arrays(path, members: dict) -> dict | None:
    """{"mean": {layer: array}, "scale": {layer: array}} as stored (real numbers), or None when there are none."""
    found = {part: numbers(path, members, f"standardize/{part}/", _standardized(part)) for part in ("mean", "scale")}
    return found if any(found.values()) else None


def _standardized(part: str):
    def label(layer: str) -> str:
        return f"standardisation '{part}' of layer '{layer}' (standardize/{part}/{layer})"

    return label


def fit_standardization(path, stored: dict | None, model):
    """The stored standardisation checked against `model`, as a runtime.standardize.Standardization (or None).

    A mean and a scale for each layer, only for observed layers whose units
    take real values (standardize.standardized_shapes: a sequence model's
    past too, holding its frame layer's transform for each past frame),
    shaped as one row of the layer, finite, and every scale positive: a zero scale would divide by
    zero for every later row, a negative one would mirror the data.
    """
    if stored is None:
        return None
    mean, scale = stored["mean"], stored["scale"]
    if set(mean) != set(scale):
        unpaired = sorted(set(mean) ^ set(scale))
        raise DSLError(f"checkpoint {path}: the standardisation of layer {', '.join(unpaired)} lacks its mean or "
                       "its scale (standardize/mean/LAYER and standardize/scale/LAYER come in pairs)")
    shapes = standardized_shapes(model)
    whose = f"model {model.name}'s observed real-valued layers"
    shaped = f"model {described(model.name, model.arguments)} declares"
    fitted = {part: fit_arrays(path, stored[part], shapes, np.float64, _standardized(part), whose, shaped,
                               complete=False) for part in ("mean", "scale")}
    for layer, value in fitted["scale"].items():
        if not np.all(value > 0):
            raise DSLError(f"checkpoint {path}: {_standardized('scale')(layer)} holds values <= 0 (a scale is a "
                           "positive standard deviation)")
    standardization = Standardization(fitted["mean"], fitted["scale"], conditioned_layers(model, fitted["mean"]))
    mismatch = frames_mismatch(standardization, model)
    if mismatch:
        raise DSLError(f"checkpoint {path}: the standardisation does not fit sequence model {model.name}: {mismatch}")
    return standardization


def fit_velocity(path, velocity: dict, params: dict, compiled) -> dict:
    """The momentum of every parameter, shaped as the parameter and finite."""
    model = compiled.model
    return fit_arrays(path, velocity, {name: value.shape for name, value in params.items()}, compiled.dtype,
                      momentum, f"model {model.name}'s parameters", f"model {described(model.name, model.arguments)} declares")
