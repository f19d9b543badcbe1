"""Property-based robustness of the front end: whatever the text, `pgmdsl.parse`
either returns a Model or raises a DSLError, never any other exception.

(a) random text over an alphabet of the language's characters, keyword
    fragments, whitespace and some unicode;
(b) mutations of the standard-library models: character edits, token edits,
    names swapped for other (and hostile) names, numbers replaced by 0,
    negatives, fractions and huge values.

Any other exception is a compiler bug: fix it and add the input to the corpus
in tests/malformed/.
"""

from __future__ import annotations

import os
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pgmdsl
from pgmdsl import resources

# PGMDSL_FUZZ_EXAMPLES=20000 for a long hunt; the default keeps the file well under 30 s.
FUZZ_SETTINGS = settings(
    max_examples=int(os.environ.get("PGMDSL_FUZZ_EXAMPLES", "500")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Standard-library texts with small sizes, so a mutant that still loads loads fast
# (conv_rbm keeps NV - NW + 1 divisible by its pool size).
SMALL_SIZES = {"C": 1, "NV": 6, "K": 2, "NW": 3, "pool": 2}


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
           "9" * 400, "10^400", "1e300*1e300", "0.0", "00", "1.", ".5"]
PUNCTUATION = list("[](),:=~+-*/^.\"#") + ["**", "\n", " ", "\t"]
TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+\.?\d*(?:[eE][+-]?\d+)?|\*\*|\S|\n")


def check(text: str, filename: str = "fuzz.dgm") -> None:
    """Parse `text`; a DSLError is fine, and so is success (then the derived views must work too)."""
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
