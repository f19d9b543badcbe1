"""Training data: scikit-learn's digits, bars and stripes, IDX (MNIST) files, .npy/.npz.

Everything here is local: nothing is downloaded at run time (digits ship
inside scikit-learn, bars and stripes are generated, the rest are the user's
files). Every loader returns one row per example; `load_data` flattens rows,
so any model whose observed layer has the right number of units can take it.
Problems are DataErrors (a DSLError), so the CLI reports them in one line.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from .initialize import check_budget
from .npzfile import is_npz, read_npy, read_npz


def digits(binarize: bool = False, threshold: float = 0.5) -> np.ndarray:
    """scikit-learn's 1,797 8x8 digits as rows of 64 values in [0, 1] (or {0, 1} when binarised).

    The pixels are integers 0..16, so X/16 is exact; `binarize` keeps the
    pixels above `threshold` (after scaling), which suits binary visible units.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DataError("the digits data set comes with scikit-learn: pip install 'pgmdsl[sklearn]'") from None
    data = load_digits().data.astype(np.float64) / 16.0
    return (data > threshold).astype(np.float64) if binarize else data


def bars_and_stripes(size: int = 4, duplicates: bool = True) -> np.ndarray:
    """Every size x size image whose rows (stripes) or columns (bars) are each all on or all off.

    There are 2^size stripe images, then 2^size bar images, each in the order
    of the binary numbers whose bits (first row or column = highest bit) say
    which lines are on. The all-off and all-on images are both stripes and
    bars: with `duplicates` they appear twice (32 rows for size 4, the set of
    Fischer and Igel's RBM studies), without it once (30 rows).
    """
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise DataError(f"bars and stripes: size must be a positive integer, got {size!r}")
    if size > 16:
        raise DataError(f"bars and stripes: size {size} would give 2^{size + 1} images; use 16 or less")
    codes = np.arange(2 ** size)
    lines = (codes[:, None] >> np.arange(size - 1, -1, -1)[None, :]) & 1  # (2^size, size), highest bit first
    stripes = np.repeat(lines[:, :, None], size, axis=2)  # row r is all lines[r]
    bars = np.repeat(lines[:, None, :], size, axis=1)  # column c is all lines[c]
    if not duplicates:
        bars = bars[1:-1]  # the all-off (code 0) and all-on (last code) images are already stripes
    images = np.concatenate([stripes, bars]).reshape(-1, size * size)
    return images.astype(np.float64)


