"""Issue 10: summed-out quadratic layers in the gradient, and quadratic layers bounded together.

(1) A summed-out Gaussian layer x whose precision depends on a parameter
enters -dE/dtheta squared: the statistics must use E[x^2 | rest] =
mean^2 + variance (E[x x^T] = mean mean^T + inverse precision for units
coupled through the precision), not mean^2. Every gradient here is the
compiled module's (data statistics with x summed out, minus model statistics
over every visible state weighted by its exact probability) against central
finite differences of log p(v) computed independently: by quadrature
(scipy.integrate) of exp(-E) written by hand, or, for the joint layer, by the
closed-form Gaussian integral, itself checked against quadrature.

(2) Two Gaussian layers coupled bilinearly have proper conditionals but an
energy unbounded below once the coupling is large: the compiler refuses such
a coupling, with its location, unless the joint quadratic form is provably
positive definite.
"""

import itertools

import numpy as np
import pytest
from scipy import integrate

import pgmdsl
from pgmdsl.cli import main
from pgmdsl.errors import DSLUnsupportedError
from pgmdsl.symbolic.derive import derive

# ---- (1) the one-unit model of the issue ----

ONE = """model one()
param s = 0
visible v[1]: binary
hidden x[1]: gaussian
energy = x[i]^2 / 2 + x[i]^2 * (1 + v[i]) * exp(s) / 2
"""


def compile_source(source, name, backend="numpy"):
    return pgmdsl.parse(source, filename=f"{name}.dgm").compile(backend=backend, dtype="float64", cache=False)


@pytest.fixture(params=["numpy", "cupy"])
def backend(request, monkeypatch):
    """Both backends' modules (the CuPy one run on NumPy, the test seam of test_derivations)."""
    monkeypatch.setenv("PGMDSL_CUPY_STANDIN", "numpy")
    return request.param


def one_log_z(v, s):
    """log of the integral over x of exp(-E(v, x)), by quadrature."""
    energy = lambda x: x * x / 2 + x * x * (1 + v) * np.exp(s) / 2
    return np.log(integrate.quad(lambda x: np.exp(-energy(x)), -np.inf, np.inf, epsabs=0, epsrel=1e-13)[0])


def one_log_p(v, s):
    return one_log_z(v, s) - np.logaddexp(one_log_z(0.0, s), one_log_z(1.0, s))


def central(f, x, step=1e-5):
    return (f(x + step) - f(x - step)) / (2 * step)


@pytest.mark.parametrize("s", [0.0, 0.7])
def test_the_one_unit_model_has_the_quadrature_gradient(s, backend):
    """d log p(v=1)/ds: -0.045876 at s = 0 (the issue's number), where the mean-only statistic gave 0."""
    c = compile_source(ONE, "one", backend)
    assert c.marginalised == ("x",)
    c.params["s"] = np.asarray(s)
    states = {"v": np.array([[0.0], [1.0]])}
    model_weights = np.exp([one_log_p(0.0, s), one_log_p(1.0, s)])
    got = c.gradient({"v": np.array([[1.0]])}, states, None, model_weights)["s"]
    expected = central(lambda t: one_log_p(1.0, t), s)
    assert float(got) == pytest.approx(expected, abs=1e-7)
    if s == 0.0:
        assert expected == pytest.approx(-0.045876, abs=1e-6)


def test_the_one_unit_statistic_is_the_conditional_expectation():
    """E[-dE/ds | v] = -(1 + v) e^s E[x^2 | v] / 2, E[x^2 | v] by quadrature (the mean of x is 0 here)."""
    c = compile_source(ONE, "one")
    s = 0.4
    c.params["s"] = np.asarray(s)
    for v in (0.0, 1.0):
        density = lambda x: np.exp(-(x * x / 2 + x * x * (1 + v) * np.exp(s) / 2))
        z = integrate.quad(density, -np.inf, np.inf, epsabs=0, epsrel=1e-13)[0]
        square = integrate.quad(lambda x: x * x * density(x), -np.inf, np.inf, epsabs=0, epsrel=1e-13)[0] / z
        got = c.statistics({"v": np.array([[v]])})["s"]
        assert float(got) == pytest.approx(-(1 + v) * np.exp(s) * square / 2, abs=1e-12)


# ---- (1) two units, precision depending on v and on parameters (through a let), with a field ----

TWO = """model two()
visible v[2]: binary
hidden x[2]: gaussian
param s[2] = 0
param C[2, 2] ~ normal(0, 0.5)
param W[2, 2] ~ normal(0, 0.5)
param a[2] = 0
let g[j] = v[i] * C[i,j]
energy:
    containment: x[j]^2 / 2
    scale:       x[j]^2 * exp(s[j] + g[j]) / 2
    interaction: -v[i] * W[i,j] * x[j] - a[i] * v[i]
"""


