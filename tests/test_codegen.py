"""Generated modules: readable source, the disk cache, linecache, the compile command."""

import linecache
import traceback

import numpy as np
import pytest

import pgmdsl
from pgmdsl import compiler
from pgmdsl.cli import main
from pgmdsl.errors import DSLError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PGMDSL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_generated_rbm_module_reads_like_hand_written_code():
    source = compiler.generate_source(pgmdsl.load("rbm", nv=6, nh=4), "numpy", "float32")
    assert source.startswith('"""pgmdsl generated module: do not edit.\n\nmodel rbm(nv=6, nh=4) from rbm.dgm\n')
    assert "regenerate: pgmdsl compile rbm --set nv=6 --set nh=4 --backend numpy --dtype float32" in source
    assert "    # v_W_h: -v[i]*W[i, j]*h[j]  (rbm.dgm:11)\n" in source
    assert "    field = field + _v @ _W\n" in source  # model names behind the prefix no .dgm name has
    assert "    field = field + _h @ _W.T\n" in source
    assert "    stat_W = _v.T @ t1\n" in source
    compile(source, "rbm", "exec")


def test_compile_uses_the_disk_cache(cache, monkeypatch):
    model = pgmdsl.load("rbm", nv=5, nh=3)
    first = model.compile()
    assert len(list(cache.glob("*.py"))) == 1
    class Generated(Exception):
        pass

    def generate(*args, **kwargs):
        raise Generated

    monkeypatch.setattr(compiler, "generate_source", generate)
    second = model.compile()  # from the cache: generate_source is not called
    assert second.source == first.source
    with pytest.raises(Generated):
        pgmdsl.load("rbm", nv=6, nh=3).compile()  # other sizes, another key: it must generate


def test_cache_key_changes_with_sizes_dtype_and_backend():
    from pgmdsl.codegen.load import cache_key

    small, large = pgmdsl.load("rbm", nv=5), pgmdsl.load("rbm", nv=6)
    keys = {cache_key(small, "numpy", "float32"), cache_key(large, "numpy", "float32"),
            cache_key(small, "numpy", "float64"), cache_key(small, "cupy", "float32")}
    assert len(keys) == 4


def test_tracebacks_show_generated_lines(cache):
    c = pgmdsl.load("rbm", nv=5, nh=3).compile(cache=False)
    try:
        c.module.field_h(c.params, {"v": np.ones((2, 7))})  # wrong width: fails inside the module
    except ValueError:
        text = traceback.format_exc()
    assert "field = field + _v @ _W" in text
    filename = c.module.__file__
    assert linecache.getline(filename, 1).startswith('"""pgmdsl generated module')


def test_compiled_contract():
    c = pgmdsl.load("rbm", nv=5, nh=3).compile(dtype="float64", cache=False)
    assert set(c.params) == {"W", "a", "b"} and c.params["W"].dtype == np.float64
    assert c.kept == ("v",) and c.marginalised == ("h",)
    rng = np.random.default_rng(0)
    v = rng.integers(0, 2, (4, 5)).astype(float)
    h = c.sample_layer("h", {"v": v}, rng)
    assert h.shape == (4, 3) and set(np.unique(h)) <= {0.0, 1.0}
    assert c.energy({"v": v, "h": h}).shape == (4,)
    assert c.free_energy({"v": v[0]}).shape == (1,)  # one row without a batch axis
    gradient = c.gradient({"v": v}, {"v": 1 - v})
    assert {k: g.shape for k, g in gradient.items()} == {"W": (5, 3), "a": (5,), "b": (3,)}


def test_compiled_errors_are_clear():
    c = pgmdsl.load("rbm", nv=5, nh=3).compile(cache=False)
    with pytest.raises(DSLError, match="has no layer 'x'"):
        c.free_energy({"x": np.zeros((1, 5))})
    with pytest.raises(DSLError, match=r"layer 'v' has shape \(5,\) per row, got an array of shape \(2, 4\)"):
        c.free_energy({"v": np.zeros((2, 4))})
    with pytest.raises(DSLError, match="the state lacks layer v"):
        c.mean("h", {})
    with pytest.raises(DSLError, match="not a sampled layer"):
        c.mean("W", {"v": np.zeros((1, 5))})
    with pytest.raises(DSLError, match="dtype must be one of"):
        compiler.generate_source(pgmdsl.load("rbm", nv=5), "numpy", "int8")
    with pytest.raises(DSLError, match="unknown backend 'tpu'"):
        compiler.generate_source(pgmdsl.load("rbm", nv=5), "tpu", "float32")


