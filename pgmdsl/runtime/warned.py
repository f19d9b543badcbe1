"""The warnings raised while an epoch trains: held back, then folded into a divergence message or shown.

Why: a diverging run makes numpy warn at every overflowing kernel (overflow
in exp, invalid value in matmul, ...), dozens of lines on the terminal
before the one line that says what happened. Holding an epoch's warnings
lets the trainer put what they say into that line when the epoch diverges,
and show them as usual (each once a run) when it does not.
"""

from __future__ import annotations

import linecache
import re
import warnings
from contextlib import contextmanager

_NUMPY = re.compile(r"(?P<what>.+) encountered in (?P<where>\w+)")  # numpy's floating-point warnings


@contextmanager
def held():
    """Hold back the warnings raised inside (the filters still apply); yields the list they gather in."""
    with warnings.catch_warnings(record=True) as caught:
        yield caught


def summary(caught) -> str:
    """What the held RuntimeWarnings said, in a few words: 'overflow in exp and divide, invalid value in matmul'.

    numpy's "X encountered in F" messages are grouped by X; the others are
    kept as they are. The function (of generated code, or any source in
    linecache) where the first was raised follows: '(first in mean_v)'.
    "" when there were none.
    """
    numerical = [w for w in caught if issubclass(w.category, RuntimeWarning)]
    groups: dict[str, list[str]] = {}
    for w in numerical:
        text = str(w.message)
        match = _NUMPY.fullmatch(text)
        what, where = (match["what"], match["where"]) if match else (text, None)
        places = groups.setdefault(what, [])
        if where is not None and where not in places:
            places.append(where)
    if not groups:
        return ""
    parts = [f"{what} in {_listed(places)}" if places else what for what, places in groups.items()]
    function = _function(numerical[0].filename, numerical[0].lineno)
    return ", ".join(parts) + (f" (first in {function})" if function else "")


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _function(filename: str, lineno: int) -> str | None:
    """The function of a source file (generated modules are in linecache) holding line `lineno`, if any."""
    lines = linecache.getlines(filename)
    for line in reversed(lines[:lineno]):
        match = re.match(r"\s*def (\w+)", line)
        if match:
            return match[1]
    return None


def release(caught, shown: set) -> None:
    """Show the held warnings as the filters would have, each (category, message, place) once per `shown` set."""
    for w in caught:
        key = (w.category, str(w.message), w.filename, w.lineno)
        if key not in shown:
            shown.add(key)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
