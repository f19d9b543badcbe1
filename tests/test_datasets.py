"""Data sets: bars and stripes exactly, IDX files written by hand, digits, and --data specs."""

import gzip
import struct
import sys

import numpy as np
import pytest

import pgmdsl
from pgmdsl.runtime.datasets import (DataError, bars_and_stripes, digits, image_shape, load_data, load_labels,
                                     one_hot, read_idx)


def _idx(shape, values, code=0x08, fmt="B") -> bytes:
    """An IDX file built with struct, independent of the reader."""
    header = struct.pack(">HBB", 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape)
    return header + struct.pack(f">{len(values)}{fmt}", *values)


# ---- bars and stripes ----

def test_bars_and_stripes_is_the_fischer_igel_set():
    data = bars_and_stripes()
    assert data.shape == (32, 16) and data.dtype == np.float64
    images = data.reshape(32, 4, 4)
    for code in range(16):
        lines = [(code >> (3 - k)) & 1 for k in range(4)]  # first row/column is the highest bit
        assert np.array_equal(images[code], np.repeat(np.array(lines)[:, None], 4, axis=1)), code  # stripes: rows
        assert np.array_equal(images[16 + code], np.repeat(np.array(lines)[None, :], 4, axis=0)), code  # bars: columns
    rows = [tuple(row) for row in data]
    assert len(set(rows)) == 30
    assert rows.count((0.0,) * 16) == 2 and rows.count((1.0,) * 16) == 2
    assert all(rows.count(row) == 1 for row in rows if len(set(row)) == 2)


def test_bars_and_stripes_order_and_sizes():
    assert bars_and_stripes()[1].reshape(4, 4).tolist() == [[0] * 4, [0] * 4, [0] * 4, [1] * 4]
    assert bars_and_stripes()[17].reshape(4, 4).tolist() == [[0, 0, 0, 1]] * 4
    assert np.array_equal(bars_and_stripes(), bars_and_stripes())  # deterministic
    unique = bars_and_stripes(duplicates=False)
    assert unique.shape == (30, 16) and len(np.unique(unique, axis=0)) == 30
    assert bars_and_stripes(3).shape == (16, 9)
    assert bars_and_stripes(1).tolist() == [[0.0], [1.0], [0.0], [1.0]]


@pytest.mark.parametrize("size", [0, -1, 2.5, True, 17])
def test_bars_and_stripes_rejects_bad_sizes(size):
    with pytest.raises(DataError, match="bars and stripes"):
        bars_and_stripes(size)


# ---- IDX ----

def test_read_idx_plain_and_gzip(tmp_path):
    values = list(range(2 * 3 * 4))
    raw = _idx((2, 3, 4), values)
    plain = tmp_path / "t10k-images-idx3-ubyte"
    plain.write_bytes(raw)
    packed = tmp_path / "t10k-images-idx3-ubyte.gz"
    packed.write_bytes(gzip.compress(raw))
    for path in (plain, packed):
        array = read_idx(path)
        assert array.dtype == np.uint8 and array.shape == (2, 3, 4)
        assert array.ravel().tolist() == values


def test_read_idx_big_endian_types(tmp_path):
    path = tmp_path / "floats.idx"
    path.write_bytes(_idx((2, 2), [0.5, -1.0, 2.25, 3.0], code=0x0D, fmt="f"))
    assert read_idx(path).tolist() == [[0.5, -1.0], [2.25, 3.0]]
    path.write_bytes(_idx((3,), [-2, 300, 7], code=0x0B, fmt="h"))
    assert read_idx(path).tolist() == [-2, 300, 7]


@pytest.mark.parametrize("raw, message", [
    (b"\x00\x00", "only 2 bytes"),
    (b"\x01\x02\x08\x01" + b"\x00" * 8, "magic number 01020801 should start with 0000"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "unknown IDX element type 0x07"),
    (b"\x00\x00\x08\x00", "declares no dimensions"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated IDX header"),
    (_idx((2, 3), [1, 2, 3, 4, 5]), "declares 2 x 3 values of 1 byte(s) (6 bytes) but 5 bytes follow"),
    (_idx((2,), [1, 2]) + b"\x00", "but 3 bytes follow"),
    (b"\x1f\x8b\x08\x00garbage", "not a valid gzip file"),
])
def test_read_idx_malformed(tmp_path, raw, message):
    path = tmp_path / "bad.idx"
    path.write_bytes(raw)
    with pytest.raises(DataError) as error:
        read_idx(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot read IDX file"):
        read_idx(tmp_path / "absent.idx")


# ---- digits ----

def test_digits_scaled_and_binarised():
    pytest.importorskip("sklearn")
    data = digits()
    assert data.shape == (1797, 64) and data.min() == 0.0 and data.max() == 1.0
    assert len(np.unique(data)) == 17  # the 0..16 grey levels, divided by 16
    binary = digits(binarize=True)
    assert set(np.unique(binary)) == {0.0, 1.0}
    assert np.array_equal(binary, (data > 0.5).astype(float))
    assert binary.sum() < digits(binarize=True, threshold=0.2).sum()


def test_digits_without_scikit_learn_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DataError, match=r"pip install 'pgmdsl\[sklearn\]'"):
        digits()


# ---- load_data ----

def test_load_data_built_in_sets():
    assert np.array_equal(load_data("bars"), bars_and_stripes())
    assert load_data("bars:3").shape == (16, 9)
    assert load_data("bars", dtype="float32").dtype == np.float32
    pytest.importorskip("sklearn")
    assert np.array_equal(load_data("digits"), digits())
    assert np.array_equal(load_data("digits-binary"), digits(binarize=True))


def test_load_data_files(tmp_path):
    images = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3) * 20
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx((2, 2, 3), images.ravel().tolist())))
    loaded = load_data(tmp_path / "train-images-idx3-ubyte.gz")
    assert loaded.shape == (2, 6) and np.allclose(loaded, images.reshape(2, 6) / 255.0)
    np.save(tmp_path / "x.npy", np.eye(3, dtype=np.uint8))  # bytes of 0/1 are not rescaled
    assert load_data(str(tmp_path / "x.npy")).tolist() == np.eye(3).tolist()
    np.savez(tmp_path / "one.npz", data=np.ones((4, 2, 2)))
    assert load_data(str(tmp_path / "one.npz")).shape == (4, 4)


