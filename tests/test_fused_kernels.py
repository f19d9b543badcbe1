"""The CuPy backend's fused kernels, checked on the CPU.

backends/cupy_fused.py defines each kernel's arithmetic once, in FUSED_KERNELS:
C over an element type T (what cupy.ElementwiseKernel compiles for the GPU)
and its NumPy equivalent. Here the same C text is compiled as plain C with
the system compiler, called through ctypes, and compared with the NumPy
equivalent; and the NumPy equivalents are compared with the NumPy prelude
that the CPU backend (and the CuPy stand-in) runs.
"""

import ctypes
import runpy
import shutil
import subprocess

import numpy as np
import pytest

from pgmdsl import resources

EXTREMES = np.array([-np.inf, -800.0, -700.0, -50.0, -1.0, -1e-300, 0.0, 1e-300, 1.0, 50.0, 700.0, 800.0, np.inf, np.nan])
EDGE_UNIFORMS = np.array([0.0, 1e-300, 0.5, np.nextafter(1.0, 0.0)])
DRAWS = ("bernoulli", "bernoulli_logit", "spins")


def backend_file(name, **names):
    return runpy.run_path(str(resources.backends_dir() / name), init_globals={"xp": np, **names})


TABLE = backend_file("cupy_fused.py")["FUSED_KERNELS"]
PRELUDE = backend_file("numpy_prelude.py")


def parameters(text):
    """'T x, T u' -> ['x', 'u']; every kernel is written over the one element type T."""
    names = []
    for parameter in text.split(","):
        kind, name = parameter.split()
        assert kind == "T", f"kernel parameter '{parameter.strip()}' is not of the element type T"
        names.append(name)
    return names


def c_source(ctype: str) -> str:
    """Every kernel as a C function looping over arrays: void pgmdsl_NAME(long n, const T *x_, ..., T *y_)."""
    # <tgmath.h>: exp, log1p, fabs of a float are the float functions, as CUDA's overloads are
    lines = ["#include <tgmath.h>", f"typedef {ctype} T;", ""]
    for name, (inputs, outputs, body, _) in TABLE.items():
        ins, outs = parameters(inputs), parameters(outputs)
        arguments = ", ".join([f"const T *{n}_" for n in ins] + [f"T *{n}_" for n in outs])
        lines += [
            f"void pgmdsl_{name}(long n, {arguments}) {{",
            "    for (long i = 0; i < n; i++) {",
            "        " + " ".join([f"T {n} = {n}_[i];" for n in ins] + [f"T {n};" for n in outs]),
            f"        {body};",
            "        " + " ".join(f"{n}_[i] = {n};" for n in outs),
            "    }",
            "}",
            "",
        ]
    return "\n".join(lines)


class CKernels:
    """The compiled C kernels: kernels(name, *inputs) -> outputs, like the NumPy equivalent."""

    def __init__(self, path, dtype):
        self.library = ctypes.CDLL(str(path))
        self.dtype = np.dtype(dtype)

    def __call__(self, name, *inputs):
        inputs = [np.ascontiguousarray(a, dtype=self.dtype) for a in np.broadcast_arrays(*inputs)]
        outputs = [np.empty_like(inputs[0]) for _ in parameters(TABLE[name][1])]
        pointer = ctypes.POINTER(ctypes.c_float if self.dtype == np.float32 else ctypes.c_double)
        function = getattr(self.library, f"pgmdsl_{name}")
        function.restype = None
        function(ctypes.c_long(inputs[0].size), *(a.ctypes.data_as(pointer) for a in inputs + outputs))
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