def two_energy(p, v, x):
    """The energy by hand, for one visible state and one point x."""
    precision = np.exp(p["s"] + v @ p["C"])
    return (x @ x) / 2 + (precision * x * x).sum() / 2 - v @ p["W"] @ x - p["a"] @ v


def two_log_z(p, v):
    """log of the integral over x in R^2 of exp(-E): the energy is a sum over the units of x given v (checked at
    random points), so the integral is a product of one-dimensional quadratures."""
    base = two_energy(p, v, np.zeros(2))
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.normal(size=2)
        parts = sum(two_energy(p, v, x * np.eye(2)[j]) - base for j in range(2))
        assert two_energy(p, v, x) == pytest.approx(base + parts, abs=1e-12)
    total = -base
    for j in range(2):
        unit = np.eye(2)[j]
        shift = lambda t: two_energy(p, v, t * unit) - base
        total += np.log(integrate.quad(lambda t: np.exp(-shift(t)), -np.inf, np.inf, epsabs=0, epsrel=1e-13)[0])
    return total


VISIBLE = np.array(list(itertools.product([0.0, 1.0], repeat=2)))


def exact_log_p(log_z, p):
    values = np.array([log_z(p, v) for v in VISIBLE])
    return values - np.log(np.exp(values - values.max()).sum()) - values.max()


def finite_difference_gradient(log_z, p, rows, step=1e-5):
    """d/dtheta of the mean log p(v) of the visible states VISIBLE[rows], by central differences."""
    objective = lambda q: exact_log_p(log_z, q)[rows].mean()
    gradient = {}
    for name, value in p.items():
        g = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            up, down = ({k: v.copy() for k, v in p.items()} for _ in range(2))
            up[name][index] += step
            down[name][index] -= step
            g[index] = (objective(up) - objective(down)) / (2 * step)
        gradient[name] = g
    return gradient


def check_gradient(c, log_z, rows, tolerance):
    p = {k: np.array(v, dtype=float) for k, v in c.params.items()}
    expected = finite_difference_gradient(log_z, p, rows)
    model_weights = np.exp(exact_log_p(log_z, p))
    got = c.gradient({"v": VISIBLE[rows]}, {"v": VISIBLE}, None, model_weights)
    for name in expected:
        np.testing.assert_allclose(np.broadcast_to(got[name], expected[name].shape), expected[name],
                                   rtol=0, atol=tolerance, err_msg=name)
    return got, expected


def test_two_units_with_a_precision_depending_on_v_and_parameters_have_the_quadrature_gradient():
    c = compile_source(TWO, "two")
    assert c.marginalised == ("x",) and c.layers["x"]["update"] == "block"
    rng = np.random.default_rng(3)
    for name, value in c.params.items():
        c.params[name] = rng.normal(0, 0.6, np.shape(value))
    got, expected = check_gradient(c, two_log_z, [1, 2, 3, 3], 2e-7)
    assert np.abs(expected["s"]).max() > 1e-2  # the precision's parameters do move


# ---- (1) units coupled through the precision (a joint Gaussian summed out) ----

JOINT = """model joint(n: int = 2, m: int = 2)
visible v[n]: binary
hidden x[m]: gaussian
param s[m] = 0
param R[m, n] ~ normal(0, 0.5)
param W[m, n] ~ normal(0, 0.5)
param a[n] = 0
let u[k] = {let}
energy:
    containment: x[i]^2 * exp(s[i]) / 2
    mean:        -x[i] * W[i,k] * v[k] - a[k] * v[k]
    covariance:  v[k] * u[k]^2 / 2
"""
# mcRBM-like: u = R^T x (and u = R^T x + x_k, read at the let's own index, which the compiler refuses)
LETS = {"factored": ("x[i] * R[i,k]", lambda R: R)}


def joint_energy(p, v, x, jacobian):
    u = x @ jacobian(p["R"])
    return (np.exp(p["s"]) * x * x).sum() / 2 - x @ p["W"] @ v - p["a"] @ v + (v * u * u).sum() / 2


def joint_log_z(p, v, jacobian):
    """The Gaussian integral in closed form: precision diag(e^s) + J diag(v) J^T, field W v."""
    J = jacobian(p["R"])
    precision = np.diag(np.exp(p["s"])) + J @ np.diag(v) @ J.T
    field = p["W"] @ v
    return (p["a"] @ v + field @ np.linalg.solve(precision, field) / 2 - np.linalg.slogdet(precision)[1] / 2
            + np.log(2 * np.pi))