@pytest.mark.parametrize("make, spec, message", [
    (None, "mnist", "not a data set name or a known file type"),
    (None, "bars:x", "bars:N takes a positive integer N"),
    (None, "missing.npy", "no such file"),
    (lambda d: np.savez(d / "two.npz", a=np.ones((2, 2)), b=np.ones((2, 2))), "two.npz", "exactly one array (and optionally one named 'labels'); it holds 2 (a, b)"),
    (lambda d: np.save(d / "labels.npy", np.arange(5)), "labels.npy", "shape (5,) (labels?)"),
    (lambda d: np.save(d / "nan.npy", np.array([[np.nan, 1.0]])), "nan.npy", "NaN or infinite"),
    (lambda d: np.save(d / "empty.npy", np.ones((0, 3))), "empty.npy", "no rows"),
    (lambda d: np.save(d / "text.npy", np.array([["a", "b"]])), "text.npy", "not numbers"),
    (lambda d: np.save(d / "objects.npy", np.array([[1, None]], dtype=object)), "objects.npy", "cannot read"),
    (lambda d: (d / "junk.npy").write_bytes(b"not numpy"), "junk.npy", "cannot read"),
])
def test_load_data_errors(tmp_path, make, spec, message):
    if make:
        make(tmp_path)
    path = spec if make is None and not spec.endswith(".npy") else str(tmp_path / spec)
    with pytest.raises(DataError) as error:
        load_data(path)
    assert message in str(error.value)


def test_image_shape():
    assert image_shape(64) == (8, 8)
    assert image_shape(784) == (28, 28)
    assert image_shape(16) == (4, 4)
    assert image_shape(10) is None and image_shape(1) is None and image_shape(0) is None


def test_datasets_and_load_trained_are_exported():
    assert pgmdsl.datasets.bars_and_stripes is bars_and_stripes
    from pgmdsl.runtime.checkpoint import load_trained

    assert pgmdsl.load_trained is load_trained


def test_labels_of_digits_and_of_a_npz(tmp_path):
    pytest.importorskip("sklearn")
    labels = load_labels("digits")
    assert labels.shape == (1797,) and labels.dtype == np.int64 and set(labels) == set(range(10))
    np.testing.assert_array_equal(load_labels("digits-binary"), labels)
    np.savez(tmp_path / "set.npz", rows=np.ones((3, 2)), labels=np.array([2, 0, 1]))
    np.testing.assert_array_equal(load_labels(str(tmp_path / "set.npz")), [2, 0, 1])
    np.testing.assert_array_equal(load_data(str(tmp_path / "set.npz")), np.ones((3, 2)))  # the data beside them
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])


@pytest.mark.parametrize("make, spec, message", [
    (None, "bars", "--data bars has no labels"),
    (lambda d: np.savez(d / "plain.npz", rows=np.ones((3, 2))), "plain.npz", "holds no array named 'labels' (it holds rows)"),
    (lambda d: np.savez(d / "float.npz", rows=np.ones((3, 2)), labels=np.ones(3) / 2), "float.npz",
     "'labels' must be one integer class"),
    (lambda d: np.savez(d / "negative.npz", rows=np.ones((3, 2)), labels=-np.ones(3, int)), "negative.npz",
     "'labels' must be one integer class"),
])
def test_label_errors(tmp_path, make, spec, message):
    if make:
        make(tmp_path)
    with pytest.raises(DataError) as caught:
        load_labels(str(tmp_path / spec) if make else spec)
    assert message in caught.value.message
    with pytest.raises(DataError, match="the labels go up to 3, but the label layer has 3 classes"):
        one_hot(np.array([0, 3]), 3)
