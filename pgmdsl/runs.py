"""A training run as `pgmdsl train` makes it: model sized to the data, split, metrics and pictures.

Kept apart from the argument parsing in cli.py so the same steps can be
used (and tested) from Python. A run directory holds model.npz (the
checkpoint), metrics.csv and metrics.json (the history), and, with
matplotlib, weights.png, samples.png and curves.png.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from . import units
from .errors import DSLError
from .loading import load

# --lr when none is given. Binary and other bounded units train well at 0.05. Units with a quadratic energy
# (Gaussian-like) diverge there: gbrbm by PCD-1 (batch 10) on standardised digits diverges at 0.05 and 0.02, and
# at 0.01 some seeds blow a variance up to exp(27); at 0.005 it trained with 16 to 1000 hidden units for 20 to 100
# epochs, every seed tried (raw digits too up to 400 hidden units), with the best held-out log-likelihood of
# the rates tried (0.002 to 0.02, and 0.01 with a tenth of it for log_sigma).
DEFAULT_LR = 0.05
REAL_VALUED_LR = 0.005


def default_lr(model) -> float:
    """The learning rate `pgmdsl train` uses without --lr: REAL_VALUED_LR if an observed layer's energy is quadratic."""
    quadratic = any(layer.role in ("visible", "input") and layer.unit is not None and units.get(layer.unit).quadratic
                    for layer in model.layers)
    return REAL_VALUED_LR if quadratic else DEFAULT_LR


def fit_visible(name, sizes: dict, columns: int, labels: str | None = None):
    """The model loaded with `sizes`, its observed layer sized to `columns` values per row.

    labels: a one-hot visible layer that takes the data's class labels; the
    one other observed layer takes the rows. When the layer's size differs
    and exactly one header size the user did not give controls it (rbm's
    nv), that size is solved for and set; the note returned says so (None
    when nothing changed). Otherwise a DSLError says which sizes to --set.
    """
    model = load(name, **sizes)
    if model.stack:
        raise DSLError(f"model {model.name} is a stack: train its models one by one from Python (model.stack)")
    if labels is not None:
        label_layer(model, labels)
    observed = [layer for layer in model.layers if layer.role in ("visible", "input") and layer.name != labels]
    if len(observed) != 1:
        names = ", ".join(layer.name for layer in observed)
        besides = f" besides its labels in {labels}" if labels else ""
        raise DSLError(f"model {model.name} observes {len(observed)} layers ({names}){besides}; `pgmdsl train` takes "
                       "one array of rows (and class labels for a one-hot layer with --labels LAYER): train it from "
                       "Python with a dict of arrays")
    layer = observed[0]
    if layer.size == columns:
        return model, None
    mismatch = f"the data has {columns} values per row but layer {layer.name} of {model.name} has {layer.size} units"
    controlling = {a: p for a in model.ir.arguments if (p := _power(name, model, sizes, a, layer.name))}
    given = [a for a in controlling if a in sizes]
    free = [a for a in controlling if a not in sizes]
    tried = ""
    if len(free) == 1:
        argument = free[0]
        value = _solve(model.sizes[argument], layer.size, controlling[argument], columns)
        if value is not None:
            try:
                fitted = load(name, **{**sizes, argument: value})
            except DSLError as error:
                fitted, tried = None, f" ({argument}={value} would fit but: {error.message})"
            if fitted is not None and fitted.layer(layer.name).size == columns:
                return fitted, f"set {argument}={value} from the data ({columns} values per row)"
    if given and not free:
        settings = " ".join(f"--set {a}={sizes[a]}" for a in given)
        raise DSLError(f"{mismatch} ({settings}); change or drop that setting")
    hint = f"set {' or '.join(controlling)} with --set" if controlling else "check the model's sizes"
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
    before = model.layer(layer).size
    if value <= 0 or before <= 0:
        return None
    for probe in (2 * value, value + 1):
        try:
            after = load(name, **{**sizes, argument: probe}).layer(layer).size
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
    run_dir = Path(run_dir)
    rows = [dict(row) for row in history]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    table = run_dir / "metrics.csv"
    with open(table, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    document = run_dir / "metrics.json"
    document.write_text(json.dumps({**(info or {}), "history": rows}, indent=2) + "\n", encoding="utf-8")
    return table, document


def visible_samples(compiled, n: int = 64, steps: int = 1000, seed: int = 0, means: bool = False,
                    layer: str | None = None) -> np.ndarray:
    """n draws of a visible layer after `steps` Gibbs sweeps from random states (host array, rows first).

    layer: which visible layer (needed when there are several). means=True
    gives the layer's conditional means given the last state instead of the
    draws: for binary units, probabilities, which show a sample's shape with
    less noise. A model trained on standardised rows (`compiled.standardization`)
    gives its samples back in the data's units.
    """
    visible = [name for name, info in compiled.layers.items() if info["role"] == "visible"]
    if layer is not None:
        if layer not in visible:
            raise DSLError(f"model {compiled.model.name} has no visible layer '{layer}' (it has {', '.join(visible)})")
        visible = [layer]
    if len(visible) != 1:
        raise DSLError(f"model {compiled.model.name} has {len(visible)} visible layers; sample it from Python")
    inputs = [name for name, info in compiled.layers.items() if info["role"] == "input"]
    if inputs:
        raise DSLError(f"model {compiled.model.name} is conditioned on {', '.join(inputs)}: "
                       "sample it from Python, giving the inputs as clamp={...}")
    state = compiled.sample(n, steps=steps, seed=seed)
    values = compiled.mean(visible[0], state) if means else state[visible[0]]
    values = np.asarray(values.get() if hasattr(values, "get") and not isinstance(values, np.ndarray) else values)
    standardization = compiled.standardization
    return values if standardization is None else standardization.undo(visible[0], values)


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


def save_pictures(compiled, history, run_dir, steps: int = 1000, seed: int = 0) -> tuple[list[Path], list[str]]:
    """weights.png, samples.png and curves.png in run_dir where they make sense; (written, notes on the rest)."""
    from . import plots

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
        written.append(plots.save_tiles(tiles, run_dir / "weights.png", title, scale_each=True))
    if image is None:
        notes.append("no samples.png: the visible layer is not an image")
    else:
        name, shape = image
        samples = visible_samples(compiled, 64, steps, seed, means=True, layer=name)
        written.append(plots.save_tiles(samples.reshape((-1,) + shape), run_dir / "samples.png",
                                        f"{name} after {steps} Gibbs steps (probabilities)"))
    written.append(plots.save_curves(history, run_dir / "curves.png", f"training {compiled.model.name}"))
    return written, notes
