"""Which identifiers a .dgm file may define.

Names end up in generated Python, so anything that could mean something to
Python (keywords, builtins-looking dunders, private names) is refused here,
before any later stage sees it. The code generator still prefixes every name
it emits; this check is the first of two walls.
"""

from __future__ import annotations

import difflib
import keyword

from ..errors import DSLNameError
from ..frontend.ast import Identifier
from .expr import FUNCTIONS

DSL_KEYWORDS = frozenset(
    {"model", "visible", "hidden", "input", "param", "let", "energy", "term", "import", "stack", "pooled", "into"}
)


def check_identifier(ident: Identifier, what: str) -> str:
    """Return the name if `what` (e.g. "layer") may be called so, else raise."""
    name = ident.name
    if name.startswith("_"):
        raise DSLNameError(f"{what} name '{name}' starts with '_': names starting with an underscore are reserved", ident.span)
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise DSLNameError(f"{what} name '{name}' is a Python keyword and cannot be used", ident.span)
    if name in DSL_KEYWORDS:
        raise DSLNameError(f"{what} name '{name}' is a keyword of the language", ident.span)
    if name in FUNCTIONS:
        raise DSLNameError(f"{what} name '{name}' is the name of a built-in function", ident.span)
    return name


def suggestion(name: str, candidates) -> str:
    """A ' (did you mean ...?)' hint for a misspelt name, or ''."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
