"""Convolutions planned for speed: patch matrices (im2col) + GEMM, col2im folds, pooled blocks without moved axes.

Every path is checked against loops written here: fields, energies and
statistics of convolved models (several channels, stride 2) in float32 and
float64; fold as unfold's adjoint; the pooled helpers against the block
formulas and, draw for draw, against categorical over moved-last blocks.
The cost model is checked on the contractions it has to tell apart.
"""

import itertools
import inspect

import numpy as np
import pytest

import pgmdsl
from pgmdsl import compiler
from pgmdsl.codegen.contract import BATCH, gemm_placement, pair_cost, patch_order

STRIDED = """
model strided_conv(C: int = 2, NV: int = 9, K: int = 3, NW: int = 3)
let NH = (NV - NW) / 2 + 1
visible v[C, NV, NV]: binary
hidden  h[K, NH, NH]: binary
param W[K, C, NW, NW] ~ normal(0, 0.5)
param b[K] = 0
energy:
    interaction:  -v[c, 2*y+r, 2*x+s] * W[k, c, r, s] * h[k, y, x]
    hidden_bias:  -b[k] * h[k, y, x]
"""


def strided_model(tmp_path):
    path = tmp_path / "strided_conv.dgm"
    path.write_text(STRIDED)
    return pgmdsl.load(path)


def correlate(v, W, stride):
    """field[b, k, y, x] = sum over c, r, s of W[k, c, r, s] v[b, c, stride y + r, stride x + s], by loops."""
    B, C, N, _ = v.shape
    K, _, R, _ = W.shape
    H = (N - R) // stride + 1
    out = np.zeros((B, K, H, H))
    for b, k, y, x in itertools.product(range(B), range(K), range(H), range(H)):
        out[b, k, y, x] = np.sum(W[k] * v[b, :, stride * y: stride * y + R, stride * x: stride * x + R])
    return out


def transposed(h, W, stride, N):
    """field[b, c, i, j] = sum over k and the (y, r), (x, s) with stride y + r = i of W[k, c, r, s] h[b, k, y, x]."""
    B, K, H, _ = h.shape
    _, C, R, _ = W.shape
    out = np.zeros((B, C, N, N))
    for b, k, y, x in itertools.product(range(B), range(K), range(H), range(H)):
        out[b, :, stride * y: stride * y + R, stride * x: stride * x + R] += W[k] * h[b, k, y, x]
    return out


def states(c, rows, rng):
    return {name: (rng.random((rows,) + tuple(info["shape"])) < 0.4).astype(c.dtype)
            for name, info in c.layers.items() if info["role"] in ("visible", "hidden")}


