"""Property-based robustness: whatever the text, the file name or the names in
it, `pgmdsl.parse` and `pgmdsl.load` either return a Model or raise a DSLError,
never any other exception, and nothing they are given ever runs as code.

(a) random text over an alphabet of the language's characters, keyword
    fragments, whitespace and some unicode;
(b) mutations of the standard-library models: character edits, token edits,
    names swapped for other (and hostile) names, numbers replaced by 0,
    negatives, fractions and huge values; mutants that still load are
    compiled and every kernel called (each returning arrays of its shape);
(c) hostile file names (newlines and Python statements, quotes, comment and
    line-separator characters, NUL, very long names), passed to `parse` and
    given to real files loaded with `load`: each model is compiled and every
    kernel called, and the statements' sentinel file must never appear;
(d) renames: a layer, parameter, let or size of a standard-library model
    renamed to a valid identifier the generated code uses itself (field_h,
    xp, J_u_1, ...). Where the renamed model compiles, every kernel must
    return what the original returns: a rename never changes meaning;
(e) small random models: energies put together from summands of the kinds the
    library uses (biases, couplings, containment, lets, functions of
    parameters) over layers of random unit types, compiled and run as in (b).

Every example runs under a time limit (no hangs), and the whole file stays
under a minute (PGMDSL_FUZZ_EXAMPLES=20000 for a long hunt; the compiling
tests take a fixed fraction of it). Examples are derandomised, so CI sees the
same ones on every run. Any other exception is a compiler bug: fix it and add
the input to the corpus in tests/malformed/.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import signal
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import pgmdsl
from pgmdsl import resources
from pgmdsl.runtime.initialize import constrain

EXAMPLES = int(os.environ.get("PGMDSL_FUZZ_EXAMPLES", "400"))


def _settings(examples: int) -> settings:
    return settings(
        max_examples=max(1, examples),
        deadline=None,  # the time limit below is the hang guard; hypothesis' deadline would be flaky
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Parsing is cheap; compiling and calling every kernel costs about 50 ms an example.
FUZZ_SETTINGS = _settings(EXAMPLES)
COMPILE_SETTINGS = _settings(EXAMPLES // 8)

EXAMPLE_SECONDS = 20  # far above any example's time: only a hang reaches it


@contextlib.contextmanager
def time_limit(seconds: int = EXAMPLE_SECONDS):
    """Fail the example (not hang the suite) if it runs longer than `seconds` (POSIX; elsewhere unbounded)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"one example ran over {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# Standard-library texts with small sizes, so a mutant that still loads loads fast
# (conv_rbm keeps NV - NW + 1 divisible by its pool size, conv_dbn both levels').
SMALL_SIZES = {"C": 1, "NV": 6, "K": 2, "NW": 3, "pool": 2, "K1": 2, "NW1": 3, "pool1": 2, "K2": 2, "NW2": 1, "pool2": 2}


def _small(text: str) -> str:
    return re.sub(r"(\w+): int = \d+", lambda m: f"{m[1]}: int = {SMALL_SIZES.get(m[1], 3)}", text)


LIBRARY = {path.stem: _small(path.read_text(encoding="utf-8")) for path in sorted(resources.models_dir().glob("*.dgm"))}
MODELS = [name for name in LIBRARY if name != "terms"]

KEYWORDS = [
    "model", "visible", "hidden", "input", "param", "let", "energy", "term", "import", "stack",
    "pooled", "into", "int", "binary", "gaussian", "spin", "onehot", "normal", "uniform",
    "identity", "logit_mean", "symmetric", "zero_diagonal", "exp", "log", "softplus",
]
HOSTILE_NAMES = ["__import__", "_x", "lambda", "class", "eval", "exec", "os", "__class__", "None", "match"]
NUMBERS = ["0", "-1", "-7", "1", "2", "3", "0.5", "-0.25", "1e-300", "1e308", "1e999", "99999999999999999999",
           "9" * 400, "0" * 5000 + "3", "10^400", "1e300*1e300", "0.0", "00", "1.", ".5"]
PUNCTUATION = list("[](),:=~+-*/^.\"#") + ["**", "\n", " ", "\t"]
TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+\.?\d*(?:[eE][+-]?\d+)?|\*\*|\S|\n")


def check(text: str, filename: str = "fuzz.dgm") -> None:
    """Parse `text`; a DSLError is fine, and so is success (then the derived views must work too)."""
    with time_limit():
        try:
            model = pgmdsl.parse(text, filename)
        except pgmdsl.DSLError as error:
            str(error)  # rendering the message and excerpt must not fail either
            return
        model.summary()


