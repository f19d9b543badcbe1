"""Source text and positions, so every error can point at a line and column."""

from __future__ import annotations

from dataclasses import dataclass, field


def printable(name: str) -> str:
    """A file name as an error shows it: unchanged if printable, else escaped, so the error stays one line."""
    return name if name.isprintable() else ascii(name)[1:-1]


@dataclass(frozen=True)
class SourceText:
    """A .dgm file's text and the name it is reported under."""

    filename: str
    text: str

    def line(self, number: int) -> str:
        """The 1-based line `number`, without its newline ('' past the end).

        Lines end at "\n" only, as the parser counts them: str.splitlines would
        also split at form feeds and other separators and show the wrong line.
        """
        lines = self.text.split("\n")
        return lines[number - 1].removesuffix("\r") if 0 < number <= len(lines) else ""


@dataclass(frozen=True)
class SourceSpan:
    """Where a construct stands: 1-based line and column, end exclusive."""

    source: SourceText = field(repr=False, compare=False)
    line: int
    column: int
    end_line: int
    end_column: int

    @property
    def filename(self) -> str:
        return self.source.filename

    def __str__(self) -> str:
        return f"{printable(self.filename)}:{self.line}:{self.column}"

    def excerpt(self) -> str:
        """The line of source with carets under the span (first line only)."""
        text = self.source.line(self.line)
        if not text:
            return ""
        end = self.end_column if self.end_line == self.line else len(text) + 1
        width = max(1, min(end, len(text) + 1) - self.column)
        prefix = "".join(c if c == "\t" else " " for c in text[: self.column - 1])
        return f"    {text}\n    {prefix}{'^' * width}"
