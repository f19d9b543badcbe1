"""Text from a model (file names, energy summands) made safe to place in generated comments and docstrings.

A file name is chosen by whoever hands us the file: it may hold a newline
and a Python statement, or three quotes. Everything a generated module says
about its model goes through these two functions, so such text stays text.
"""

from __future__ import annotations


def comment_text(text: str) -> str:
    """`text` on one line of printable ASCII: control characters, non-ASCII and backslashes escaped.

    A Python comment ends only at a line break, and ascii() escapes every
    character the tokenizer could take as one (\\n, \\r, and with them \\x0b,
    \\x0c, \\x1c-\\x1e, \\u2028...).
    """
    return ascii(text)[1:-1]


def docstring_text(text: str) -> str:
    """`text` for the inside of a triple-quoted (non-raw) docstring: as comment_text, and no quote left bare."""
    return comment_text(text).replace('"', '\\"').replace("'", "\\'")
