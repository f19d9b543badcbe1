"""The malformed-model corpus: every file in tests/malformed/ must fail to load
with exactly the error its first line announces.

Each corpus file starts with a comment

    # expect: LINE:COLUMN: MESSAGE

(or `# expect: OTHER/FILE.dgm:LINE:COLUMN: MESSAGE` when the error lies in a
file it imports, the path relative to tests/malformed/). `{dir}` in MESSAGE
stands for the absolute path of tests/malformed/. Adding a case is adding a
file; files in subfolders (tests/malformed/support/) are helpers, not cases.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import pgmdsl
from pgmdsl import resources

MALFORMED = Path(__file__).resolve().parent / "malformed"
CASES = sorted(MALFORMED.glob("*.dgm"))
EXPECT = re.compile(r"^# expect: (?:(?P<file>[^:\s]+\.dgm):)?(?P<line>\d+):(?P<column>\d+): (?P<message>.+)$")


def expectation(path: Path) -> tuple[Path, int, int, str]:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = EXPECT.match(first)
    assert match, f"{path.name}: the first line must be '# expect: LINE:COLUMN: MESSAGE', got {first!r}"
    where = (MALFORMED / match["file"]).resolve() if match["file"] else path.resolve()
    message = match["message"].replace("{dir}", str(MALFORMED))
    return where, int(match["line"]), int(match["column"]), message


def test_corpus_is_large_enough():
    assert len(CASES) >= 45


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_malformed_file_is_rejected_with_its_expected_error(path: Path):
    where, line, column, message = expectation(path)
    with pytest.raises(pgmdsl.DSLError) as caught:
        pgmdsl.load(path)
    error = caught.value
    assert (error.message, error.line, error.column) == (message, line, column)
    assert Path(error.filename).resolve() == where
    # The rendered form is what the CLI prints: file:line:col: error: message, then a caret excerpt.
    text = str(error)
    assert text.startswith(f"{error.filename}:{line}:{column}: error: {message}")
    excerpt = text.split("\n")[1:3]
    assert len(excerpt) == 2 and "^" in excerpt[1]
    assert excerpt[0] == "    " + where.read_text(encoding="utf-8").split("\n")[line - 1].rstrip("\r")
    assert excerpt[1].index("^") == len("    ") + column - 1


def test_unknown_size_override_is_rejected():
    path = MALFORMED / "support" / "override_target.dgm"
    with pytest.raises(pgmdsl.DSLError) as caught:
        pgmdsl.load(path, nx=3)
    error = caught.value
    assert error.message == "model 'm' has no size 'nx' (its sizes: nv, nh)"
    assert (error.line, error.column) == (2, 7)


def test_unknown_size_override_of_library_model():
    with pytest.raises(pgmdsl.DSLError) as caught:
        pgmdsl.load("rbm", nx=3)
    assert caught.value.message == "model 'rbm' has no size 'nx' (its sizes: nv, nh)"


@pytest.mark.parametrize("value", [0, -2, 2.5, True, "4"])
def test_bad_size_override_values_are_rejected(value):
    with pytest.raises(pgmdsl.DSLError) as caught:
        pgmdsl.load("rbm", nv=value)
    assert caught.value.message == f"size 'nv' must be a positive integer, got {value!r}"


def test_file_without_a_model_is_rejected():
    with pytest.raises(pgmdsl.DSLError) as caught:
        pgmdsl.parse('term bias(b, x) = -b[i] * x[i]\n', "only_terms.dgm")
    assert caught.value.message == "only_terms.dgm: the file defines no model"


def test_missing_file_is_a_dsl_error(tmp_path):
    with pytest.raises(pgmdsl.DSLError) as caught:
        pgmdsl.load(tmp_path / "absent.dgm")
    assert "no such model file or standard-library model" in caught.value.message


def test_term_indices_are_not_captured_by_the_callers_names():
    """Regression: a term's index `k` once read as the calling model's size `k` (L[i, 2])."""
    model = pgmdsl.parse(
        'import "terms.dgm"\n'
        "model m(n: int = 4, k: int = 2)\n"
        "visible v[n]: binary\n"
        "param L[n, n] ~ normal(0, 0.01) : symmetric, zero_diagonal\n"
        "param i[n] = 0\n"
        "energy:\n"
        "    lateral_term: lateral(v, L)\n"
        "    bias_term: bias(i, v)\n",
        "capture.dgm",
    )
    lateral, bias = model.terms
    (summand,) = lateral.summands
    assert dict(summand.extents) == {"i2": 4, "k2": 4}
    assert str(lateral) == "-v[i2]*L[i2, k2]*v[k2]/2"
    assert str(bias) == "-i[i2]*v[i2]"


def test_standard_library_still_loads():
    for name in ["rbm", "gbrbm", "mcrbm", "conv_rbm", "bm", "dbm", "dbn", "class_rbm", "crbm"]:
        pgmdsl.load(name)


def test_long_sum_below_the_depth_limit_loads():
    """The parser's depth limit (corpus: expression_too_deep) leaves room for long energies."""
    energy = " - ".join(["a[i]*v[i]"] * 150)
    model = pgmdsl.parse(f"model m(nv: int = 4)\nvisible v[nv]: binary\nparam a[nv] = 0\nenergy = {energy}\n", "long.dgm")
    assert len(model.terms) == 150
    model.summary()