def oscillators(sequences: int = 8, frames: int = 400, channels: int = 6, noise: float = 0.05,
                seed: int = 0) -> np.ndarray:
    """Multichannel sequences made by code, (sequences, frames, channels): a stand-in for motion capture.

    Each sequence is a periodic motion: two oscillators with
    periods of 20 and 50 frames (a random phase and amplitude per sequence)
    mixed into `channels` channels by one fixed random matrix, plus a
    non-linear channel coupling (tanh of the mix) and Gaussian noise of
    standard deviation `noise`, standardised per channel over all sequences.
    The period of 20 frames dominates the spectrum summed over channels and
    pooled over the sequences; a single sequence may peak at 50 frames.
    """
    for name, value, low in (("sequences", sequences, 1), ("frames", frames, 2), ("channels", channels, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise DataError(f"oscillators: {name} must be an integer >= {low}, got {value!r}")
    check_budget(f"{sequences} x {frames} x {channels} oscillator frames", sequences * frames * channels * 8 * 4,
                 "ask for fewer frames", DataError)
    rng = np.random.default_rng(seed)
    mixing = rng.normal(0, 1, (2, channels))
    mixing[1] *= 0.25  # the fast oscillator dominates
    t = np.arange(frames)
    phase = rng.uniform(0, 2 * np.pi, (sequences, 2, 1))
    amplitude = rng.uniform(0.8, 1.2, (sequences, 2, 1))
    waves = amplitude * np.sin(2 * np.pi * t / np.array([20.0, 50.0])[:, None] + phase)  # (S, 2, T)
    mixed = np.einsum("skt,kc->stc", waves, mixing)
    rows = np.tanh(0.5 * mixed) * 2 + noise * rng.standard_normal(mixed.shape)
    flat = rows.reshape(-1, channels)
    return (rows - flat.mean(0)) / flat.std(0)


# IDX element types: code -> big-endian numpy dtype (LeCun's MNIST page).
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """An IDX file (the MNIST format), plain or gzip-compressed, as an array of its own type and shape.

    The header is two zero bytes, a type code (0x08 unsigned byte ... 0x0E
    double), the number of dimensions, then each dimension as a big-endian
    32-bit integer; the values follow, big-endian, and nothing else. The
    declared size is checked against the memory budget before anything else
    is read, and a compressed stream is inflated only as far as the header
    says it goes (a small .gz cannot inflate to gigabytes in memory).
    """
    path = Path(path)
    try:
        stream = open(path, "rb")
    except OSError as error:
        raise DataError(f"cannot read IDX file {path}: {error.strerror or error}") from None
    with stream:
        compressed = stream.read(2) == b"\x1f\x8b"  # gzip, whatever the file is called
        stream.seek(0)
        try:
            if not compressed:
                return _idx_values(stream, path, os.fstat(stream.fileno()).st_size)
            with gzip.GzipFile(fileobj=stream) as inflated:
                return _idx_values(inflated, path, None)
        except (OSError, EOFError, zlib.error) as error:
            what = "not a valid gzip file" if compressed else "cannot read it"
            raise DataError(f"{path}: {what} ({error})") from None


def _idx_values(stream, path: Path, size: int | None) -> np.ndarray:
    """The header and values of an IDX stream; size: the plain file's length (None for a compressed one)."""
    head = stream.read(4)
    if len(head) < 4:
        raise DataError(f"{path}: not an IDX file (only {len(head)} bytes; the header alone takes 4)")
    zero, code, ndim = struct.unpack(">HBB", head)
    if zero != 0:
        raise DataError(f"{path}: not an IDX file (the magic number {head.hex()} should start with 0000)")
    if code not in _IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_TYPES)
        raise DataError(f"{path}: unknown IDX element type 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise DataError(f"{path}: the IDX header declares no dimensions")
    header = 4 + 4 * ndim
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{path}: truncated IDX header ({ndim} dimensions need {header} bytes, the file has "
                        f"{4 + len(dims)})")
    shape = struct.unpack(f">{ndim}I", dims)
    dtype = np.dtype(_IDX_TYPES[code])
    expected = math.prod(shape) * dtype.itemsize
    declared = f"{path}: the IDX header declares {_dims(shape)} values of {dtype.itemsize} byte(s) ({expected} bytes)"
    check_budget(f"{declared}, which as float64 rows", math.prod(shape) * 8, "use a smaller file", DataError)
    if size is not None and size - header != expected:
        raise DataError(f"{declared} but {size - header} bytes follow it")
    raw = stream.read(expected)
    if len(raw) != expected:
        raise DataError(f"{declared} but {len(raw)} bytes follow it")
    if stream.read(1):
        raise DataError(f"{declared} but more bytes follow it")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _dims(shape) -> str:
    return " x ".join(map(str, shape)) or "one"


DATA_SPECS = ("digits, digits-binary, bars, bars:N, FILE.npy, FILE.npz (one array, and optionally 'labels'), "
              "FILE.idx or FILE-idxN-ubyte(.gz); for sequence models oscillators, oscillators:S,T, or a .npy/.npz "
              "of (T, channels) or (S, T, channels)")


# The sequences of --data oscillators: enough windows for the sequence recipe's batches of 100 to make a few
# dozen updates an epoch, and several whole sequences to hold one out.
OSCILLATORS = {"sequences": 10, "frames": 400}
SEQUENCE_SPECS = (f"oscillators ({OSCILLATORS['sequences']} sequences of {OSCILLATORS['frames']} frames; channels: "
                  "the model's frame size), oscillators:S,T (S sequences of T frames), FILE.npy or FILE.npz holding "
                  "one sequence (T, channels) or several (S, T, channels)")


def load_data(spec: str, dtype="float64") -> np.ndarray:
    """Training rows for a --data spec: a built-in set or a file; see DATA_SPECS.

    Files are flattened to one row per example. Arrays of unsigned bytes with
    values above 1 (MNIST's grey levels) are scaled by 1/255 into [0, 1];
    other arrays are taken as they are.
    """
    spec = str(spec)
    if spec == "digits":
        data = digits()
    elif spec == "digits-binary":
        data = digits(binarize=True)
    elif spec == "bars" or spec.startswith("bars:"):
        size = spec.partition(":")[2] or "4"
        if not size.isdigit():
            raise DataError(f"--data {spec}: bars:N takes a positive integer N (the image side), got '{size}'")
        data = bars_and_stripes(int(size))
    elif _is_oscillators(spec):
        raise DataError(f"--data {spec}: sequences, for a sequence model (an input layer of past frames beside the "
                        "frame layer, as crbm); this model takes rows")
    else:
        data = _from_file(Path(spec))
    return _rows(data, spec).astype(dtype, copy=False)


def load_sequences(spec: str, channels: int, dtype="float64") -> np.ndarray:
    """Sequences for a --data spec of a sequence model, as one array (S, T, channels); see SEQUENCE_SPECS.

    channels: the model's values per frame, which the built-in oscillators
    are made with. A file holds one sequence (T, C), taken as S = 1, or
    several of one length (S, T, C); its C may differ from `channels` (the
    caller sizes the model from it). Anything else is a DataError naming
    the shape it has and the shapes it could have.
    """
    spec = str(spec)
    if _is_oscillators(spec):
        sequences, frames = _oscillator_sizes(spec)
        data = oscillators(sequences=sequences, frames=frames, channels=channels)
    elif spec in ("digits", "digits-binary") or spec == "bars" or spec.startswith("bars:"):
        raise DataError(f"--data {spec}: rows, not sequences; a sequence model takes {SEQUENCE_SPECS}")
    else:
        path = Path(spec)
        if _file_kind(path.name.lower()) not in ("npy", "npz"):
            raise DataError(f"--data {spec}: not a sequence data set or file (expected {SEQUENCE_SPECS})")
        data = _from_file(path)
    return _sequences(data, spec).astype(dtype, copy=False)


def load_array(spec: str, what: str) -> np.ndarray:
    """The one array of a .npy (or a .npz holding one array), as stored (not flattened); errors start with `what`.

    For arrays the command line takes besides --data (what: "--clamp y=label.npy",
    "--mask m.npy", ...): read with the same checks and budget as data
    files, never unpickled.
    """
    path = Path(spec)
    if _file_kind(path.name.lower()) not in ("npy", "npz"):
        raise DataError(f"{what}: expected a .npy file (or a .npz holding one array)")
    if not path.is_file():
        raise DataError(f"{what}: no such file")
    array = np.asarray(_load(path, lambda files: _data_key(path, files)))
    if array.dtype.kind not in "biuf":
        raise DataError(f"{what}: the array holds {array.dtype} values, not numbers")
    return array


def _is_oscillators(spec: str) -> bool:
    return spec == "oscillators" or spec.startswith("oscillators:")


def _oscillator_sizes(spec: str) -> tuple[int, int]:
    """(sequences, frames) of `oscillators` or `oscillators:S,T`."""
    given = spec.partition(":")[2]
    if not given:
        return OSCILLATORS["sequences"], OSCILLATORS["frames"]
    parts = given.split(",")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise DataError(f"--data {spec}: oscillators:S,T takes two positive integers (S sequences of T frames), "
                        f"got '{given}'")
    return int(parts[0]), int(parts[1])


def _sequences(data: np.ndarray, spec: str) -> np.ndarray:
    """(S, T, C) sequences, numeric and finite, from an array of one sequence (T, C) or several (S, T, C)."""
    data = np.asarray(data)
    if data.dtype.kind not in "biuf":
        raise DataError(f"--data {spec}: the array holds {data.dtype} values, not numbers")
    if data.ndim not in (2, 3):
        raise DataError(f"--data {spec}: an array of shape {data.shape}; sequences are one (T frames, C channels) "
                        "or several (S, T, C) of one length")
    data = data[None] if data.ndim == 2 else data
    if 0 in data.shape:
        raise DataError(f"--data {spec}: an empty array of shape {data.shape} (S sequences, T frames, C channels)")
    if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
        raise DataError(f"--data {spec}: the array contains NaN or infinite values")
    return data


def load_labels(spec: str) -> np.ndarray:
    """The class of each row of --data `spec` as integers 0, 1, ...: digits' 0-9, or a .npz's 'labels' array."""
    spec = str(spec)
    if spec in ("digits", "digits-binary"):
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise DataError("the digits data set comes with scikit-learn: pip install 'pgmdsl[sklearn]'") from None
        return load_digits().target.astype(np.int64)
    path = Path(spec)
    if _file_kind(path.name.lower()) != "npz" or not path.is_file():
        raise DataError(f"--data {spec} has no labels: they come with digits, digits-binary, or a .npz holding "
                        "an array named 'labels' beside the data")
    labels = _load(path, lambda files: _labels_key(path, files))
    if labels.ndim != 1 or labels.dtype.kind not in "iub" or (labels.size and labels.min() < 0):
        raise DataError(f"{path}: 'labels' must be one integer class (0, 1, ...) per row, got an array of "
                        f"{labels.dtype} values and shape {labels.shape}")
    return labels.astype(np.int64)


def one_hot(labels: np.ndarray, classes: int, layer: str = "the label layer") -> np.ndarray:
    """Integer classes as one-hot rows of `classes` columns."""
    if labels.size and labels.max() >= classes:
        raise DataError(f"the labels go up to {labels.max()}, but {layer} has {classes} classes")
    return np.eye(classes)[labels]


def _from_file(path: Path) -> np.ndarray:
    name = path.name.lower()
    kind = _file_kind(name)
    if kind is None:
        raise DataError(f"--data {path}: not a data set name or a known file type (expected {DATA_SPECS})")
    if not path.is_file():
        raise DataError(f"--data {path}: no such file")
    if kind == "idx":
        return read_idx(path)
    return _load(path, lambda files: _data_key(path, files))


def _load(path: Path, key_of) -> np.ndarray:
    """A .npy's array, or the array key_of(names) picks from a .npz (key_of(None) for a plain .npy).

    What a file is goes by its content, not its name. Every array's declared
    size is checked against the memory budget before numpy reads (and
    allocates) it; damage of any kind is a DataError.
    """
    try:
        archive = is_npz(path)
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from None
    if not archive:
        key_of(None)
        return read_npy(path, str(path), lambda headers: _within_budget(lambda _: str(path), headers), DataError)
    arrays = read_npz(path, str(path), lambda headers: _within_budget(lambda name: f"{path}: {name}", headers),
                      DataError)
    return np.asarray(arrays[key_of(list(arrays))])


def _within_budget(named, headers) -> None:
    """Refuse arrays whose headers declare more values than the memory budget holds as float64 rows.

    named(member name): how the message names an array.
    """
    for header in headers:
        check_budget(f"{named(header.name)} declares {_dims(header.shape)} {header.dtype} values, which",
                     math.prod(header.shape) * max(header.dtype.itemsize, 8), "use a smaller file", DataError)


def _data_key(path: Path, files: list[str] | None) -> str | None:
    """The one array of a .npz for --data besides its optional 'labels'."""
    if files is None:
        return None
    keys = [key for key in files if key != "labels"]
    if len(keys) != 1:
        listed = ", ".join(files) or "none"
        raise DataError(f"{path}: a .npz for --data must hold exactly one array (and optionally one named "
                        f"'labels'); it holds {len(files)} ({listed})")
    return keys[0]


def _labels_key(path: Path, files: list[str] | None) -> str:
    if files is None or "labels" not in files:
        held = f"it holds {', '.join(files)}" if files is not None else "it is a plain .npy array"
        raise DataError(f"{path} holds no array named 'labels' ({held})")
    return "labels"


def _file_kind(name: str) -> str | None:
    base = name[: -len(".gz")] if name.endswith(".gz") else name  # only IDX files are read compressed
    if base.endswith(".idx") or (base.rpartition("-")[2] == "ubyte" and "idx" in base):
        return "idx"
    if name.endswith(".npy"):
        return "npy"
    if name.endswith(".npz"):
        return "npz"
    return None


def _rows(data: np.ndarray, spec: str) -> np.ndarray:
    """One flat row per example, in [0, 1] for byte images, finite and numeric."""
    data = np.asarray(data)
    if data.dtype.kind not in "biuf":
        raise DataError(f"--data {spec}: the array holds {data.dtype} values, not numbers")
    if data.ndim < 2:
        raise DataError(f"--data {spec}: an array of shape {data.shape} (labels?); training data needs one row per example")
    if len(data) == 0:
        raise DataError(f"--data {spec}: the array has no rows")
    if data.dtype == np.uint8 and data.max() > 1:  # grey levels 0..255; bytes of 0/1 stay as they are
        data = data / 255.0
    data = data.reshape(len(data), -1)
    if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
        raise DataError(f"--data {spec}: the array contains NaN or infinite values")
    return data


def image_shape(n_units: int) -> tuple[int, int] | None:
    """How to draw a row of n_units values as an image: (side, side) when n_units is a square, else None.

    64 -> 8x8 (digits), 784 -> 28x28 (MNIST), 16 -> 4x4 (bars and stripes).
    """
    side = math.isqrt(n_units) if n_units > 0 else 0
    return (side, side) if side > 1 and side * side == n_units else None
