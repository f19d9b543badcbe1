"""Pictures of a training run: weights and samples as image tiles, training curves.

matplotlib is an extra (pip install 'pgmdsl[plot]'), so it is imported only
when a picture is drawn. Figures are built with matplotlib.figure.Figure and
saved through the Agg canvas, never through pyplot: that needs no display and
leaves the backend of a user's own session (a notebook, say) untouched.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np

from . import units
from .runtime.datasets import image_shape
from .runtime.gpu import to_host as _host


def have_matplotlib() -> bool:
    """Whether the pictures can be drawn (matplotlib is importable)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise RuntimeError("drawing PNG needs matplotlib: pip install 'pgmdsl[plot]'") from None
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def visible_image(compiled) -> tuple[str, tuple[int, int]] | None:
    """The visible layer that is an image and the (height, width) its rows are drawn as, or None.

    A layer [H, W] or [1, H, W] is drawn as it is; a flat layer of n units is
    drawn as a square when n is one (64 -> 8x8, 784 -> 28x28). With several
    visible layers (a classification RBM's pixels and label), the one image
    among those that are not one-hot; None when there is none or more than one.
    A sequence model's flat frame layer holds channels, not pixels: not an image.
    """
    from .runtime.sequences import sequence_structure

    structure = sequence_structure(compiled)
    if structure is not None and len(compiled.layers[structure[1]]["shape"]) == 1:
        return None
    images = [(name, _image(tuple(info["shape"]))) for name, info in compiled.layers.items()
              if info["role"] == "visible" and not units.get(info["unit"]).event_axes]  # categoricals are labels
    images = [(name, shape) for name, shape in images if shape is not None]
    return images[0] if len(images) == 1 else None


def _image(shape: tuple[int, ...]) -> tuple[int, int] | None:
    if len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) == 2 and min(shape) > 1:
        return shape
    if len(shape) == 1:
        return image_shape(shape[0])
    return None


def weight_tiles(compiled) -> np.ndarray | None:
    """Each hidden unit's weights to the visible layer as an image: (units, height, width), or None.

    The weights are the parameter of an energy term that joins the visible
    layer to a hidden one: a matrix [visible, hidden] (or transposed), or
    convolution filters [K, 1, r, s]. None when the visible layer is not an
    image or no such parameter exists.
    """
    found = visible_image(compiled)
    if found is None:
        return None
    visible, shape = found
    size = math.prod(compiled.layers[visible]["shape"])
    for weights, hidden_sizes in _couplings(compiled, visible):
        if weights.ndim == 2 and weights.shape[0] == size and weights.shape[1] in hidden_sizes:
            return weights.T.reshape((-1,) + shape)
        if weights.ndim == 2 and weights.shape[1] == size and weights.shape[0] in hidden_sizes:
            return weights.reshape((-1,) + shape)
        if weights.ndim == 4 and weights.shape[1] == 1:
            return weights[:, 0]
    return None


def _couplings(compiled, visible: str):
    """(a parameter's values, float64 on the host; the sizes of the hidden layers its term joins) for every
    parameter of a term joining `visible` to a hidden layer, in the factor graph's order."""
    graph = compiled.model.graph
    hidden = {name for name, info in compiled.layers.items() if info["role"] == "hidden"}
    for node in graph.neighbors(("layer", visible)):
        layers = {n[1] for n in graph.neighbors(node)} & hidden
        if not layers:
            continue
        sizes = {math.prod(compiled.layers[n]["shape"]) for n in layers}
        for name in graph.nodes[node]["params"]:
            yield np.asarray(_host(compiled.params[name]), dtype=np.float64), sizes