# ---- (a) random text -------------------------------------------------------

fragments = st.sampled_from(KEYWORDS + HOSTILE_NAMES + NUMBERS + PUNCTUATION + ["v[i]", "W[i,j]", "h[j]", '"terms.dgm"'])
characters = st.characters(codec="utf-8", exclude_categories=("Cs",))
pieces = st.one_of(fragments, st.text(alphabet=characters, max_size=3))


@FUZZ_SETTINGS
@given(st.lists(pieces, max_size=40).map("".join))
def test_random_text_raises_only_dsl_errors(text):
    check(text)


ALPHABET = sorted(set("model visible hidden param energy stack v[i] W[i,j] h[j] =~:(),+-*/^ 0123 _.é中\t\n\"#\x0c\r"))


@FUZZ_SETTINGS
@given(st.text(alphabet=st.sampled_from(ALPHABET), max_size=120))
def test_random_characters_raise_only_dsl_errors(text):
    check(text)


# ---- (b) mutations of the standard library --------------------------------

def _mutate_chars(text: str, data) -> str:
    kind = data.draw(st.sampled_from(["delete", "insert", "duplicate", "swap"]))
    at = data.draw(st.integers(0, max(0, len(text) - 1)))
    if kind == "delete":
        length = data.draw(st.integers(1, 8))
        return text[:at] + text[at + length:]
    if kind == "insert":
        insert = data.draw(st.one_of(fragments, st.text(alphabet=characters, min_size=1, max_size=2)))
        return text[:at] + insert + text[at:]
    if kind == "duplicate":
        length = data.draw(st.integers(1, 40))
        return text[:at] + text[at:at + length] + text[at:]
    other = data.draw(st.integers(0, max(0, len(text) - 1)))
    chars = list(text)
    if chars:
        chars[at], chars[other] = chars[other], chars[at]
    return "".join(chars)


def _mutate_tokens(text: str, data) -> str:
    spans = [m.span() for m in TOKEN.finditer(text)]
    if not spans:
        return text
    start, end = spans[data.draw(st.integers(0, len(spans) - 1))]
    token = text[start:end]
    names = sorted(set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)))
    kind = data.draw(st.sampled_from(["delete", "delete_run", "duplicate", "swap", "name", "number"]))
    if kind == "delete":
        replacement = ""
    elif kind == "delete_run":  # several tokens at once: "normal(0, 0.01)" -> "normal"
        last = min(len(spans) - 1, spans.index((start, end)) + data.draw(st.integers(1, 6)))
        end, replacement = spans[last][1], ""
    elif kind == "duplicate":
        replacement = token + " " + token
    elif kind == "swap":
        other_start, other_end = spans[data.draw(st.integers(0, len(spans) - 1))]
        if other_start < start:
            return text[:other_start] + token + text[other_end:start] + text[other_start:other_end] + text[end:]
        if other_start > start:
            return text[:start] + text[other_start:other_end] + text[end:other_start] + token + text[other_end:]
        replacement = token
    elif kind == "name":
        replacement = data.draw(st.sampled_from(names + KEYWORDS + HOSTILE_NAMES))
    else:
        replacement = data.draw(st.sampled_from(NUMBERS))
        numbers = [m.span() for m in re.finditer(r"\d+\.?\d*(?:[eE][+-]?\d+)?", text)]
        if numbers:
            start, end = numbers[data.draw(st.integers(0, len(numbers) - 1))]
    return text[:start] + replacement + text[end:]


@FUZZ_SETTINGS
@given(st.sampled_from(MODELS), st.data())
def test_mutated_library_models_raise_only_dsl_errors(name, data):
    text = LIBRARY[name]
    for _ in range(data.draw(st.integers(1, 3))):
        mutate = data.draw(st.sampled_from([_mutate_chars, _mutate_tokens, _mutate_tokens]))
        text = mutate(text, data)
    check(text, f"{name}.dgm")


@FUZZ_SETTINGS
@given(st.sampled_from(MODELS), st.data())
def test_library_models_with_changed_numbers_raise_only_dsl_errors(name, data):
    text = LIBRARY[name]
    numbers = list(re.finditer(r"\d+\.?\d*(?:[eE][+-]?\d+)?", text))
    for _ in range(data.draw(st.integers(1, 4))):
        match = numbers[data.draw(st.integers(0, len(numbers) - 1))]
        value = data.draw(st.one_of(st.sampled_from(NUMBERS), st.integers(-5, 10).map(str)))
        text = text[: match.start()] + value + text[match.end():]
        numbers = list(re.finditer(r"\d+\.?\d*(?:[eE][+-]?\d+)?", text))
    check(text, f"{name}.dgm")