def test_chain_of_lets_each_used_twice_compiles_in_linear_time():
    """Regression: looking through lets was exponential (2^n for n lets each using the next twice)."""
    n = 30
    lets = "\n".join(f"let u{k}[i] = u{k + 1}[i] + u{k + 1}[i] * u{k + 1}[i]" for k in range(n))
    params = "\n".join(f"let p{k}[i] = p{k + 1}[i] + p{k + 1}[i]" for k in range(n))
    model = pgmdsl.parse(
        f"model m(nv: int = 4)\nvisible v[nv]: binary\nparam a[nv] = 0\n{lets}\nlet u{n}[i] = v[i]\n"
        f"{params}\nlet p{n}[i] = a[i]\nenergy = -u0[i] - p0[i] * v[i]\n",
        "chain.dgm",
    )
    assert model.schedule and model.graph.number_of_nodes() == 3
    model.summary()


def test_size_override_suggests_a_close_name():
    with pytest.raises(pgmdsl.DSLError) as caught:
        pgmdsl.load("rbm", nvv=3)
    assert caught.value.message == "model 'rbm' has no size 'nvv' (its sizes: nv, nh) (did you mean 'nv'?)"


def test_a_size_override_too_large_is_refused_before_allocating():
    with pytest.raises(pgmdsl.DSLError) as caught:
        pgmdsl.load("rbm", nv=100_000, nh=50_000)
    assert caught.value.message == ("'W' would have 5,000,000,000 entries (shape (100000, 50000)), more than the "
                                    "2^31 allowed: check the sizes")
    assert (caught.value.line, caught.value.column) == (8, 9)


# ---- what the public entry points accept ------------------------------------

RBM_TEXT = (resources.models_dir() / "rbm.dgm").read_text(encoding="utf-8")


