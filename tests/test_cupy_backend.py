"""The CuPy backend, on a machine without a GPU.

- With PGMDSL_CUPY_STANDIN=numpy (the documented test seam) the generated
  CuPy module runs on NumPy: it must give what the NumPy backend gives.
- A stand-in `cupy` module (NumPy underneath, with a CPU ElementwiseKernel
  that evaluates each kernel's NumPy equivalent) runs the prelude's CuPy
  branch: the fused kernels and the as_strided windows.
- The CuPy source is the NumPy source but for the array-module lines, the
  header and the appended fused-kernel prelude.
- Without CuPy, the backend says how to install it.
"""

import ast
import sys
import types
from functools import lru_cache

import numpy as np
import pytest

import pgmdsl
from pgmdsl import resources, units
from pgmdsl.codegen import backends
from pgmdsl.codegen.load import load_module
from pgmdsl.compiler import generate_source
from pgmdsl.runtime import gpu
from pgmdsl.runtime.compiled import Compiled
from pgmdsl.runtime.initialize import constrain

import exact

SIZES = exact.SMALLEST_SIZES
ROWS = 7
EXACT = dict(rtol=1e-12, atol=0)


@pytest.fixture
def standin(monkeypatch):
    monkeypatch.setenv("PGMDSL_CUPY_STANDIN", "numpy")


def test_every_standard_model_but_the_stack_is_covered():
    assert set(SIZES) == set(resources.standard_models()) - {"dbn", "conv_dbn"}  # stacks: their levels are here


@lru_cache(maxsize=None)
def model(name):
    return pgmdsl.load(name, **SIZES[name])


def with_params(c, name):
    """The same random parameters (float64, constrained) for every backend."""
    rng = np.random.default_rng(sum(map(ord, name)))
    for param in c.model.params:
        c.params[param.name] = c.xp.asarray(constrain(param, rng.normal(0, 0.5, param.shape)))
    return c


def compiled(name, backend):
    return with_params(model(name).compile(backend=backend, dtype="float64", cache=False), name)


def random_state(c, rows, rng):
    """A state of every non-pooled layer: valid values of each unit type."""
    state = {}
    for name, info in c.layers.items():
        if info["role"] == "pooled":
            continue
        shape = (rows,) + tuple(info["shape"])
        if info["role"] == "input":
            state[name] = rng.normal(size=shape)
        else:  # a random state of the unit type (uniform over discrete values, normal or half-normal)
            state[name] = np.asarray(units.get(info["unit"]).initial(shape, rng, np), dtype=float)
    return state


def check_same_kernels(a, b, name, same_draws):
    """a and b (two compilations of one model) agree on every kernel, on the same random states."""
    rng = np.random.default_rng(11)
    data, sampled = random_state(a, ROWS, rng), random_state(a, ROWS, rng)
    np.testing.assert_allclose(a.energy(data), b.energy(data), **EXACT)
    kept = {k: data[k] for k in a.kept}
    np.testing.assert_allclose(a.free_energy(kept), b.free_energy(kept), **EXACT)
    assert a.sampled == b.sampled and a.sampled
    for layer in a.sampled:
        np.testing.assert_allclose(a.mean(layer, data), b.mean(layer, data), **EXACT, err_msg=f"{name}: mean {layer}")
        draw_a = a.sample_layer(layer, data, np.random.default_rng(12))
        draw_b = b.sample_layer(layer, data, np.random.default_rng(12))
        assert draw_a.shape == draw_b.shape == data[layer].shape
        if same_draws:
            np.testing.assert_array_equal(draw_a, draw_b, err_msg=f"{name}: sample {layer}")
        if hasattr(a.module, f"draw_{layer}"):  # a draw from conditional means already computed
            mean = a.mean(layer, data)
            draw_a = getattr(a.module, f"draw_{layer}")(mean, np.random.default_rng(13))
            draw_b = getattr(b.module, f"draw_{layer}")(mean, np.random.default_rng(13))
            assert draw_a.shape == mean.shape
            if same_draws:
                np.testing.assert_array_equal(draw_a, draw_b, err_msg=f"{name}: draw {layer}")
    weights = rng.random(ROWS)
    for state in (kept, data):
        stats_a, stats_b = a.statistics(state, weights), b.statistics(state, weights)
        assert stats_a.keys() == stats_b.keys()
        for param in stats_a:
            np.testing.assert_allclose(stats_a[param], stats_b[param], **EXACT, err_msg=f"{name}: statistic {param}")
    grad_a, grad_b = a.gradient(kept, sampled), b.gradient(kept, sampled)
    assert grad_a.keys() == grad_b.keys() == {p.name for p in a.model.params}
    for param in grad_a:
        np.testing.assert_allclose(grad_a[param], grad_b[param], **EXACT, err_msg=f"{name}: gradient {param}")