@pytest.mark.parametrize("let", LETS)
def test_the_joint_closed_form_is_the_quadrature(let):
    jacobian = LETS[let][1]
    rng = np.random.default_rng(4)
    p = {"s": rng.normal(0, 0.3, 2), "R": rng.normal(0, 0.6, (2, 2)), "W": rng.normal(0, 0.6, (2, 2)),
         "a": rng.normal(0, 0.6, 2)}
    for v in VISIBLE[[0, 3]]:
        integral = integrate.dblquad(lambda y, x: np.exp(-joint_energy(p, v, np.array([x, y]), jacobian)),
                                     -14, 14, -14, 14, epsabs=0, epsrel=1e-11)[0]
        assert np.log(integral) == pytest.approx(joint_log_z(p, v, jacobian), abs=1e-9)


@pytest.mark.parametrize("let", LETS)
def test_a_summed_joint_gaussian_with_a_parameter_dependent_precision_has_the_exact_gradient(let, backend):
    """x's precision diag(e^s) + J diag(v) J^T depends on s and R: their statistics need
    E[x x^T | v] = m m^T + P^-1 (R inside the let, s on the diagonal)."""
    body, jacobian = LETS[let]
    c = compile_source(JOINT.replace("{let}", body), "joint", backend)
    assert c.marginalised == ("x",) and c.layers["x"]["update"] == "joint"
    rng = np.random.default_rng(5)
    for name, value in c.params.items():
        c.params[name] = rng.normal(0, 0.7, np.shape(value))
    got, expected = check_gradient(c, lambda p, v: joint_log_z(p, v, jacobian), [1, 3, 3, 2], 2e-7)
    assert np.abs(expected["R"]).max() > 1e-2 and np.abs(expected["s"]).max() > 1e-2


def test_a_let_reading_the_gaussian_layer_at_its_own_index_is_refused_at_the_let():
    """u[k] = x[k] + x[i] R[i,k]: du[k]/dx[p] has a delta(p, k) part no reduction forms (it gave a wrong
    precision, hence a wrong free energy and sampler, before it was refused)."""
    source = JOINT.replace("{let}", "x[k] + x[i] * R[i,k]")
    with pytest.raises(DSLUnsupportedError, match="reads x\\[k\\] at its own index") as failure:
        pgmdsl.parse(source, filename="joint.dgm").compile(cache=False)
    assert (failure.value.span.line, failure.value.span.column) == (8, 12)


def test_mcrbm_sums_out_its_discrete_side():
    """In mcRBM the compiler sums the binary hidden units, keeping x: no Gaussian second moment is needed there."""
    c = pgmdsl.load("mcrbm", nv=3, nm=2, nc=2).compile(dtype="float64", cache=False)
    assert set(c.marginalised) == {"hm", "hc"} and c.kept == ("x",)


def test_a_summed_rectified_layer_uses_its_truncated_variance():
    """relu units: E[h^2 | v] = mean^2 + variance of the truncated normal; quadrature on [0, inf)."""
    source = """model rq()
param s = 0
param w = 0.5
visible v[1]: binary
hidden h[1]: relu
energy = h[i]^2 / 2 + h[i]^2 * (1 + v[i]) * exp(s) / 2 - w * v[i] * h[i] + 0.3 * h[i]
"""
    c = compile_source(source, "rq")
    assert c.marginalised == ("h",)
    c.params["s"], c.params["w"] = np.asarray(0.3), np.asarray(1.2)

    def log_z(p, v):
        energy = lambda h: h * h / 2 + h * h * (1 + v[0]) * np.exp(p["s"]) / 2 - p["w"] * v[0] * h + 0.3 * h
        return np.log(integrate.quad(lambda h: np.exp(-energy(h)), 0, np.inf, epsabs=0, epsrel=1e-13)[0])

    states = np.array([[0.0], [1.0]])
    p = {k: np.array(v, dtype=float) for k, v in c.params.items()}
    log_p = lambda q: np.array([log_z(q, v) for v in states]) - np.logaddexp(*[log_z(q, v) for v in states])
    got = c.gradient({"v": states[[1]]}, {"v": states}, None, np.exp(log_p(p)))
    for name in p:
        up, down = ({k: v.copy() for k, v in p.items()} for _ in range(2))
        up[name] = up[name] + 1e-5
        down[name] = down[name] - 1e-5
        expected = (log_p(up)[1] - log_p(down)[1]) / 2e-5
        assert float(got[name]) == pytest.approx(expected, abs=1e-7), name


# ---- (2) quadratic layers bounded together ----

def gaussian_pair(energy, extra=""):
    return f"""model pair(n: int = 2)
visible v[n]: gaussian
hidden h[n]: gaussian
param W[n, n] ~ normal(0, 0.5)
{extra}
energy:
    {energy}
"""


