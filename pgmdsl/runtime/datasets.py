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
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DSLError


class DataError(DSLError):
    """A data set cannot be found, read or used; the message says which and why."""


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


# IDX element types: code -> big-endian numpy dtype (LeCun's MNIST page).
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """An IDX file (the MNIST format), plain or gzip-compressed, as an array of its own type and shape.

    The header is two zero bytes, a type code (0x08 unsigned byte ... 0x0E
    double), the number of dimensions, then each dimension as a big-endian
    32-bit integer; the values follow, big-endian, and nothing else.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"cannot read IDX file {path}: {error.strerror or error}") from None
    if raw[:2] == b"\x1f\x8b":  # gzip, whatever the file is called
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(f"{path}: not a valid gzip file ({error})") from None
    if len(raw) < 4:
        raise DataError(f"{path}: not an IDX file (only {len(raw)} bytes; the header alone takes 4)")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0:
        raise DataError(f"{path}: not an IDX file (the magic number {raw[:4].hex()} should start with 0000)")
    if code not in _IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_TYPES)
        raise DataError(f"{path}: unknown IDX element type 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise DataError(f"{path}: the IDX header declares no dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header ({ndim} dimensions need {header} bytes, the file has {len(raw)})")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[code])
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header != expected:
        dims = " x ".join(map(str, shape))
        raise DataError(f"{path}: the IDX header declares {dims} values of {dtype.itemsize} byte(s) "
                        f"({expected} bytes) but {len(raw) - header} bytes follow it")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


DATA_SPECS = ("digits, digits-binary, bars, bars:N, FILE.npy, FILE.npz (one array, and optionally 'labels'), "
              "FILE.idx or FILE-idxN-ubyte(.gz)")


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
    else:
        data = _from_file(Path(spec))
    return _rows(data, spec).astype(dtype, copy=False)


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
    with np.load(path, allow_pickle=False) as archive:
        if "labels" not in archive.files:
            raise DataError(f"{path} holds no array named 'labels' (it holds {', '.join(archive.files)})")
        labels = np.asarray(archive["labels"])
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
    try:
        loaded = np.load(path, allow_pickle=False)  # an array or an archive, by content rather than name
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded as archive:
            keys = [key for key in archive.files if key != "labels"]
            if len(keys) != 1:
                listed = ", ".join(archive.files) or "none"
                raise DataError(f"{path}: a .npz for --data must hold exactly one array (and optionally one named "
                                f"'labels'); it holds {len(archive.files)} ({listed})")
            return archive[keys[0]]
    except (OSError, ValueError, EOFError, zlib.error) as error:
        raise DataError(f"cannot read {path}: {error}") from None


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