# ---- the stand-in: the CuPy module's code on NumPy ----

@pytest.mark.parametrize("name", SIZES)
def test_standin_cupy_module_equals_numpy_module(standin, name):
    cupy_version, numpy_version = compiled(name, "cupy"), compiled(name, "numpy")
    assert cupy_version.backend == "cupy" and cupy_version.xp is np
    check_same_kernels(cupy_version, numpy_version, name, same_draws=True)


# ---- a stand-in cupy module: the prelude's CuPy branch on the CPU ----

class CpuElementwiseKernel:
    """cupy.ElementwiseKernel's contract on NumPy: typed inputs broadcast, one T output.

    The operation (C) is looked up in the module's FUSED_KERNELS and its NumPy
    equivalent is evaluated (tests/test_fused_kernels.py checks that the two agree).
    """

    calls: list = []

    def __init__(self, in_params, out_params, operation, name):
        self.inputs = [p.split() for p in in_params.split(",")]
        self.outputs = [p.split() for p in out_params.split(",")]
        self.operation, self.name = operation, name
        self.table = None

    def __call__(self, *args):
        assert len(args) == len(self.inputs), f"{self.name} takes {len(self.inputs)} arrays, got {len(args)}"
        dtypes = {a.dtype for a in args}
        assert all(isinstance(a, np.ndarray) for a in args) and len(dtypes) == 1, f"{self.name}: mixed {dtypes}"
        assert dtypes <= {np.dtype(np.float32), np.dtype(np.float64)}
        type(self).calls.append(self.name)
        numpy_version = next(entry[3] for entry in self.table.values() if entry[2] == self.operation)
        out = numpy_version(*args)
        assert out.dtype == args[0].dtype and out.shape == np.broadcast_shapes(*(a.shape for a in args))
        return out


def fake_cupy():
    """A module named cupy: NumPy's functions, and ElementwiseKernel on the CPU."""
    module = types.ModuleType("cupy")
    module.__getattr__ = lambda attribute: getattr(np, attribute)  # PEP 562: everything else is NumPy's
    module.ElementwiseKernel = CpuElementwiseKernel
    return module


@pytest.fixture
def cupy_on_cpu(monkeypatch):
    monkeypatch.delenv("PGMDSL_CUPY_STANDIN", raising=False)
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy())
    import scipy.special  # cupyx.scipy.special's functions take and give arrays as scipy's do

    for name, module in (("cupyx", types.ModuleType("cupyx")), ("cupyx.scipy", types.ModuleType("cupyx.scipy")),
                         ("cupyx.scipy.special", scipy.special)):
        monkeypatch.setitem(sys.modules, name, module)
    sys.modules["cupyx"].scipy = sys.modules["cupyx.scipy"]
    sys.modules["cupyx.scipy"].special = scipy.special
    monkeypatch.setattr(CpuElementwiseKernel, "calls", [])


def compiled_on_fake_cupy(name):
    source = generate_source(model(name), "cupy", "float64")
    module = load_module(source, f"{name}-fake-cupy")
    assert module.xp.__name__ == "cupy"
    for kernel in module._FUSED.values():
        kernel.table = module.FUSED_KERNELS
    return with_params(Compiled(model(name), module, source, "cupy", "float64"), name)


@pytest.mark.parametrize("name", SIZES)
def test_fused_branch_equals_numpy_module(cupy_on_cpu, name):
    fused, numpy_version = compiled_on_fake_cupy(name), compiled(name, "numpy")
    assert fused.module.sigmoid is not fused.module._UNFUSED["sigmoid"]
    check_same_kernels(fused, numpy_version, name, same_draws=True)
    expected = set()
    for layer in fused.sampled:
        info = fused.layers[layer]
        if info["unit"] == "binary" and info["update"] != "pooled":
            expected |= {"pgmdsl_sigmoid", "pgmdsl_bernoulli_logit"}
            if layer in fused.marginalised:
                expected.add("pgmdsl_softplus")
        if info["unit"] == "spin":
            expected |= {"pgmdsl_spins"} | ({"pgmdsl_log2cosh"} if layer in fused.marginalised else set())
    assert expected and expected <= set(CpuElementwiseKernel.calls)