def test_library_models_with_small_sizes_load():
    for name in MODELS:
        check(LIBRARY[name], f"{name}.dgm")
        assert pgmdsl.parse(LIBRARY[name], f"{name}.dgm").name == name


# ---- compiling and calling every kernel ------------------------------------

def _unit_values(info: dict, rows: int, rng) -> np.ndarray:
    """Valid values for one layer (LAYERS entry of a generated module): 0/1, +-1, one-hot or real."""
    shape = (rows,) + tuple(info["shape"])
    if info["unit"] == "binary":
        return (rng.random(shape) < 0.5).astype(float)
    if info["unit"] == "spin":
        return np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    if info["unit"] == "onehot":
        return np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    return rng.normal(size=shape)


def _levels(compiled) -> list:
    return list(getattr(compiled, "levels", [compiled]))  # a stack (dbn) is its levels


def exercise(compiled, rename: dict[str, str] | None = None) -> dict:
    """Call every kernel of a compiled model on fixed parameters and states; the results by kernel.

    Parameters and states are drawn in declaration order, so a renamed model gets
    the same values; `rename` (new name -> old name) keys the results by the
    original names, so the two can be compared.
    """
    back = (lambda name: rename.get(name, name)) if rename else (lambda name: name)
    results = {}
    for number, level in enumerate(_levels(compiled)):
        rng = np.random.default_rng(number)
        for param in level.model.params:
            value = constrain(param, rng.normal(scale=0.5, size=param.shape))
            level.params[param.name] = level.xp.asarray(value, dtype=level.dtype)
        state = {name: _unit_values(info, 2, rng) for name, info in level.layers.items() if info["role"] != "pooled"}
        results[number, "energy"] = level.energy(state)
        for summed, (kept, _) in level.free_energies.items():
            key = tuple(sorted(back(n) for n in summed))
            results[number, "free energy", key] = level.free_energy({n: state[n] for n in kept}, summed=summed)
        for layer in level.sampled:
            results[number, "mean", back(layer)] = level.mean(layer, state)
            sample = level.sample_layer(layer, state, level.random(0))
            for kernel, value in (("mean", results[number, "mean", back(layer)]), ("sample", sample)):
                assert value.shape == state[layer].shape, f"{kernel}_{layer} has shape {value.shape}"
        for param, statistic in level.statistics(state).items():
            results[number, "statistics", back(param)] = statistic
    return results


def compile_and_call(model, rename: dict[str, str] | None = None) -> dict:
    """Compile (no cache: every example generates its module) in float64 and call every kernel."""
    return exercise(model.compile(cache=False, dtype="float64"), rename)


def only_dsl_errors(run) -> None:
    """Run `run()` under the time limit; a DSLError is an answer (and must render), anything else a bug."""
    with time_limit():
        try:
            run()
        except pgmdsl.DSLError as error:
            event(f"refused: {type(error).__name__}")  # --hypothesis-show-statistics shows how many ran
            str(error)
            return
    event("compiled and ran")


@COMPILE_SETTINGS
@given(st.sampled_from(MODELS), st.data())
def test_mutated_library_models_that_load_compile_and_run(name, data):
    """The derivation and the generated code see what the checker lets through: mutants that still load."""
    text = LIBRARY[name]
    for _ in range(data.draw(st.integers(1, 2))):
        text = data.draw(st.sampled_from([_mutate_tokens, _mutate_chars]))(text, data)
    only_dsl_errors(lambda: compile_and_call(pgmdsl.parse(text, f"{name}.dgm")))


# ---- (c) hostile file names ------------------------------------------------