@pytest.fixture(scope="module", params=["double", "float"])
def compiled(request, tmp_path_factory):
    compiler = shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler (cc) to check the fused kernels' C source on the CPU")
    ctype = request.param
    folder = tmp_path_factory.mktemp(f"fused_{ctype}")
    source, library = folder / "fused.c", folder / "fused.so"
    source.write_text(c_source(ctype))
    result = subprocess.run(
        [compiler, "-O2", "-shared", "-fPIC", "-Wall", "-Werror=implicit-function-declaration",
         "-o", str(library), str(source), "-lm"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, f"cc failed on the fused kernels' C source:\n{result.stderr}\n{source.read_text()}"
    return CKernels(library, np.float64 if ctype == "double" else np.float32)


def numpy_version(name, *inputs):
    with np.errstate(over="ignore", invalid="ignore"):
        return TABLE[name][3](*inputs)


def tolerance(dtype):
    if dtype == np.float64:
        return dict(rtol=1e-12, atol=0)
    # libm's and NumPy's float exp and log1p may differ in the last bit; subnormal results keep fewer digits
    return dict(rtol=1e-6, atol=np.finfo(np.float32).tiny)


def test_the_table_has_the_hot_kernels():
    assert {"sigmoid", "softplus", "bernoulli", "bernoulli_logit", "spins"} <= set(TABLE)
    for name, (inputs, outputs, body, numpy) in TABLE.items():
        assert parameters(inputs) and parameters(outputs) and body.strip() and callable(numpy)


@pytest.mark.parametrize("name", [n for n in TABLE if n not in DRAWS])
def test_c_source_matches_numpy_version(compiled, name):
    rng = np.random.default_rng(1)
    x = np.concatenate([EXTREMES, rng.normal(0, 10, 2000), rng.uniform(-750, 750, 2000)]).astype(compiled.dtype)
    expected = numpy_version(name, x)
    got = compiled(name, x)
    assert got.dtype == compiled.dtype
    np.testing.assert_allclose(got, expected, **tolerance(compiled.dtype))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(x))


@pytest.mark.parametrize("name", DRAWS)
def test_c_draws_equal_numpy_draws_given_the_same_uniforms(compiled, name):
    rng = np.random.default_rng(2)
    first = EXTREMES if name != "bernoulli" else np.array([0.0, 1e-300, 0.25, 0.5, np.nextafter(1.0, 0.0), 1.0])
    grid_x, grid_u = np.meshgrid(first, EDGE_UNIFORMS)
    random_x = rng.normal(0, 4, 5000) if name != "bernoulli" else rng.random(5000)
    x = np.concatenate([grid_x.ravel(), random_x]).astype(compiled.dtype)
    u = np.concatenate([grid_u.ravel(), rng.random(5000)]).astype(compiled.dtype)
    got = compiled(name, x, u)
    np.testing.assert_array_equal(got, numpy_version(name, x, u))
    assert set(np.unique(got)) <= ({0.0, 1.0} if name != "spins" else {-1.0, 1.0})


def test_numpy_versions_match_the_numpy_prelude():
    """What the GPU computes is what the CPU backend computes (the sigmoid's tail more precisely)."""
    rng = np.random.default_rng(3)
    x = np.concatenate([EXTREMES[np.isfinite(EXTREMES)], rng.normal(0, 10, 2000)])
    with np.errstate(over="ignore"):
        # the prelude's 0.5*tanh(x/2)+0.5 is exact to about 1e-16 absolute: it rounds sigmoid(-50) to 0
        np.testing.assert_allclose(numpy_version("sigmoid", x), PRELUDE["sigmoid"](x), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(numpy_version("softplus", x), PRELUDE["softplus"](x), rtol=1e-12, atol=0)
        np.testing.assert_allclose(numpy_version("log2cosh", x), PRELUDE["log2cosh"](x), rtol=1e-12, atol=0)
    field = rng.normal(0, 3, (50, 40))
    p = PRELUDE["sigmoid"](field)
    for name, argument, prelude in [
        ("bernoulli", p, lambda rng: PRELUDE["bernoulli"](p, rng)),
        ("bernoulli_logit", field, lambda rng: PRELUDE["bernoulli"](PRELUDE["sigmoid"](field), rng)),
        ("spins", field, lambda rng: PRELUDE["spins"](field, rng)),
    ]:
        u = np.random.default_rng(4).random(argument.shape)
        np.testing.assert_array_equal(numpy_version(name, argument, u), prelude(np.random.default_rng(4)))


def test_without_cupy_the_prelude_keeps_the_numpy_versions():
    prelude = {k: v for k, v in PRELUDE.items() if not k.startswith("__") and k != "xp"}
    fused = backend_file("cupy_fused.py", **prelude)
    for name in ("sigmoid", "softplus", "log2cosh", "bernoulli", "spins"):
        assert fused[name] is PRELUDE[name]
    field = np.random.default_rng(5).normal(size=(20, 7))
    np.testing.assert_array_equal(
        fused["bernoulli_logit"](field, np.random.default_rng(6)),
        PRELUDE["bernoulli"](PRELUDE["sigmoid"](field), np.random.default_rng(6)),
    )