def test_fused_draws_take_uniforms_of_the_field_shape(cupy_on_cpu):
    module = compiled_on_fake_cupy("rbm").module
    field = np.random.default_rng(0).normal(0, 2, (6, 5))
    for draw, values in (("bernoulli_logit", {0.0, 1.0}), ("spins", {-1.0, 1.0})):
        got = getattr(module, draw)(field, np.random.default_rng(1))
        u = np.random.default_rng(1).random(field.shape)
        np.testing.assert_array_equal(got, module.FUSED_KERNELS[draw][3](field, u))
        assert set(np.unique(got)) <= values
    np.testing.assert_array_equal(
        module.bernoulli_logit(field, np.random.default_rng(2)),
        module._UNFUSED["bernoulli"](module._UNFUSED["sigmoid"](field), np.random.default_rng(2)),
    )
    halves = field.astype(np.float16)  # no kernel for float16: the NumPy prelude's version
    CpuElementwiseKernel.calls.clear()
    assert module.sigmoid(halves).dtype == np.float16 and not CpuElementwiseKernel.calls


# ---- the source ----

def statements(source):
    return [ast.dump(node) for node in ast.parse(source).body]


def without_unit_modules(rest: list, backend: str) -> list:
    """The statements but the imports of the modules a unit type's helpers use (each backend names its own)."""
    imports = set(statements("\n".join(backends.backend(backend).modules.values())))
    return [statement for statement in rest if statement not in imports]


@pytest.mark.parametrize("name", SIZES)
def test_cupy_source_is_numpy_source_with_its_array_module_and_fused_prelude(name):
    numpy_source = generate_source(model(name), "numpy", "float64")
    cupy_source = generate_source(model(name), "cupy", "float64")
    fused = statements((resources.backends_dir() / "cupy_fused.py").read_text())
    prelude = statements((resources.backends_dir() / "numpy_prelude.py").read_text())
    numpy_tree, cupy_tree = ast.parse(numpy_source), ast.parse(cupy_source)
    numpy_module, cupy_module = numpy_tree.body, cupy_tree.body

    # the header: only the backend's name differs
    numpy_doc, cupy_doc = ast.get_docstring(numpy_tree), ast.get_docstring(cupy_tree)
    assert "backend cupy" in cupy_doc and cupy_doc == numpy_doc.replace("numpy", "cupy")
    # the array module
    assert ast.unparse(numpy_module[1]) == "import numpy as xp"
    assert [ast.unparse(node) for node in cupy_module[1:3]] == [
        "from pgmdsl.runtime.gpu import array_module", "xp = array_module()"]
    # the rest: DTYPE, the NumPy prelude, (the fused prelude,) then the model's functions, statement by statement
    numpy_rest = without_unit_modules(statements(numpy_source)[2:], "numpy")
    cupy_rest = without_unit_modules(statements(cupy_source)[3:], "cupy")
    split = 1 + len(prelude)
    assert numpy_rest[1:split] == prelude
    assert cupy_rest == numpy_rest[:split] + fused + numpy_rest[split:]
    functions = [node.name for node in numpy_module[2 + split:] if isinstance(node, ast.FunctionDef)]
    assert {"energy", "free_energy", "statistics"} <= set(functions)


# ---- without CuPy ----

def test_without_cupy_the_backend_says_how_to_install_it(monkeypatch):
    monkeypatch.delenv("PGMDSL_CUPY_STANDIN", raising=False)
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy raises ImportError, installed or not
    with pytest.raises(RuntimeError, match=r"pip install cupy-cuda12x.*PGMDSL_CUPY_STANDIN=numpy"):
        gpu.array_module()
    source = generate_source(model("rbm"), "cupy", "float32")  # generating needs no GPU
    assert "xp = array_module()" in source
    with pytest.raises(RuntimeError, match=r"pip install cupy"):
        model("rbm").compile(backend="cupy", dtype="float32", cache=False)


def test_standin_takes_only_numpy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setenv("PGMDSL_CUPY_STANDIN", "yes")
    with pytest.raises(RuntimeError, match="PGMDSL_CUPY_STANDIN=numpy"):
        gpu.array_module()
    monkeypatch.setenv("PGMDSL_CUPY_STANDIN", "numpy")
    assert gpu.array_module() is np


def test_cupy_without_a_gpu_fails_at_compile_time(monkeypatch):
    class CUDARuntimeError(RuntimeError):
        pass

    def no_device():
        raise CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    broken = types.ModuleType("cupy")
    broken.__version__ = "13.0.0"
    broken.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_device))
    monkeypatch.delenv("PGMDSL_CUPY_STANDIN", raising=False)
    monkeypatch.setitem(sys.modules, "cupy", broken)
    with pytest.raises(RuntimeError, match=r"no usable NVIDIA GPU.*cudaErrorNoDevice"):
        gpu.array_module()


def test_to_host_copies_device_arrays_and_passes_numpy_ones_through():
    array = np.arange(3.0)
    assert gpu.to_host(array) is array

    class DeviceArray:  # what CuPy arrays offer: .get() copies to the host
        def get(self):
            return np.array([1.0, 2.0])

    np.testing.assert_array_equal(gpu.to_host(DeviceArray()), [1.0, 2.0])