def test_symmetric_gradients_stay_symmetric():
    c = pgmdsl.load("bm", n=4, nh=2).compile(dtype="float64", cache=False)
    rng = np.random.default_rng(1)
    data = {"v": rng.integers(0, 2, (6, 4)).astype(float), "h": rng.integers(0, 2, (6, 2)).astype(float)}
    model = {"v": rng.integers(0, 2, (6, 4)).astype(float), "h": rng.integers(0, 2, (6, 2)).astype(float)}
    gradient = c.gradient(data, model)
    np.testing.assert_allclose(gradient["L"], gradient["L"].T)
    assert np.all(np.diag(gradient["L"]) == 0)
    assert np.all(np.diag(c.params["L"]) == 0) and np.allclose(c.params["L"], c.params["L"].T)


def test_compile_command_prints_or_writes_the_module(tmp_path, capsys):
    assert main(["compile", "rbm", "--set", "nv=6", "--set", "nh=4"]) == 0
    assert "def free_energy(p, s, beta=1.0, fields=None, precision_offsets=None):" in capsys.readouterr().out
    out = tmp_path / "rbm_module.py"
    assert main(["compile", "gbrbm", "--set", "nv=3", "--dtype", "float64", "-o", str(out)]) == 0
    assert "DTYPE = xp.float64" in out.read_text()
    assert main(["compile", "dbn"]) == 1
    assert "is a stack" in capsys.readouterr().err


@pytest.mark.parametrize("name, sizes", [("rbm", dict(nv=5, nh=3)), ("dbm", dict(nv=4, n1=3, n2=2)),
                                         ("conv_rbm", dict(C=1, NV=4, K=2, NW=3, pool=2))])
def test_free_energy_and_samplers_take_fields_computed_already(name, sizes):
    """AIS passes the summed-out layers' fields it computed once: the results must be those computed inside."""
    c = pgmdsl.load(name, **sizes).compile(dtype="float64", cache=False)
    rng = np.random.default_rng(0)
    for param in c.model.params:
        c.params[param.name] = rng.normal(0, 0.5, param.shape)
    state = {n: (rng.random((4,) + tuple(c.layers[n]["shape"])) < 0.5).astype(float) for n in c.kept}
    module = c.module
    fields = {n: np.broadcast_to(getattr(module, f"field_{n}")(c.params, state), (4,) + tuple(c.layers[n]["shape"]))
              for n in c.marginalised}
    beta = np.array([0.3, 1.0])
    np.testing.assert_allclose(module.free_energy(c.params, state, beta, fields=fields),
                               module.free_energy(c.params, state, beta), rtol=0, atol=1e-12)
    for n in c.marginalised:
        if c.layers[n]["update"] == "unitwise":
            continue
        given = getattr(module, f"sample_{n}")(c.params, state, np.random.default_rng(5), 0.7, None, field=fields[n])
        computed = getattr(module, f"sample_{n}")(c.params, state, np.random.default_rng(5), 0.7, None)
        np.testing.assert_array_equal(given, computed)
        shifted = getattr(module, f"sample_{n}")(c.params, state, np.random.default_rng(5), 0.7, None,
                                                 field=fields[n] + 50.0)
        assert not np.array_equal(shifted, computed)  # the given field is the one used


def test_a_field_constant_along_its_layer_has_the_layers_shape():
    """-v[i]*h[j]: v's field is the same for every i, and its means still have one entry per unit."""
    text = ("model m(nv: int = 3, nh: int = 2)\nvisible v[nv]: binary\nhidden h[nh]: binary\n"
            "param b[nh] = 0\nlet u[j] = v[i]*b[j]\nenergy = -v[i]*h[j] - u[j]*h[k]\n")
    c = pgmdsl.parse(text).compile(cache=False, dtype="float64")
    state = {"v": np.ones((2, 3)), "h": np.array([[1.0, 0.0], [1.0, 1.0]])}
    np.testing.assert_allclose(c.mean("v", state), 1 / (1 + np.exp(-np.array([[1.0] * 3, [2.0] * 3]))))
    assert c.sample_layer("h", state, np.random.default_rng(0)).shape == (2, 2)


def test_a_gaussian_layer_without_a_linear_term_samples_in_the_models_dtype():
    text = ("model m(nv: int = 3, nh: int = 2)\nvisible v[nv]: gaussian\nhidden h[nh]: binary\n"
            "param e[nv] ~ normal(0, 1)\nenergy = (v[i]/exp(e[i]))^2/2 - h[j]\n")
    c = pgmdsl.parse(text).compile(cache=False)
    draw = c.sample_layer("v", {"h": np.zeros((4, 2))}, np.random.default_rng(0))
    assert draw.shape == (4, 3) and draw.dtype == np.float32