def save_tiles(images, path, title: str = "", limit: int = 100, scale_each: bool = False,
               diverging: bool = False) -> Path:
    """Draw up to `limit` images (n, height, width) as one grid of tiles, to a PNG.

    diverging draws signed values (weights) on one scale centred at 0, a
    diverging colour map from -m to m with m the largest |value| shown, and a
    colour bar: a tile's strength and sign read the same in every tile.
    scale_each stretches every tile to its own min..max; otherwise all tiles
    share one grey scale, 0..1 for values in it.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3 or len(images) == 0:
        raise ValueError(f"save_tiles takes images of shape (n, height, width), got {images.shape}")
    if len(images) > limit:
        title = f"{title} (first {limit} of {len(images)})".strip()
        images = images[:limit]
    figure = _figure(1, 1)
    axes = figure.add_subplot()
    height, width = _draw_tiles(figure, axes, images, title, scale_each, diverging)
    inches = 6.0 / max(height, width)  # the longer side is six inches
    figure.set_size_inches(width * inches + (1.2 if diverging else 0.2), height * inches + 0.5)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return Path(path)


def save_tile_panels(panels, path, title: str = "", limit: int = 100) -> Path:
    """Draw several grids of signed tiles side by side (a convolutional DBN's filters, level by level), to a PNG.

    panels: (images (n, height, width), title) pairs. Each panel has its own diverging scale and colour bar:
    composed higher-level filters are sums of many lower-level ones and would wash out on a shared scale.
    """
    figure = _figure(6.0 * len(panels), 6.5)
    for number, (images, panel_title) in enumerate(panels, start=1):
        images = np.asarray(images, dtype=np.float64)
        if len(images) > limit:
            panel_title, images = f"{panel_title} (first {limit} of {len(images)})", images[:limit]
        _draw_tiles(figure, figure.add_subplot(1, len(panels), number), images, panel_title, False, True)
    return _saved(figure, path, title)


def _saved(figure, path, title: str = "") -> Path:
    """The figure with its overall title, laid out and written to path as a PNG."""
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return Path(path)


def _draw_tiles(figure, axes, images, title: str, scale_each: bool, diverging: bool) -> tuple[int, int]:
    """One grid of tiles on `axes` (see save_tiles for the scales); returns the mosaic's (height, width)."""
    cmap = "gray"
    if diverging:
        bound = float(np.abs(images).max()) or 1.0
        low_value, high_value, cmap = -bound, bound, "RdBu_r"
    elif scale_each:
        low = images.min(axis=(1, 2), keepdims=True)
        span = images.max(axis=(1, 2), keepdims=True) - low
        images = (images - low) / np.where(span > 0, span, 1.0)
        low_value, high_value = 0.0, 1.0
    else:
        low_value, high_value = float(images.min()), float(images.max())
        if low_value >= 0.0 and high_value <= 1.0:
            low_value, high_value = 0.0, 1.0
    mosaic = _mosaic(images, fill=0.0 if diverging else high_value)
    shown = axes.imshow(mosaic, cmap=cmap, vmin=low_value, vmax=high_value, interpolation="nearest")
    axes.set_axis_off()
    if diverging:
        figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.04)
    if title:
        axes.set_title(title, fontsize=10)
    return mosaic.shape


def stack_filters(stack) -> list[np.ndarray] | None:
    """Each level's convolution filters drawn in the input image: (filters, height, width) per level, or None.

    Level 1's are its own (one input channel). A higher level's filter j is, as in Lee et al. (2009)'s figures,
    the combination of the level below's input-space filters it weights: sum over channel i and position r of
    W[j, i, r] times filter i placed at each detector position of pooling unit r (an average over the block,
    the pooling unit standing for whichever detector is on). None unless every level is a convolutional RBM
    (a 4-D filter parameter joining its visible and hidden layers) with one input channel at the bottom.
    """
    filters = [_conv_filters(level) for level in stack.levels]
    if any(f is None for f in filters) or filters[0].shape[1] != 1:
        return None
    composed, stride = [filters[0][:, 0]], (1, 1)
    for below, above in zip(stack.levels, filters[1:]):
        pooling = below.model.layer(_hidden(below)).pooling
        pool = tuple(pooling.block) if pooling else (1, 1)
        lower = composed[-1]
        count, channels, rows, columns = above.shape
        if channels != len(lower) or len(pool) != 2:
            return None
        size = ((pool[0] * rows - 1) * stride[0] + lower.shape[1], (pool[1] * columns - 1) * stride[1] + lower.shape[2])
        image = np.zeros((count,) + size)
        for r, q, a, b in itertools.product(range(rows), range(columns), range(pool[0]), range(pool[1])):
            y, x = (pool[0] * r + a) * stride[0], (pool[1] * q + b) * stride[1]
            image[:, y:y + lower.shape[1], x:x + lower.shape[2]] += np.tensordot(above[:, :, r, q], lower, axes=1)
        composed.append(image / (pool[0] * pool[1]))
        stride = (stride[0] * pool[0], stride[1] * pool[1])
    return composed


def _hidden(level) -> str:
    return next(name for name, info in level.layers.items() if info["role"] == "hidden")


