"""The DSLError family: every problem with a model is reported as one of these.

A DSLError carries a plain message and, where it has one, the source span it
is about, so the CLI can print `file:line:column: error: message` and a caret
line without a traceback.
"""

from __future__ import annotations

from .source import SourceSpan


class DSLError(Exception):
    """A problem in a model's text or meaning, reported at a source position."""

    def __init__(self, message: str, span: SourceSpan | None = None, notes: tuple[str, ...] = ()):
        super().__init__(message)
        self.message = message
        self.span = span
        self.notes = tuple(notes)

    @property
    def filename(self) -> str | None:
        """The .dgm file the error points into (None when it has no location)."""
        return self.span.filename if self.span else None

    @property
    def line(self) -> int | None:
        """Its 1-based line (None when it has no location)."""
        return self.span.line if self.span else None

    @property
    def column(self) -> int | None:
        """Its 1-based column (None when it has no location)."""
        return self.span.column if self.span else None

    def __str__(self) -> str:
        if self.span is None:
            head = f"error: {self.message}"
        else:
            head = f"{self.span}: error: {self.message}"
        parts = [head]
        if self.span is not None and self.span.excerpt():
            parts.append(self.span.excerpt())
        parts.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(parts)


class DSLSyntaxError(DSLError):
    """The text does not follow the grammar."""


class DSLNameError(DSLError):
    """A name is unknown, duplicated or reserved."""


class DSLShapeError(DSLError):
    """Sizes, indices or shapes do not fit together."""


class DSLUnsupportedError(DSLError):
    """The model is well-formed but the compiler cannot handle it; the message says why."""


class DataError(DSLError):
    """A data set cannot be found, read or used; the message says which and why."""