@pytest.mark.parametrize("text", [RBM_TEXT.encode("utf-8"), None, 123, [RBM_TEXT]], ids=["bytes", "None", "int", "list"])
def test_parse_takes_text_only(text):
    with pytest.raises(pgmdsl.DSLError) as caught:
        pgmdsl.parse(text)
    assert caught.value.message.startswith("parse takes the model's text as a str, got ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("filename", [b"rbm.dgm", None, 3], ids=["bytes", "None", "int"])
def test_parse_takes_a_str_file_name(filename):
    with pytest.raises(pgmdsl.DSLError) as caught:
        pgmdsl.parse(RBM_TEXT, filename)
    assert caught.value.message.startswith("parse takes the file name as a str, got ")


def test_parse_takes_a_path_as_its_file_name():
    assert pgmdsl.parse(RBM_TEXT, Path("models") / "rbm.dgm").filename == str(Path("models") / "rbm.dgm")


@pytest.mark.parametrize("text, line, column", [
    (RBM_TEXT + "# caf\udce9, read with errors='surrogateescape'\n", 12, 6),
    (RBM_TEXT.replace("param W", "param W\ud800"), 8, 8),
], ids=["comment", "name"])
def test_a_lone_surrogate_in_the_text_is_one_error_at_its_place(text, line, column):
    with pytest.raises(pgmdsl.DSLError) as caught:
        pgmdsl.parse(text, "surrogate.dgm")
    error = caught.value
    assert error.message.startswith("lone surrogate ") and (error.line, error.column) == (line, column)
    str(error).encode("utf-8")  # the message and its excerpt can be printed: '?' stands in the excerpt


@pytest.mark.parametrize("argument", [b"rbm", None, 3, ["rbm"]], ids=["bytes", "None", "int", "list"])
def test_load_takes_a_name_or_a_path_only(argument):
    with pytest.raises(pgmdsl.DSLError) as caught:
        pgmdsl.load(argument)
    assert caught.value.message.startswith("load takes a standard-library name or a .dgm path (str or Path), got ")


@pytest.mark.parametrize("name", ["x" * 5000, "/tmp/" + "x" * 300 + ".dgm", "rb\x00m"], ids=["long", "long-part", "nul"])
def test_load_of_a_name_no_file_can_have_is_no_such_model(name):
    with pytest.raises(pgmdsl.DSLError) as caught:
        pgmdsl.load(name)
    assert caught.value.message.startswith("no such model file or standard-library model: ")


@pytest.mark.parametrize("value, shown", [(10**30, "about 10^30"), (10**5000, "about 10^5000"), (2**31 + 1, "2,147,483,649")],
                         ids=["10^30", "10^5000", "2^31+1"])
def test_a_size_override_beyond_any_axis_is_refused(value, shown):
    with pytest.raises(pgmdsl.DSLError) as caught:
        pgmdsl.load("rbm", nh=value)
    assert caught.value.message == f"size 'nh' is {shown}, more than the 2^31 allowed: check the sizes"


def test_a_huge_negative_size_override_is_refused_in_one_line():
    with pytest.raises(pgmdsl.DSLError) as caught:
        pgmdsl.load("rbm", nh=-10**5000)
    assert caught.value.message == "size 'nh' must be a positive integer, got about -10^5000"


def test_a_derived_size_that_is_not_positive_names_the_sizes_it_came_from():
    with pytest.raises(pgmdsl.DSLError) as caught:
        pgmdsl.load("conv_rbm", NV=4)
    assert caught.value.message == "size 'NH' must be a positive integer, got -4 (from NV=4, NW=9)"


def test_a_numpy_integer_is_a_size():
    assert pgmdsl.load("rbm", nv=np.int64(5), nh=np.int32(3)).sizes == {"nv": 5, "nh": 3}


def test_a_number_with_thousands_of_leading_zeros_is_its_value():
    """Regression: int() refuses strings of over 4300 digits, zeros included (a ValueError from the transformer)."""
    model = pgmdsl.parse(RBM_TEXT.replace("nv: int = 784", "nv: int = " + "0" * 5000 + "7"), "zeros.dgm")
    assert model.sizes["nv"] == 7


def test_a_power_of_a_sum_too_long_to_multiply_out_is_refused():
    """Regression: sympy multiplied (v[i] + a[i])^100000 out to apply v^2 = v to binary units, for ever."""
    text = RBM_TEXT.replace("energy = ", "energy = v[i]^2 * (v[i] + a[i])^100000 ")
    with pytest.raises(pgmdsl.DSLError) as caught:
        pgmdsl.parse(text, "power.dgm", nv=4, nh=3).compile(cache=False)
    assert caught.value.message.startswith("multiplying out the summand would make more than 100 terms")
