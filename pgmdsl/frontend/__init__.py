"""Text to AST: the Lark parser, its error reporting and the AST dataclasses."""

from .parser import parse_text

__all__ = ["parse_text"]