SENTINEL = "PGMDSL_FUZZ_SENTINEL"  # environment variable holding the path the payloads try to create
# Python statements that create the sentinel, with no '/' so that they fit in a real file's name.
TOUCH = f'open(__import__("os").environ["{SENTINEL}"], "w")'
SHELL = f'__import__("os").system("touch " + __import__("os").environ["{SENTINEL}"])'
PAYLOADS = [
    f"\n{TOUCH}\n", f"\n{SHELL}\n", f"\nimport os; {TOUCH}\n", f'"""\n{TOUCH}\n"""', f"'''\n{TOUCH}\n'''",
    f'"""; {TOUCH}; """', f"\r{TOUCH}\r", f"\r\n{TOUCH}\r\n#", f"\\\n{TOUCH}\n#", f"\u2028{TOUCH}\u2028",
    f"\x0c\n{TOUCH}\n", f'\n"""\n{TOUCH}\n"""\n', f"{{{TOUCH}}}", f"{{0.__class__}}{TOUCH}", f"%s%r{TOUCH}",
]
NAME_PIECES = PAYLOADS + [
    "\n", "\r", "\r\n", '"""', "'''", '"', "'", "#", "\\", "\\n", "\\x00", "\u2028", "\u2029", "\x0b", "\x0c",
    "\x1c", "\x85", "\x00", "\t", " ", "{", "}", "{0}", "%s", "$HOME", "`id`", "\u202e", "\ufeff", "é", "中", "\U0001f600",
    "rbm", "mcrbm", ".dgm", ".", "..", "/", "-", "x" * 200, "y" * 5000,
    "\udcff",  # a byte that is not UTF-8, as os.listdir reads it back ('surrogateescape')
    "\ud800",  # a lone surrogate no file name can hold
]
hostile_names = st.lists(
    st.one_of(st.sampled_from(NAME_PIECES), st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=3)),
    min_size=1, max_size=6,
).map("".join)


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory):
    """The path the hostile payloads would create: it must never exist."""
    path = tmp_path_factory.mktemp("sentinel") / "pwned"
    previous = os.environ.get(SENTINEL)
    os.environ[SENTINEL] = str(path)
    yield path
    if previous is None:
        del os.environ[SENTINEL]
    else:
        os.environ[SENTINEL] = previous


def ran(sentinel) -> bool:
    """Whether a payload created the sentinel; it is removed, so that the next example starts clean."""
    created = sentinel.exists()
    sentinel.unlink(missing_ok=True)
    return created


@COMPILE_SETTINGS
@given(st.sampled_from(MODELS), hostile_names)
def test_hostile_file_names_given_to_parse_run_nothing(sentinel, name, filename):
    only_dsl_errors(lambda: compile_and_call(pgmdsl.parse(LIBRARY[name], filename)))
    assert not ran(sentinel), f"file name {filename!r} ran code"


def _on_disk(name: str) -> str:
    """`name` made a possible file name: no '/', NUL or unencodable surrogate, at most 250 bytes, not '.' or '..'."""
    name = name.replace("/", "").replace("\x00", "").replace("\ud800", "")
    while len(os.fsencode(name)) > 250:
        name = name[:-1]
    return name if name.strip(".") else name + "x"


@COMPILE_SETTINGS
@given(st.sampled_from(MODELS), hostile_names.map(_on_disk), st.sampled_from([".dgm", ""]))
def test_hostile_file_names_on_disk_run_nothing(sentinel, tmp_path_factory, name, filename, suffix):
    directory = tmp_path_factory.mktemp("names", numbered=True)
    path = directory / (filename + suffix)
    path.write_text(LIBRARY[name], encoding="utf-8")
    only_dsl_errors(lambda: compile_and_call(pgmdsl.load(path)))
    only_dsl_errors(lambda: compile_and_call(pgmdsl.load(str(path))))
    assert not ran(sentinel), f"file name {filename + suffix!r} ran code"


# ---- (d) renames to the generated code's own names -------------------------

PYTHON_NAMES = ("sum", "len", "range", "print", "open", "float", "int", "object", "type", "dict", "list", "tuple",
                "np", "numpy", "math", "sympy", "os", "sys", "self", "cls", "args", "kwargs", "globals")


def _code_names(source: str) -> set[str]:
    """The names a generated module binds or reads: functions, arguments, locals and temporaries (not its prose)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name)
    return {n for n in names if n[0].isalpha()}  # the model's own names are behind '_'


@lru_cache(maxsize=None)
def generated_names(name: str) -> tuple[str, ...]:
    """The identifiers of model `name`'s own generated modules (field_h, J_u_1, t1, statistics...)."""
    levels = _levels(pgmdsl.parse(LIBRARY[name], f"{name}.dgm").compile(cache=False, dtype="float64"))
    return tuple(sorted(set().union(*(_code_names(level.source) for level in levels))))


@lru_cache(maxsize=1)
def every_generated_name() -> tuple[str, ...]:
    """Those of the whole standard library, with builtins and module names a generator might use."""
    return tuple(sorted(set(PYTHON_NAMES).union(*(generated_names(name) for name in MODELS))))


def declared_names(model) -> list[str]:
    """The names a model file declares and uses: layers, parameters, lets and sizes."""
    ir = model.ir
    names = [layer.name for layer in ir.layers] + [p.name for p in ir.params] + [let.name for let in ir.lets]
    return names + [name for name, _ in ir.sizes]


def _word(name: str) -> re.Pattern:
    return re.compile(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])")


@lru_cache(maxsize=None)
def original(name: str) -> tuple[pgmdsl.Model, dict]:
    model = pgmdsl.parse(LIBRARY[name], f"{name}.dgm")
    return model, compile_and_call(model)


