"""The prelude's joint-Gaussian kernels: one Cholesky, then triangular solves by substitution (no general solve)."""

import numpy as np
import pytest

import pgmdsl


@pytest.fixture(scope="module")
def module():
    return pgmdsl.load("mcrbm", nv=4, nm=3, nc=3).compile(dtype="float64", cache=False).module


def precisions(rng, shape, n, dtype=np.float64):
    a = rng.normal(size=shape + (n, n))
    return (a @ np.swapaxes(a, -1, -2) / n + np.eye(n)).astype(dtype)


@pytest.fixture(params=["lapack", "substitution"])
def path(request, module, monkeypatch):
    """NumPy arrays take scipy's LAPACK per row; other arrays (CuPy's) forward and back substitution."""
    if request.param == "substitution":
        monkeypatch.setattr(module, "_lapack", lambda a: None)
    return request.param


@pytest.mark.parametrize("dtype, tolerance", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_substitution_solves_are_the_triangular_solves(module, path, dtype, tolerance):
    rng = np.random.default_rng(0)
    chol = np.linalg.cholesky(precisions(rng, (3, 5), 7, dtype))
    b = rng.normal(size=(5, 7)).astype(dtype)  # broadcast against (3, 5) factors, as the tempered free energy does
    y = module.solve_lower(chol, b)
    x = module.solve_lower_transposed(chol, y)
    assert y.shape == x.shape == (3, 5, 7) and y.dtype == x.dtype == dtype
    want_y = np.linalg.solve(chol.astype(float), np.broadcast_to(b, (3, 5, 7))[..., None].astype(float))[..., 0]
    want_x = np.linalg.solve(np.swapaxes(chol, -1, -2).astype(float), y[..., None].astype(float))[..., 0]
    np.testing.assert_allclose(y, want_y, rtol=0, atol=tolerance)
    np.testing.assert_allclose(x, want_x, rtol=0, atol=tolerance)
    assert np.array_equal(b, b.astype(dtype))  # the right-hand side is not written


def test_mean_sample_and_log_partition_share_a_factor(module, path):
    rng = np.random.default_rng(1)
    precision, field = precisions(rng, (6,), 5), rng.normal(size=(6, 5))
    chol = module.gaussian_joint_factor(precision)
    np.testing.assert_allclose(chol, np.linalg.cholesky(precision), rtol=0, atol=1e-13)  # lower, zeros above
    owned = precision.copy()
    np.testing.assert_array_equal(module.gaussian_joint_factor(owned, overwrite=True), chol)
    mean = np.linalg.solve(precision, field[..., None])[..., 0]
    for given in (None, chol):
        np.testing.assert_allclose(module.gaussian_joint_mean(field, precision, chol=given), mean, rtol=0, atol=1e-12)
        draw = module.gaussian_joint_sample(field, precision, np.random.default_rng(2), chol=given)
        z = np.random.default_rng(2).standard_normal(field.shape)
        noise = np.linalg.solve(np.swapaxes(chol, -1, -2), z[..., None])[..., 0]  # L^-T z: covariance P^-1
        np.testing.assert_allclose(draw, mean + noise, rtol=0, atol=1e-12)
        log_z = (np.einsum("bi,bi->b", field, mean) / 2 - np.linalg.slogdet(precision)[1] / 2
                 + 2.5 * np.log(2 * np.pi))
        np.testing.assert_allclose(module.gaussian_joint_log_partition(field, precision, chol=given), log_z,
                                   rtol=0, atol=1e-12)


def test_tempered_joint_mean_and_the_precision_leave_the_parameters_alone():
    c = pgmdsl.load("mcrbm", nv=3, nm=2, nc=2).compile(dtype="float64", cache=False)
    rng = np.random.default_rng(3)
    c.params = {name: rng.normal(size=value.shape) * 0.5 for name, value in c.params.items()}
    before = {k: v.copy() for k, v in c.params.items()}
    state = {"x": rng.normal(size=(4, 3)), "hm": rng.integers(0, 2, (4, 2)).astype(float),
             "hc": rng.integers(0, 2, (4, 2)).astype(float)}
    offset = rng.random((4, 3))
    W, R = c.params["W"], c.params["R"]
    for beta in (1.0, 0.4):
        got = c.module.mean_x(c.params, state, beta=beta, precision_offset=offset)
        for row in range(4):
            precision = beta * (np.eye(3) + R @ np.diag(state["hc"][row]) @ R.T) + np.diag(offset[row])
            want = np.linalg.solve(precision, beta * W @ state["hm"][row])
            np.testing.assert_allclose(got[row], want, rtol=0, atol=1e-12)
    assert all(np.array_equal(before[k], c.params[k]) for k in before)


def test_a_precision_that_is_not_positive_definite_is_refused(module, path):
    precision = np.array([[[1.0, 2.0], [2.0, 1.0]]])
    with pytest.raises(np.linalg.LinAlgError):
        module.gaussian_joint_sample(np.zeros((1, 2)), precision, np.random.default_rng(0))