CASES = [("conv_rbm", dict(C=2, NV=6, K=3, NW=3, pool=2), 1), ("strided", dict(C=2, NV=9, K=3, NW=3), 2)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, sizes, stride", CASES)
def test_convolved_fields_energy_and_statistics_match_loops(tmp_path, name, sizes, stride, dtype):
    model = pgmdsl.load("conv_rbm", **sizes) if name == "conv_rbm" else strided_model(tmp_path)
    c = model.compile(dtype=dtype)
    rng = np.random.default_rng(3)
    W = rng.normal(0, 0.5, c.params["W"].shape).astype(dtype)
    b = rng.normal(0, 0.5, c.params["b"].shape).astype(dtype)
    p = dict(c.params, W=W, b=b)
    s = states(c, 4, rng)
    v, h = s["v"].astype(float), s["h"].astype(float)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == "float32" else dict(rtol=1e-10, atol=1e-10)
    field_h = correlate(v, W.astype(float), stride) + b[:, None, None]
    assert c.module.field_h(p, s).dtype == np.dtype(dtype)
    np.testing.assert_allclose(c.module.field_h(p, s), field_h, **tol)
    a = p.get("a", np.zeros(sizes["C"], dtype))
    np.testing.assert_allclose(c.module.field_v(p, s), transposed(h, W.astype(float), stride, sizes["NV"])
                               + a[:, None, None], **tol)
    energy = -np.sum(field_h * h, axis=(1, 2, 3)) - v.sum(axis=(2, 3)) @ a
    np.testing.assert_allclose(c.module.energy(p, s), energy, **tol)
    w = rng.normal(size=4).astype(dtype)
    stat = np.zeros(W.shape)
    for row in range(4):
        for k, ch, r, q in itertools.product(*(range(n) for n in W.shape)):
            window = v[row, ch, r: r + stride * h.shape[2]: stride, q: q + stride * h.shape[3]: stride]
            stat[k, ch, r, q] += w[row] * np.sum(window * h[row, k])
    np.testing.assert_allclose(c.module.statistics(p, s, w)["W"], stat, **tol)


def test_the_patch_matrix_is_built_once_a_function_and_contracted_by_gemm(tmp_path):
    path = tmp_path / "two_banks.dgm"
    path.write_text("""
model two_banks(NV: int = 6, K: int = 2, NW: int = 3)
let NH = NV - NW + 1
visible v[NV, NV]: binary
hidden  h[K, NH, NH]: binary
hidden  g[K, NH, NH]: binary
param W[K, NW, NW] ~ normal(0, 0.5)
param U[K, NW, NW] ~ normal(0, 0.5)
energy:
    first:  -v[y+r, x+s] * W[k, r, s] * h[k, y, x]
    second: -v[y+r, x+s] * U[k, r, s] * g[k, y, x]
""")
    model = pgmdsl.load(path)
    source = compiler.generate_source(model, "numpy", "float64")
    statistics = source[source.index("def statistics"):]
    assert statistics.count("patches(") == 1  # one patch matrix for both filters' statistics
    assert "einsum" not in statistics  # the weighted statistics: weights on h, then one GEMM each
    c = model.compile()
    rng = np.random.default_rng(0)
    s = states(c, 3, rng)
    w = rng.normal(size=3)
    stats = c.module.statistics(c.params, s, w)
    v, h, g = s["v"], s["h"], s["g"]
    for name, hidden in (("W", h), ("U", g)):
        expected = np.zeros(c.params[name].shape)
        for row, k, r, q in itertools.product(range(3), *(range(n) for n in expected.shape)):
            expected[k, r, q] += w[row] * np.sum(v[row, r:r + 4, q:q + 4] * hidden[row, k])
        np.testing.assert_allclose(stats[name], expected, rtol=1e-10, atol=1e-12)


def test_fold_is_the_adjoint_of_unfold_with_channels_and_strides():
    c = pgmdsl.load("conv_rbm", C=2, NV=6, K=3, NW=3, pool=2).compile()
    m = c.module
    rng = np.random.default_rng(1)
    specs = (None, ("window", 0, 2, 3, 2), ("window", 1, 1, 2, 3))  # rows 2*y + r, columns x + s + 1
    x = rng.normal(size=(4, 2, 6, 6))
    windows = m.unfold(x, specs, True)  # (b, c, y, x, r, s)
    g = rng.normal(size=windows.shape)
    folded = m.fold(g.transpose(4, 5, 0, 1, 2, 3), (2, 6, 6), specs, True)  # fold takes the offsets first
    np.testing.assert_allclose(np.sum(windows * g), np.sum(x * folded), rtol=1e-12)


def test_the_cost_model_picks_gemm_for_weighted_statistics_and_fields():
    extents = {BATCH: 100, "k": 24, "c": 1, "y": 20, "x": 20, "r": 9, "s": 9}
    h, patches, w = (BATCH, "k", "y", "x"), ("c", "r", "s", BATCH, "y", "x"), (BATCH,)
    output = {"k", "c", "r", "s"}
    weighted_first = pair_cost(h, w, output | set(patches), extents)
    batched_einsum = pair_cost(h, patches, output | {BATCH}, extents)
    assert weighted_first * 10 < batched_einsum
    assert pair_cost(("k", "c", "r", "s"), patches, {BATCH, "k", "y", "x"}, extents) < batched_einsum
    # tensordot(first, second): the patch matrix as a (crs, byx) block either way, the copied h along its rows
    first, second, summed = gemm_placement(h, patches, ("y", BATCH, "x"), extents)
    assert (first, second, summed) == (h, patches, (BATCH, "y", "x"))
    first, second, summed = gemm_placement(("k", "c", "r", "s"), patches, ("c", "r", "s"), extents)
    assert summed == ("c", "r", "s") and {first, second} == {("k", "c", "r", "s"), patches}
    assert pair_cost(("k",), ("k",), {"k"}, extents) == 24  # no summed index: elementwise
    assert patch_order((None, ("window", 0, 1, 20, 9), ("window", 0, 1, 20, 9)),
                       (BATCH, "c", "y", "x", "r", "s"), 1) == ("c", "r", "s", BATCH, "y", "x")


def old_blocks(x, pool):
    """The blocks' units moved last (the reference layout)."""
    k = len(pool)
    lead = x.shape[: x.ndim - k]
    split = lead
    for extent, size in zip(x.shape[x.ndim - k:], pool):
        split += (extent // size, size)
    blocks = np.moveaxis(x.reshape(split), [len(lead) + 2 * i + 1 for i in range(k)], list(range(-k, 0)))
    return blocks.reshape(blocks.shape[: blocks.ndim - k] + (int(np.prod(pool)),))


POOLS = [((3, 2, 4, 6), (2, 2)), ((5, 6, 9), (3, 3)), ((4, 3, 8), (4,)), ((2, 3, 6, 4), (3, 2))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, pool", POOLS)
def test_pooled_helpers_match_the_block_formulas(shape, pool, dtype):
    m = pgmdsl.load("conv_rbm", C=1, NV=6, K=2, NW=3, pool=2).compile().module
    rng = np.random.default_rng(2)
    field = (rng.normal(size=shape) * 4).astype(dtype)
    field.flat[0] = 300  # exp would overflow without the block's maximum taken out
    blocks = old_blocks(field.astype(float), pool)
    top = np.maximum(blocks.max(axis=-1, keepdims=True), 0)
    e = np.exp(blocks - top)
    total = np.exp(-top) + e.sum(axis=-1, keepdims=True)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    mean = m.pooled_mean(field, pool)
    assert mean.dtype == dtype and mean.shape == field.shape
    np.testing.assert_allclose(old_blocks(mean, pool), e / total, **tol)
    np.testing.assert_allclose(m.pooled_log_partition(field, pool), (np.log(total) + top)[..., 0], **tol)
    np.testing.assert_allclose(m.pooled_units(mean, pool), (e / total).sum(axis=-1), **tol)
    permuted = np.ascontiguousarray(np.moveaxis(field, 0, -3 if len(shape) > 3 else 0))  # any memory layout
    permuted = np.moveaxis(permuted, -3 if len(shape) > 3 else 0, 0)
    np.testing.assert_allclose(m.pooled_mean(permuted, pool), mean, **tol)


@pytest.mark.parametrize("shape, pool", POOLS)
def test_pooled_draws_are_categorical_draws_over_the_blocks(shape, pool):
    m = pgmdsl.load("conv_rbm", C=1, NV=6, K=2, NW=3, pool=2).compile().module
    field = np.random.default_rng(4).normal(size=shape) * 2
    mean = m.pooled_mean(field, pool)
    blocks = old_blocks(mean, pool)
    off = np.clip(1 - blocks.sum(axis=-1, keepdims=True), 0, 1)
    reference = m.categorical(np.concatenate([blocks, off], axis=-1), np.random.default_rng(9))[..., :-1]
    drawn = m.pooled_draw(mean, pool, np.random.default_rng(9))
    np.testing.assert_array_equal(old_blocks(drawn, pool), reference)  # the same uniforms, the same states
    assert old_blocks(drawn, pool).sum(axis=-1).max() <= 1
    sampled = np.mean([m.pooled_sample(field, pool, np.random.default_rng(seed)) for seed in range(400)], axis=0)
    np.testing.assert_allclose(sampled, mean, atol=0.12)


def test_patch_matrices_are_reused_only_for_equal_sources():
    """The prelude keeps recent patch matrices: equal contents get the same matrix, a source changed in place
    a new one (never a stale read), and a matrix past the byte budget is not kept."""
    c = pgmdsl.load("conv_rbm", C=1, NV=6, K=2, NW=3, pool=2).compile(dtype="float64")
    module = c.module
    specs = (None, ("window", 0, 1, 4, 3), ("window", 0, 1, 4, 3))
    order = (1, 4, 5, 0, 2, 3)
    v = np.random.default_rng(0).random((5, 1, 6, 6))
    first = module.patches(v, specs, True, order)
    assert module.patches(v.copy(), specs, True, order) is first
    v[0, 0, 0, 0] += 1.0  # in place: the same array, other contents
    again = module.patches(v, specs, True, order)
    assert again is not first
    expected = np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(v, (3, 3), axis=(2, 3))
                                    .transpose(1, 4, 5, 0, 2, 3))
    np.testing.assert_array_equal(again, expected)
    for k in range(module.PATCH_ENTRIES):
        module.patches(v + k + 1, specs, True, order)
    assert module.patches(v, specs, True, order) is not again  # dropped: only the last PATCH_ENTRIES are kept


def test_products_of_parameters_are_kept_while_the_parameters_hold():
    """The mcRBM's precision reads R R^T per factor through kept_einsum: the same array while R holds its values
    (sampling), a new and correct one once R changes in place (training), and the precision equals
    I + R diag(hc) R^T either way."""
    c = pgmdsl.load("mcrbm", nv=5, nm=3, nc=4).compile(dtype="float64", seed=1)
    module = c.module
    assert "kept_einsum(" in inspect.getsource(module.precision_x)
    R = c.params["R"]
    first = module.kept_einsum("ik,jk->kij", R, R)
    assert module.kept_einsum("ik,jk->kij", R.copy(), R.copy()) is first
    R[0, 0] += 0.5  # an update in place: the same array, other values
    again = module.kept_einsum("ik,jk->kij", R, R)
    assert again is not first
    np.testing.assert_array_equal(again, np.einsum("ik,jk->kij", R, R))
    hc = (np.random.default_rng(0).random((6, 4)) < 0.5).astype(float)
    state = {"x": np.zeros((6, 5)), "hm": np.zeros((6, 3)), "hc": hc}
    for _ in range(2):  # built, then recalled
        expected = np.eye(5) + np.einsum("ik,bk,jk->bij", R, hc, R)
        np.testing.assert_allclose(module.precision_x(c.params, state), expected, rtol=1e-12)
    R *= 2.0
    np.testing.assert_allclose(module.precision_x(c.params, state),
                               np.eye(5) + np.einsum("ik,bk,jk->bij", R, hc, R), rtol=1e-12)
