"""A training run as `pgmdsl train` makes it: model sized to the data, split, metrics and pictures.

Kept apart from the argument parsing in cli.py so the same steps can be
used (and tested) from Python. A run directory holds model.npz (the
checkpoint), metrics.csv and metrics.json (the history), and, with
matplotlib, weights.png, samples.png and curves.png. A sequence model's run
(runtime.sequences) trains on windows cut from sequences and also holds
seed-frames.npy (the frames `pgmdsl sample --frames` starts from) and
generated.png. Evidence for sampling (clamped layers, inpainting masks)
comes in the data's units and is checked here, so every mistake in it is
one line.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from . import units
from .errors import DataError, DSLError
from .loading import load
from .runtime import recipes

# The default recipe's learning rates (runtime.recipes keeps every default of `pgmdsl train` in one place).
DEFAULT_LR = recipes.DEFAULT_LR
REAL_VALUED_LR = recipes.REAL_VALUED_LR
default_lr = recipes.default_lr


def fit_visible(name, sizes: dict, columns: int, labels: str | None = None):
    """The model loaded with `sizes`, its observed layer sized to `columns` values per row.

    labels: a one-hot visible layer that takes the data's class labels; the
    one other observed layer takes the rows. When the layer's size differs
    and exactly one header size the user did not give controls it (rbm's
    nv), that size is solved for and set; the note returned says so (None
    when nothing changed). Otherwise a DSLError says which sizes to --set.
    """
    model = load(name, **sizes)
    if model.stack and labels is not None:
        raise DSLError(f"--labels {labels}: model {model.name} is a stack; its levels take no class labels (see "
                       "pgmdsl.sklearn.DBNClassifier for a DBN classifier)")
    if labels is not None:
        label_layer(model, labels)
    observed = [layer for layer in bottom(model).layers if layer.role in ("visible", "input") and layer.name != labels]
    if len(observed) != 1:
        names = ", ".join(layer.name for layer in observed)
        besides = f" besides its labels in {labels}" if labels else ""
        raise DSLError(f"model {model.name} observes {len(observed)} layers ({names}){besides}; `pgmdsl train` takes "
                       "one array of rows (and class labels for a one-hot layer with --labels LAYER): train it from "
                       "Python with a dict of arrays")
    return _sized(name, sizes, model, observed[0], columns, "row")


def fit_frames(name, sizes: dict, channels: int):
    """A sequence model loaded with `sizes`, its frame layer sized to `channels` values per frame.

    As fit_visible, for a model with an input layer of past frames beside
    its frame layer (runtime.sequences): sizing the frame (crbm's nv) sizes
    the past too. A model of another structure is a DSLError saying so.
    """
    from .runtime.sequences import sequence_structure

    model = load(name, **sizes)
    structure = sequence_structure(model)
    if structure is None:
        raise DSLError(f"model {model.name} is not a sequence model (one input layer of past frames, shaped "
                       "(order,) + the frame, beside one visible frame layer): its data are rows, not sequences")
    return _sized(name, sizes, model, model.layer(structure[1]), channels, "frame")


def bottom(model):
    """The model whose visible layer takes the data: the model itself, or a stack's bottom level."""
    return model.stack[0] if model.stack else model


def _sized(name, sizes: dict, model, layer, columns: int, per: str):
    """(model, note): `model`, or it reloaded with the one free size that gives `layer` `columns` units."""
    if layer.size == columns:
        return model, None
    mismatch = f"the data has {columns} values per {per} but layer {layer.name} of {model.name} has {layer.size} units"
    controlling = {a: p for a in model.ir.arguments if (p := _power(name, model, sizes, a, layer.name))}
    given = [a for a in controlling if a in sizes]
    free = [a for a in controlling if a not in sizes]
    tried, fits = "", []
    for argument in free:  # one size at a time, the others at their defaults (conv_rbm: NV, with C = 1)
        value = _solve(model.sizes[argument], layer.size, controlling[argument], columns)
        if value is None:
            continue
        try:
            fitted = load(name, **{**sizes, argument: value})
        except DSLError as error:
            tried += f" ({argument}={value} would fit but: {error.message})"
            continue
        if bottom(fitted).layer(layer.name).size == columns:
            fits.append((argument, value, fitted))
    if len(fits) == 1:
        argument, value, fitted = fits[0]
        return fitted, f"set {argument}={value} from the data ({columns} values per {per})"
    if len(fits) > 1:
        choices = " or ".join(f"--set {argument}={value}" for argument, value, _ in fits)
        raise DSLError(f"{mismatch}; more than one size fits the data: {choices}")
    if given and not free:
        settings = " ".join(f"--set {a}={sizes[a]}" for a in given)
        raise DSLError(f"{mismatch} ({settings}); change or drop that setting")
    hint = f"set {' or '.join(controlling)} with --set" if controlling else "check the model's sizes"
    if tried and controlling:
        hint += ", and change the sizes the failure names to fit"
    raise DSLError(f"{mismatch}, and no single size can be solved from the data{tried}: {hint}")


def label_layer(model, name: str):
    """The layer that takes class labels: a visible one-hot layer with one axis (its classes)."""
    layer = next((layer for layer in model.layers if layer.name == name), None)
    if layer is None:
        known = ", ".join(layer.name for layer in model.layers)
        raise DSLError(f"--labels {name}: model {model.name} has no such layer (its layers: {known})")
    if layer.role != "visible" or layer.unit is None or not units.get(layer.unit).event_axes or len(layer.shape) != 1:
        raise DSLError(f"--labels {name}: labels go in a visible one-hot layer with one axis; '{name}' is a "
                       f"{layer.role} {layer.unit} layer of shape {layer.shape}")
    return layer


def _power(name, model, sizes: dict, argument: str, layer: str) -> float | None:
    """How the layer's size grows with `argument` (1 for nv, 2 for an image side), or None if it does not."""
    value = model.sizes[argument]
    before = bottom(model).layer(layer).size
    if value <= 0 or before <= 0:
        return None
    for probe in (2 * value, value + 1):
        try:
            after = bottom(load(name, **{**sizes, argument: probe})).layer(layer).size
        except DSLError:
            continue
        if after != before:
            return math.log(after / before) / math.log(probe / value) if after > 0 else None
        return None
    return None


def _solve(value: int, size: int, power: float, columns: int) -> int | None:
    """The value of a size parameter giving `columns` units, if size grows as value**power."""
    if power <= 0 or value <= 0:
        return None
    solved = round(value * (columns / size) ** (1.0 / power))
    return solved if solved > 0 else None


def split(data, fraction: float, seed: int = 0):
    """(training rows, validation rows or None): a seeded random `fraction` of the rows held out.

    data: an array, or a dict of arrays with the same rows (split alike).
    """
    if not 0.0 <= fraction < 1.0:
        raise DSLError(f"--validation-fraction must be in [0, 1), got {fraction}")
    rows = row_count(data)
    held = int(round(fraction * rows))
    if held == 0:
        return data, None
    if held >= rows:
        raise DSLError(f"holding out {held} of {rows} rows leaves none to train on")
    order = np.random.default_rng(seed).permutation(rows)

    def take(index):
        return {k: v[index] for k, v in data.items()} if isinstance(data, dict) else data[index]

    return take(order[held:]), take(order[:held])


def row_count(data) -> int:
    """Rows of an array, or of a dict of arrays with the same rows; 0 for None."""
    if data is None:
        return 0
    return len(next(iter(data.values()))) if isinstance(data, dict) else len(data)


def write_metrics(history, run_dir, info: dict | None = None) -> tuple[Path, Path]:
    """metrics.csv (one row per epoch) and metrics.json ({**info, "history": [...]}) in run_dir."""
    from .runtime.train import History

    run_dir = Path(run_dir)
    rows = [dict(row) for row in history]
    table = History(rows).to_csv(run_dir / "metrics.csv")
    document = run_dir / "metrics.json"
    document.write_text(json.dumps({**(info or {}), "history": rows}, indent=2) + "\n", encoding="utf-8")
    return table, document


def visible_samples(compiled, n: int = 64, steps: int = 1000, seed: int = 0, means: bool = False,
                    layer: str | None = None, clamp: dict | None = None, hmc: bool = False) -> np.ndarray:
    """n draws of a visible layer after `steps` Gibbs sweeps from random states (host array, rows first).

    layer: which visible layer (needed when there are several). means=True
    gives the layer's conditional means given the last state instead of the
    draws: for binary units, probabilities, which show a sample's shape with
    less noise. clamp: {layer: rows} held fixed through the sweeps (the
    evidence: one row for every chain or n rows, checked by `clamp_rows`);
    every input layer must be among them, and at least one visible layer
    must not. hmc: jointly drawn Gaussian layers by hybrid Monte Carlo (Compiled.sample). A model trained on
    standardised rows (`compiled.standardization`) takes its clamped rows, and gives its samples back, in the data's units.
    """
    clamp = dict(clamp or {})
    name = compiled.model.name
    visible = [other for other, info in compiled.layers.items() if info["role"] == "visible" and other not in clamp]
    if layer is not None:
        if layer in clamp:
            raise DSLError(f"layer '{layer}' of {name} is clamped: it cannot also be the layer sampled")
        if layer not in visible:
            known = ", ".join(visible) or "none"
            raise DSLError(f"model {name} has no visible layer '{layer}' to sample (it has {known})")
        visible = [layer]
    if not visible:
        raise DSLError(f"clamping {', '.join(clamp)} leaves no visible layer of {name} to sample: clamp "
                       "other layers than the one whose samples you want")
    if len(visible) != 1:
        raise DSLError(f"model {name} has {len(visible)} visible layers ({', '.join(visible)}); sample it from "
                       "Python, or clamp all but one")
    inputs = [other for other, info in compiled.layers.items() if info["role"] == "input" and other not in clamp]
    if inputs:
        raise DSLError(f"model {name} is conditioned on {', '.join(inputs)}: give its rows (clamp=; on the "
                       f"command line --clamp {inputs[0]}=FILE.npy)")
    standardization = compiled.standardization
    if standardization is not None:
        clamp = standardization.apply(clamp)
    state = compiled.sample(n, steps=steps, seed=seed, clamp=clamp, hmc=hmc)
    values = to_host(compiled.mean(visible[0], state) if means else state[visible[0]])
    return values if standardization is None else standardization.undo(visible[0], values)


def clamp_rows(compiled, layer: str, values, option: str = "--clamp") -> np.ndarray:
    """The rows to clamp `layer` to, (R, ...layer shape), from one row or R rows (flat or shaped), checked.

    Why here and not in sample: the command line reads the rows from a
    file, so every way they can be wrong (an unknown or derived layer, a
    shape that is neither one row nor rows, values outside the units'
    support) gets one line naming the option and the layer.
    """
    info = compiled.layers.get(layer)
    if info is None or info["role"] == "pooled":
        known = ", ".join(n for n, i in compiled.layers.items() if i["role"] != "pooled")
        what = "no such layer" if info is None else "a pooled layer, derived from its detection layer"
        raise DSLError(f"{option} {layer}: model {compiled.model.name} has {what} (its layers: {known})")
    rows = layer_rows(compiled, layer, values, f"{option} {layer}")
    unit = units.get(info["unit"]) if info["unit"] is not None else None
    if unit is not None:
        unit.check_data(rows, layer)
    elif not np.all(np.isfinite(rows)):
        raise DataError(f"{option} {layer}: the rows contain NaN or infinite values")
    return rows


def layer_rows(compiled, layer: str, values, what: str) -> np.ndarray:
    """(R, ...layer shape) float64 rows of `layer` from R rows or one row, each of any shape with the layer's size.

    Why any shape: a 16-unit layer drawn as 4 x 4 takes a 4 x 4 mask or
    image as readily as 16 flat values. An array whose axes after the
    first hold one row's values is R rows; otherwise one of the layer's size
    is one row; anything else is a DataError naming both shapes.
    """
    return _rows_of(values, tuple(compiled.layers[layer]["shape"]), what)


def _rows_of(values, shape: tuple, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    size = math.prod(shape)
    if array.ndim >= 2 and len(array) > 0 and math.prod(array.shape[1:]) == size:
        return array.reshape((len(array),) + shape)
    if array.size == size:
        return array.reshape((1,) + shape)
    raise DataError(f"{what}: an array of shape {array.shape}; the layer takes one row of shape {shape} (or "
                    f"{size} values) or rows (R, {', '.join(map(str, shape))})")


def rows_for(count: int, n: int | None, what: str) -> int:
    """How many chains to run for `count` given rows: n (one row repeated, or n rows), or count if n is None."""
    if n is None:
        return count if count > 1 else 64
    if count not in (1, n):
        raise DSLError(f"{what} holds {count} rows and -n is {n}: give one row (repeated) or -n {count}")
    return n


def inpaint_layer(compiled, layer: str | None = None) -> str:
    """The visible layer to inpaint: `layer`, the only visible layer, or the one image among several."""
    from . import plots

    visible = [name for name, info in compiled.layers.items() if info["role"] == "visible"]
    inputs = [name for name, info in compiled.layers.items() if info["role"] == "input"]
    if inputs:
        raise DSLError(f"--inpaint: model {compiled.model.name} is conditioned on {', '.join(inputs)}; inpainting "
                       "takes a model without input layers (clamp them with --clamp and sample instead)")
    if layer is not None:
        if layer not in visible:
            raise DSLError(f"--inpaint {layer}=...: model {compiled.model.name} has no such visible layer "
                           f"(it has {', '.join(visible)})")
        return layer
    if len(visible) == 1:
        return visible[0]
    image = plots.visible_image(compiled)
    if image is None:
        raise DSLError(f"--inpaint: model {compiled.model.name} has visible layers {', '.join(visible)}: name one, "
                       "--inpaint LAYER=FILE.npy")
    return image[0]


def known_mask(mask, rows: np.ndarray, what: str = "--mask") -> np.ndarray:
    """The boolean mask (True = known) for `rows`: bool, or numbers that are all 0 or 1; one row or each row's."""
    array = np.asarray(mask)
    if array.dtype.kind not in "biuf":
        raise DataError(f"{what}: holds {array.dtype} values; a mask is boolean (True or 1 = known)")
    if array.dtype.kind != "b":
        if not np.all((array == 0) | (array == 1)):
            bad = array[~((array == 0) | (array == 1))].flat[0]
            raise DataError(f"{what}: holds {bad:g}; a mask is boolean: 1 (or True) = known, 0 = to sample")
        array = array.astype(bool)
    shape = rows.shape[1:]
    try:
        known = _rows_of(array, shape, what).astype(bool)
    except DataError:
        raise DataError(f"{what}: an array of shape {array.shape}; it must match the rows ({rows.shape}) or one "
                        f"row {shape}") from None
    if len(known) not in (1, len(rows)):
        raise DataError(f"{what}: {len(known)} rows of mask for {len(rows)} rows of values; give one or {len(rows)}")
    return np.broadcast_to(known, rows.shape).copy()


def inpaint(compiled, layer: str, values: np.ndarray, known: np.ndarray, steps: int = 1000,
            seed: int = 0) -> np.ndarray:
    """Rows of `layer` with the `known` units kept and the others sampled given them (data units in and out).

    values: (R, ...shape) in the data's units; what the unknown units hold is
    ignored (NaN is fine): they start from random draws of the unit type, so
    no placeholder leaks into the first sweep. Only the known values are
    checked against the units' support.
    """
    info = compiled.layers[layer]
    unit = units.get(info["unit"])
    rng = np.random.default_rng(seed)
    start = np.asarray(unit.initial(values.shape, rng, np), dtype=np.float64)
    filled = np.where(known, values, start)
    unit.check_data(filled, layer)
    standardization = compiled.standardization
    model_units = standardization.apply({layer: filled})[layer] if standardization is not None else filled
    result = to_host(compiled.inpaint(layer, model_units, known, steps=steps, seed=seed))
    result = standardization.undo(layer, result) if standardization is not None else result
    return np.where(known, values, result)


# ---- sequences ----

SEED_FRAMES = "seed-frames.npy"  # in a run directory: the frames `pgmdsl sample --frames` starts from


def split_sequences(sequences: np.ndarray, fraction: float, order: int):
    """(training sequences, validation sequences or None), (S, T, ...) each, by whole sequences or by time.

    Why not `split`: windows of one sequence share frames, so a random split
    of windows would validate on frames seen in training. With S > 1 the
    last max(1, round(fraction * S)) sequences are held out; with one, its
    last round(fraction * windows) windows, whose part starts `order` frames
    earlier (their past).
    """
    if not 0.0 <= fraction < 1.0:
        raise DSLError(f"--validation-fraction must be in [0, 1), got {fraction}")
    count, frames = sequences.shape[:2]
    if fraction == 0:
        return sequences, None
    if count > 1:
        held = max(1, int(round(fraction * count)))
        if held >= count:
            raise DSLError(f"holding out {held} of {count} sequences leaves none to train on")
        return sequences[:count - held], sequences[count - held:]
    windows = frames - order
    held = int(round(fraction * windows))
    if held == 0:
        return sequences, None
    if held >= windows:
        raise DSLError(f"holding out {held} of the {windows} windows of the sequence leaves none to train on")
    return sequences[:, :frames - held], sequences[:, frames - held - order:]


def as_frames(compiled, sequences: np.ndarray, what: str = "--data") -> np.ndarray:
    """(S, T, C) sequences as (S, T, ...frame shape) for a sequence model, or a DataError naming the mismatch."""
    _, frame = _sequence_layers(compiled)
    shape = tuple(compiled.layers[frame]["shape"])
    if sequences.shape[-1] != math.prod(shape):
        raise DataError(f"{what}: frames of {sequences.shape[-1]} values; layer '{frame}' of {compiled.model.name} "
                        f"takes {math.prod(shape)}")
    return sequences.reshape(sequences.shape[:-1] + shape)


def sequence_windows(compiled, sequences: np.ndarray, what: str = "--data") -> dict:
    """The (past, frame) windows of raw (S, T, C) sequences, standardised as the run is (before cutting)."""
    from .runtime.initialize import check_budget

    past, frame = _sequence_layers(compiled)
    order = compiled.layers[past]["shape"][0]
    count, length = sequences.shape[:2]
    if length <= order:
        raise DataError(f"{what}: sequences of {length} frames; model {compiled.model.name} (order {order}) needs "
                        f"at least order + 1 = {order + 1} for a window")
    size = math.prod(compiled.layers[frame]["shape"])
    check_budget(f"the windows of {count} x {length} frames", count * (length - order) * (order + 1) * size * 8,
                 "use fewer or shorter sequences", DataError)
    frames = as_frames(compiled, sequences, what)
    if compiled.standardization is not None:
        frames = compiled.standardization.apply({frame: frames})[frame]
    return compiled.windows(frames)


def save_seed_frames(compiled, sequences: np.ndarray, run_dir) -> Path:
    """seed-frames.npy in run_dir: the first `order` frames of the first sequence, raw, as plain float64 numbers."""
    past, _ = _sequence_layers(compiled)
    order = compiled.layers[past]["shape"][0]
    path = Path(run_dir) / SEED_FRAMES
    np.save(path, np.ascontiguousarray(sequences[0, :order], dtype=np.float64), allow_pickle=False)
    return path


def seed_frames(compiled, array, what: str) -> np.ndarray:
    """Frames to start generation from, checked: (T, C) or (S, T, C) numbers, T >= order, C the frame's size."""
    past, frame = _sequence_layers(compiled)
    order = compiled.layers[past]["shape"][0]
    size = math.prod(compiled.layers[frame]["shape"])
    array = np.asarray(array)
    if array.dtype.kind not in "biuf" or array.ndim not in (2, 3) or array.shape[-1] != size or array.shape[-2] < order:
        raise DataError(f"{what}: an array of {array.dtype} values and shape {array.shape}; seed frames are numbers "
                        f"of shape (T, {size}) or (S, T, {size}) with T >= order = {order}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise DataError(f"{what}: the seed frames contain NaN or infinite values")
    return array


def load_seed_frames(compiled, run_dir) -> np.ndarray:
    """The seed frames a run stored (seed-frames.npy), read as untrusted data and checked against the model."""
    from .runtime.datasets import load_array

    path = Path(run_dir) / SEED_FRAMES
    if not path.is_file():
        raise DSLError(f"{run_dir} holds no {SEED_FRAMES} (written by pgmdsl train for a sequence model): give "
                       "--seed-frames FILE.npy with at least `order` frames")
    return seed_frames(compiled, load_array(path, str(path)), str(path))


def generate_frames(compiled, n_frames: int, seeds: np.ndarray, gibbs_steps: int = 30, mean_field: bool = True,
                    seed: int = 0) -> np.ndarray:
    """n_frames frames after raw seed frames ((T, C) or (S, T, C)), in the data's units: the run's
    standardisation is applied to the seeds and undone for the frames."""
    from .runtime.initialize import check_budget

    _, frame = _sequence_layers(compiled)
    sequences = seeds.shape[0] if seeds.ndim == 3 else 1
    check_budget(f"{sequences} x {n_frames} generated frames", sequences * n_frames * seeds.shape[-1] * 8,
                 "generate fewer frames", DSLError)
    frames = as_frames(compiled, seeds, "seed frames")
    standardization = compiled.standardization
    if standardization is not None:
        frames = standardization.apply({frame: frames})[frame]
    out = compiled.generate(n_frames, frames, gibbs_steps=gibbs_steps, mean_field=mean_field, seed=seed)
    out = standardization.undo(frame, out) if standardization is not None else np.asarray(out)
    return out.reshape(out.shape[:-len(compiled.layers[frame]["shape"])] + (-1,))


def _sequence_layers(compiled) -> tuple[str, str]:
    from .runtime.sequences import sequence_layers

    return sequence_layers(compiled)


def to_host(values) -> np.ndarray:
    """A backend array (numpy, or cupy on the GPU) as a numpy array."""
    return np.asarray(values.get() if hasattr(values, "get") and not isinstance(values, np.ndarray) else values)


# The evaluation's per-row log-densities (pgmdsl.evaluate.report): each moves by the log-Jacobian of a standardisation.
LOG_DENSITIES = ("log_likelihood", "log_likelihood_lower_bound", "pseudo_log_likelihood", "raise_log_likelihood",
                 "raise_rows_log_likelihood")


def in_data_units(result: dict, standardization) -> dict:
    """An evaluation of standardised rows with its log-densities in the data's own units.

    log p(x) = log p(z) - sum(log scale) for a row x and its standardised z,
    so each per-row log-likelihood (and pseudo-log-likelihood, whose
    conditionals move alike) drops by `standardization.log_jacobian`. log Z
    and the reconstruction errors stay those of the standardised model and rows.
    """
    shift = standardization.log_jacobian
    return {name: {key: value - shift if key in LOG_DENSITIES else value for key, value in metrics.items()}
            if name != "log_z" else metrics for name, metrics in result.items()}


GENERATED_FRAMES = 200  # generated.png: ten periods of the oscillators' fast motion


def save_pictures(compiled, history, run_dir, steps: int = 1000, seed: int = 0,
                  seeds: np.ndarray | None = None, rows: dict | None = None) -> tuple[list[Path], list[str]]:
    """weights.png, samples.png and curves.png in run_dir where they make sense; (written, notes on the rest).

    A sequence model given `seeds` (raw seed frames) gets generated.png: its
    channels over GENERATED_FRAMES frames generated after them. A model with
    input layers gets no samples.png: its samples need their rows. Given the
    training `rows`, activations.png: a histogram of each hidden layer's
    conditional means on them (plots.save_activations).
    """
    from . import plots
    from .runtime.sequences import sequence_structure

    run_dir = Path(run_dir)
    if not plots.have_matplotlib():
        return [], ["no pictures: matplotlib is not installed (pip install 'pgmdsl[plot]')"]
    written, notes = [], []
    image = plots.visible_image(compiled)
    tiles = plots.weight_tiles(compiled)
    if tiles is None:
        why = "its visible layer is not an image" if image is None else "no weight matrix joins it to a hidden layer"
        notes.append(f"no weights.png: {why}")
    else:
        title = f"weights of {compiled.model.name} ({len(tiles)} hidden units or filters)"
        written.append(plots.save_tiles(tiles, run_dir / "weights.png", title, diverging=True))
    inputs = [name for name, info in compiled.layers.items() if info["role"] == "input"]
    if image is None:
        notes.append("no samples.png: the visible layer is not an image")
    elif inputs:
        notes.append(f"no samples.png: {compiled.model.name} is conditioned on {', '.join(inputs)}")
    else:
        name, shape = image
        samples = visible_samples(compiled, 64, steps, seed, means=True, layer=name)
        written.append(plots.save_tiles(samples.reshape((-1,) + shape), run_dir / "samples.png",
                                        f"{name} after {steps} Gibbs steps (probabilities)"))
    if sequence_structure(compiled) is not None and seeds is not None:
        frames = generate_frames(compiled, GENERATED_FRAMES, seeds, seed=seed)
        title = f"{compiled.model.name}: {GENERATED_FRAMES} frames generated after {len(seeds)} seed frames"
        written.append(plots.save_channels(np.concatenate([seeds, frames]), run_dir / "generated.png", title,
                                           seeded=len(seeds)))
    if rows is not None:
        activations = plots.hidden_activations(compiled, rows)
        shown = min(row_count(rows), plots.ACTIVATION_ROWS)
        written.append(plots.save_activations(activations, run_dir / "activations.png",
                                              f"hidden activations of {compiled.model.name} on {shown} training rows"))
    written.append(plots.save_curves(history, run_dir / "curves.png", f"training {compiled.model.name}"))
    return written, notes