def _conv_filters(level) -> np.ndarray | None:
    """The level's filters [K, C, r, s]: the 4-D parameter of a term joining its visible and hidden layers."""
    visible = next((name for name, info in level.layers.items() if info["role"] == "visible"), None)
    if visible is None:
        return None
    return next((weights for weights, _ in _couplings(level, visible) if weights.ndim == 4), None)


def save_pairs(left, right, path, title: str = "", limit: int = 64,
               names: tuple[str, str] = ("known (unknown grey)", "completed")) -> Path:
    """Draw evidence and results as two grids side by side, image k at the same place in both, to a PNG.

    left, right: (n, height, width) each. Values of `left` that are NaN (the
    units that were sampled) are drawn mid-grey, so what was known stands
    out; both grids share one grey scale, 0..1 for values in it.
    """
    left, right = np.asarray(left, dtype=np.float64), np.asarray(right, dtype=np.float64)
    if left.shape != right.shape or left.ndim != 3 or len(left) == 0:
        raise ValueError(f"save_pairs takes two arrays of one shape (n, height, width), got {left.shape} and "
                         f"{right.shape}")
    if len(left) > limit:
        title = f"{title} (first {limit} of {len(left)})".strip()
        left, right = left[:limit], right[:limit]
    values = np.concatenate([left[np.isfinite(left)], right[np.isfinite(right)]])
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if low >= 0.0 and high <= 1.0:
        low, high = 0.0, 1.0
    mosaics = [_mosaic(np.where(np.isfinite(left), left, (low + high) / 2), fill=high), _mosaic(right, fill=high)]
    height, width = mosaics[0].shape
    inches = 4.0 / max(height, width)
    figure = _figure(2 * width * inches + 0.6, height * inches + 0.8)
    for k, (mosaic, name) in enumerate(zip(mosaics, names)):
        axes = figure.add_subplot(1, 2, k + 1)
        axes.imshow(mosaic, cmap="gray", vmin=low, vmax=high, interpolation="nearest")
        axes.set_axis_off()
        axes.set_title(name, fontsize=9)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return Path(path)