@COMPILE_SETTINGS
@given(st.sampled_from(MODELS), st.data())
def test_renames_to_generated_names_do_not_change_meaning(name, data):
    text = LIBRARY[name]
    model, expected = original(name)
    declared = sorted({n for n in declared_names(model) if _word(n).search(text)})
    olds = data.draw(st.lists(st.sampled_from(declared), min_size=1, max_size=3, unique=True), label="renamed")
    # Half of the time a name the generator made from the model's own (field_h, stat_W, J_u_1), where a
    # collision would bite; none that is in the text already, so that nothing is captured: a true rename.
    fresh = [n for n in every_generated_name() if not _word(n).search(text)]
    derived = [n for n in generated_names(name) if set(n.split("_")) & set(declared) and n in fresh]
    targets = st.one_of(st.sampled_from(derived), st.sampled_from(fresh)) if derived else st.sampled_from(fresh)
    news = data.draw(st.lists(targets, min_size=len(olds), max_size=len(olds), unique=True), label="to")
    renamed = text
    for old, new in zip(olds, news):
        renamed = _word(old).sub(new, renamed)
    with time_limit():
        try:
            renamed_model = pgmdsl.parse(renamed, f"{name}.dgm")
            # A stack's levels are models of other files: only its sizes were renamed, its kernels keep their names.
            results = compile_and_call(renamed_model, None if renamed_model.stack else dict(zip(news, olds)))
        except pgmdsl.DSLError as error:
            event(f"refused: {error.message.split(':')[0]}")
            str(error)
            return
    event("compiled and ran")
    assert results.keys() == expected.keys(), "the rename changed which kernels the model has"
    for key, value in expected.items():
        np.testing.assert_allclose(np.asarray(results[key]), np.asarray(value), rtol=1e-9, atol=1e-12, err_msg=str(key))


# ---- (e) small random models ------------------------------------------------

# Summands over layers v, h (and g), each with the letters of what it needs besides v and h: its
# parameters, the layer g, the let u (U_LET).
SUMMANDS = {
    "-a[i]*v[i]": "a", "-b[j]*h[j]": "b", "-v[i]*W[i,j]*h[j]": "W", "v[i]^2/2": "", "(v[i] - a[i])^2/2": "a",
    "-v[i]*h[j]": "", "-u[j]*h[j]": "uW", "h[j]*u[j]^2/2": "uW", "-softplus(a[i])*v[i]": "a", "-exp(b[j])*h[j]": "b",
    "-v[i]*a[i]*h[j]*b[j]": "ab", "-v[i]*U[i,k]*g[k]": "Ug", "-c[k]*g[k]": "cg", "-h[j]*M[j,k]*g[k]": "Mg",
    "v[i]^2*h[j]*b[j]": "b", "(v[i]/exp(e[i]))^2/2": "e", "-h[j]*M[j,k]*g[k]/2": "Mg",
}
PARAMETERS = {
    "a": "param a[nv] ~ normal(0, 1)", "b": "param b[nh] ~ normal(0, 1)", "W": "param W[nv, nh] ~ normal(0, 1)",
    "U": "param U[nv, ng] ~ normal(0, 1)", "c": "param c[ng] ~ normal(0, 1)", "M": "param M[nh, ng] ~ normal(0, 1)",
    "e": "param e[nv] ~ normal(0, 1)",
}
U_LET = "let u[j] = v[i] * W[i,j]"
UNITS = ["binary", "spin", "onehot", "gaussian"]


@st.composite
def random_models(draw) -> str:
    summands = draw(st.lists(st.sampled_from(sorted(SUMMANDS)), min_size=1, max_size=4, unique=True))
    needs = set("".join(SUMMANDS[summand] for summand in summands))
    lines = ["model m(nv: int = 3, nh: int = 2, ng: int = 2)",
             f"visible v[nv]: {draw(st.sampled_from(UNITS))}", f"hidden  h[nh]: {draw(st.sampled_from(UNITS))}"]
    if "g" in needs:
        lines.append(f"hidden  g[ng]: {draw(st.sampled_from(UNITS[:3]))}")
    lines += [PARAMETERS[name] for name in sorted(needs & set(PARAMETERS))]
    if "u" in needs:
        lines.append(U_LET)
    return "\n".join(lines + ["energy = " + " + ".join(summands)]) + "\n"


@COMPILE_SETTINGS
@given(random_models())
def test_small_random_models_compile_and_run_or_are_refused(text):
    only_dsl_errors(lambda: compile_and_call(pgmdsl.parse(text, "random.dgm")))
