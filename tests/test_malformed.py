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

import pytest

import pgmdsl

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