def save_channels(frames, path, title: str = "", seeded: int = 0, limit: int = 16) -> Path:
    """Draw a sequence's channels over time, one trace each (offset, first at the top), to a PNG.

    frames: (T, channels). seeded: how many leading frames were given rather
    than generated; a vertical line marks where generation starts. More
    than `limit` channels: the first `limit` are drawn (the title says so).
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 2 or 0 in frames.shape:
        raise ValueError(f"save_channels takes frames of shape (T, channels), got {frames.shape}")
    if frames.shape[1] > limit:
        title = f"{title} (first {limit} of {frames.shape[1]} channels)".strip()
        frames = frames[:, :limit]
    centred = frames - frames.mean(axis=0)
    spacing = 3.0 * max(float(centred.std(axis=0).max()), 1e-12)
    count = frames.shape[1]
    figure = _figure(8.0, 1.0 + 0.45 * count)
    axes = figure.add_subplot()
    for channel in range(count):
        axes.plot(centred[:, channel] - channel * spacing, linewidth=0.8)
    if 0 < seeded < len(frames):
        axes.axvline(seeded - 0.5, color="grey", linestyle="--", linewidth=0.8)
    axes.set_yticks([-channel * spacing for channel in range(count)], [str(c) for c in range(count)])
    axes.set_xlabel("frame")
    axes.set_ylabel("channel")
    if title:
        axes.set_title(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return Path(path)


def _mosaic(images: np.ndarray, fill: float) -> np.ndarray:
    """The images in a near-square grid, one pixel of `fill` between and around them."""
    count, height, width = images.shape
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    mosaic = np.full((rows * (height + 1) + 1, columns * (width + 1) + 1), fill)
    for k, image in enumerate(images):
        top, left = 1 + (k // columns) * (height + 1), 1 + (k % columns) * (width + 1)
        mosaic[top:top + height, left:left + width] = image
    return mosaic


def save_curves(history, path, title: str = "") -> Path:
    """Reconstruction error, free-energy gap (validation minus training) and every monitored metric (train_ and
    validation_ log-likelihoods, accuracies) by epoch, a panel each, to a PNG."""
    rows = list(history)
    if not rows:
        raise ValueError("save_curves: the history is empty")
    epochs = [row["epoch"] for row in rows]
    panels = [("reconstruction", "reconstruction error (mean squared)")]
    if any(row.get("free_energy_gap") is not None for row in rows):
        panels.append(("free_energy_gap", "free-energy gap (validation - training)"))
    monitored = [key for key in dict.fromkeys(k for row in rows for k in row)
                 if key.endswith(("log_likelihood", "accuracy")) and key.startswith(("train_", "validation_"))]
    panels += [(key, key.replace("_", " ")) for key in monitored]  # every monitored metric, each its own panel
    figure = _figure(5.0 * len(panels), 3.6)
    for k, (key, label) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), k + 1)
        values = [row.get(key) for row in rows]
        axes.plot(epochs, [np.nan if v is None else v for v in values], marker="o", markersize=3)
        if key == "free_energy_gap":
            axes.axhline(0.0, color="grey", linewidth=0.8)
        axes.set_xlabel("epoch")
        axes.set_ylabel(label.split(" (")[0], fontsize=9)
        axes.set_title(label, fontsize=10)
        axes.grid(alpha=0.3)
    return _saved(figure, path, title)


def save_ais_weights(log_weights, path, title: str = "") -> Path:
    """A histogram of the AIS runs' log importance weights, their effective sample size in the title, to a PNG.

    The estimate of Z is the mean of the weights, so it rests on the largest:
    a long right tail, or an effective sample size far below the runs, says
    that a few runs carry it and its error band is not to be trusted (more
    distributions, or more runs, are needed).
    """
    from .evaluate.ais import effective_sample_size

    log_weights = np.asarray(log_weights, dtype=np.float64).ravel()
    if log_weights.size < 2 or not np.all(np.isfinite(log_weights)):
        raise ValueError(f"save_ais_weights takes at least 2 finite log weights, got {log_weights.size}")
    ess = effective_sample_size(log_weights)
    figure = _figure(6.0, 3.8)
    axes = figure.add_subplot()
    axes.hist(log_weights, bins=min(30, max(5, log_weights.size // 3)), color="#4c72b0", edgecolor="white")
    axes.set_xlabel("log importance weight")
    axes.set_ylabel("runs")
    summary = f"effective sample size {ess:.1f} of {log_weights.size} runs"
    axes.set_title(f"{title}\n{summary}" if title else summary, fontsize=10)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return Path(path)


ACTIVATION_ROWS = 1000  # rows whose hidden means a histogram shows: enough for its shape, cheap on any data set


def hidden_activations(compiled, data, rows: int = ACTIVATION_ROWS) -> dict[str, np.ndarray]:
    """{hidden layer: its conditional means given the first `rows` rows of data, one value per row and unit}.

    The means are compiled.transform's: exact for the layers the compiler
    sums out, mean-field for those it keeps (a DBM's), pooling layers
    among them. data: an array or a dict of observed layers, as for fit.
    """
    from .runtime.train import as_data

    given = {name: values[:rows] for name, values in as_data(compiled, data).items()}
    means = compiled.transform(given)
    if not isinstance(means, dict):
        hidden = [name for name, info in compiled.layers.items() if info["role"] == "hidden"]
        means = {hidden[0]: means}
    return {name: np.asarray(_host(values), dtype=np.float64).reshape(-1) for name, values in means.items()}


def save_activations(activations: dict, path, title: str = "") -> Path:
    """A histogram of each hidden layer's conditional means (hidden_activations), a panel a layer, to a PNG.

    Hinton's practical guide (2010, section 16) suggests looking at it:
    binary units' means piled at 0 and 1 are saturated (the weights have
    grown too large, or the learning rate is high), all near 0.5 unused,
    and a healthy layer shows a spread with most units off for most rows.
    """
    if not activations:
        raise ValueError("save_activations: no hidden layer to draw")
    figure = _figure(4.5 * len(activations), 3.6)
    for number, (layer, values) in enumerate(activations.items(), start=1):
        axes = figure.add_subplot(1, len(activations), number)
        values = np.asarray(values, dtype=np.float64).ravel()
        unit_interval = values.min() >= 0.0 and values.max() <= 1.0  # probabilities: saturation shows at the ends
        axes.hist(values, bins=np.linspace(0.0, 1.0, 41) if unit_interval else 40, color="#55a868", edgecolor="white")
        axes.set_xlabel(f"E[{layer} | data]")
        axes.set_ylabel("units x rows")
        axes.set_title(f"{layer}: mean {values.mean():.3f}", fontsize=10)
        axes.grid(alpha=0.3)
    return _saved(figure, path, title)