BILINEAR = gaussian_pair("containment: v[i]^2 / 2 + h[j]^2 / 2\n    interaction: -v[i] * W[i,j] * h[j]")


def test_a_bilinear_gaussian_gaussian_coupling_is_refused_at_its_term():
    """v^2/2 + h^2/2 - v W h: each conditional is proper, the joint is unbounded once |W| >= 1."""
    model = pgmdsl.parse(BILINEAR, filename="pair.dgm")
    with pytest.raises(DSLUnsupportedError) as failure:
        model.compile(cache=False)
    error = failure.value
    assert error.message.startswith("energy is not provably bounded below in gaussian layer v and gaussian layer h "
                                    "together: term 'interaction' couples them (coefficient of v[i]*h[j] is -W[i, j])")
    assert (error.span.line, error.span.column) == (8, 18)
    assert any("square" in note for note in error.notes)


def test_pgmdsl_check_reports_the_coupling_with_its_location(tmp_path, capsys):
    path = tmp_path / "pair.dgm"
    path.write_text(BILINEAR, encoding="utf-8")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:8:18: error: energy is not provably bounded below in gaussian layer v and gaussian layer h" in err
    assert "^^^" in err and "note:" in err


def test_the_refused_coupling_is_really_unbounded():
    """The refusal is not over-cautious: at W = 1.5 I the hand-written energy goes to -infinity along v = h."""
    W = 1.5 * np.eye(2)
    energy = lambda v, h: v @ v / 2 + h @ h / 2 - v @ W @ h
    assert energy(np.full(2, 1e3), np.full(2, 1e3)) < -1e5
    assert np.linalg.eigvalsh(np.block([[np.eye(2), -W], [-W.T, np.eye(2)]])).min() < 0


def test_a_coupling_modulated_by_a_discrete_layer_is_refused():
    source = gaussian_pair("e: v[i]^2/2 + h[j]^2/2 - v[i]*W[i,j]*h[j]*z[j] - c[j]*z[j]",
                           "hidden z[n]: binary\nparam c[n] = 0")
    with pytest.raises(DSLUnsupportedError, match="not provably bounded below in gaussian layer v and gaussian layer"):
        pgmdsl.parse(source, filename="pair.dgm").compile(cache=False)


def test_a_coupling_through_a_let_is_refused():
    """x R h with u = x R: the coupling is carried by a let, still indefinite."""
    source = """model carried(n: int = 2)
visible v[n]: gaussian
hidden h[n]: gaussian
param R[n, n] ~ normal(0, 0.5)
let u[k] = v[i] * R[i,k]
energy:
    squares: v[i]^2 / 2 + h[k]^2 / 2
    coupling: -u[k] * h[k]
"""
    with pytest.raises(DSLUnsupportedError, match="not provably bounded below in gaussian layer v and gaussian layer"):
        pgmdsl.parse(source, filename="carried.dgm").compile(cache=False)


def test_a_provably_definite_coupling_is_accepted():
    """A square with a positive weight beside each layer's own square: positive definite for every c."""
    source = gaussian_pair("e: (v[i] - exp(c[i]) * h[i])^2 / 2 + v[i]^2 / 2 + h[i]^2 / 2 - 0 * v[i] * W[i,j] * h[j]",
                           "param c[n] = 0")
    c = pgmdsl.parse(source, filename="pair.dgm").compile(dtype="float64", cache=False)
    c.params["c"] = np.array([0.5, -1.0])
    rng = np.random.default_rng(0)
    state = {"v": rng.normal(size=(3, 2)), "h": rng.normal(size=(3, 2))}
    scale = np.exp(c.params["c"])
    expected = (((state["v"] - scale * state["h"]) ** 2).sum(1) / 2 + (state["v"] ** 2).sum(1) / 2
                + (state["h"] ** 2).sum(1) / 2)
    np.testing.assert_allclose(c.energy(state), expected, atol=1e-12)


def test_a_coupling_square_alone_leaves_a_flat_direction():
    """(v - h)^2 / 2 alone is flat along v = h: no density, though each conditional is proper."""
    source = gaussian_pair("e: (v[i] - h[i])^2 / 2 - 0 * v[i] * W[i,j] * h[j]")
    with pytest.raises(DSLUnsupportedError, match="no positive square in a term of its own"):
        pgmdsl.parse(source, filename="pair.dgm").compile(cache=False)


@pytest.mark.parametrize("name", ["gbrbm", "mcrbm", "crbm"])
def test_gaussian_layers_coupled_to_discrete_ones_are_still_accepted(name):
    model = pgmdsl.load(name)
    derive(model.ir, model.schedule)
