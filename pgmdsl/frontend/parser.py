"""The cached Lark LALR parser and the conversion of its failures to DSLErrors."""

from __future__ import annotations

from functools import lru_cache

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from .. import resources
from ..errors import DSLError, DSLSyntaxError
from ..source import SourceSpan, SourceText
from . import ast, tables
from .transformer import ToAst


@lru_cache(maxsize=1)
def _parser() -> Lark:
    """The LALR parser of the packaged grammar, once per process (its tables cached as JSON: frontend.tables)."""
    grammar = resources.grammar_path().read_text(encoding="utf-8")
    return tables.parser(grammar, propagate_positions=True, maybe_placeholders=True)


@lru_cache(maxsize=64)
def parse_text(text: str, filename: str = "<string>") -> ast.File:
    """Parse .dgm text into an AST, raising DSLSyntaxError on bad syntax.

    Remembered per (text, filename): the AST is immutable, and scikit-learn
    fits, clones and grid searches load the same file many times.
    """
    source = SourceText(filename, text)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as failure:
        raise _syntax_error(failure, source) from None
    _check_depth(tree, source)
    try:
        return ToAst(source).transform(tree)
    except VisitError as failure:  # Lark wraps what a rule handler raises
        if isinstance(failure.orig_exc, DSLError):
            raise failure.orig_exc from None
        raise


# Deepest parse tree accepted. Every later stage walks expressions recursively,
# and a left-nested sum of a few hundred summands (or as many signs) would
# otherwise end in a RecursionError; long energies split into named terms.
MAX_DEPTH = 200


_EXPRESSION_RULES = {"add", "sub", "mul", "div", "pow", "neg", "unary", "number", "name", "indexed", "call",
                     "keyword_argument"}


def _check_depth(tree: Tree, source: SourceText) -> None:
    """Reject a parse tree deeper than MAX_DEPTH, pointing at the outermost expression too deep."""
    stack = [(tree, 1, None)]
    while stack:
        node, depth, outermost = stack.pop()
        if outermost is None and node.data in _EXPRESSION_RULES:
            outermost = node
        if depth > MAX_DEPTH:
            meta = (outermost or node).meta
            span = SourceSpan(source, meta.line, meta.column, meta.end_line, meta.end_column)
            raise DSLSyntaxError(
                f"expression nested too deeply (over {MAX_DEPTH} levels of operators): "
                "split it into named energy terms or lets",
                span,
            )
        stack.extend((child, depth + 1, outermost) for child in node.children if isinstance(child, Tree))


# Friendly names for the grammar's terminals in "expected ..." lists.
_NAMED_TERMINALS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a quoted path",
    "$END": "end of file",
}


def _describe_terminal(name: str) -> str:
    if name in _NAMED_TERMINALS:
        return _NAMED_TERMINALS[name]
    for terminal in _parser().terminals:
        if terminal.name == name:
            return f"'{terminal.pattern.value}'"
    return name


_STATEMENT_KEYWORDS = {"ENERGY", "HIDDEN", "IMPORT", "INPUT", "LET", "MODEL", "PARAM", "STACK", "TERM", "VISIBLE"}
_BODY_KEYWORDS = _STATEMENT_KEYWORDS - {"IMPORT", "MODEL", "TERM"}  # statements only a model body holds


def _expected(names) -> str:
    names = set(names)
    statement = _STATEMENT_KEYWORDS & names
    described = sorted({_describe_terminal(n) for n in names - statement - {"$END"}})
    if statement:
        described.append("a new statement")
    if len(described) == 1:
        return described[0]
    return ", ".join(described[:-1]) + " or " + described[-1]


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "end of file"
    kind = {"NAME": "name", "NUMBER": "number", "STRING": "string"}.get(token.type)
    return f"{kind} '{token}'" if kind else f"'{token}'"


def _syntax_error(failure: UnexpectedInput, source: SourceText) -> DSLSyntaxError:
    if isinstance(failure, UnexpectedCharacters):
        char = source.text[failure.pos_in_stream]
        span = SourceSpan(source, failure.line, failure.column, failure.line, failure.column + 1)
        if char == '"':  # STRING did not match: no closing quote on the line
            return DSLSyntaxError('unterminated string: the closing \'"\' must be on the same line', span)
        return DSLSyntaxError(f"unexpected character {char!r}", span)
    if isinstance(failure, UnexpectedEOF) or (
        isinstance(failure, UnexpectedToken) and failure.token.type == "$END"
    ):
        last = getattr(failure, "token", None)
        if last is not None and last.end_line is not None:
            # Lark places $END on the last token: point just past it, not past trailing comments.
            line, column = last.end_line, last.end_column
        else:
            line = max(1, source.text.count("\n") + (0 if source.text.endswith("\n") else 1))
            column = len(source.line(line)) + 1
        span = SourceSpan(source, line, column, line, column + 1)
        return DSLSyntaxError(f"unexpected end of file, expected {_expected(failure.expected)}", span)
    token = failure.token
    width = max(1, len(str(token)))
    span = SourceSpan(source, token.line, token.column, token.line, token.column + width)
    expected = set(failure.accepts or failure.expected)
    if token.type in _BODY_KEYWORDS and not expected & _BODY_KEYWORDS:
        return DSLSyntaxError(
            f"unexpected '{token}' outside a model: start the model with 'model name(sizes)' first", span
        )
    description = _expected(expected)
    if expected <= _STATEMENT_KEYWORDS | {"$END"} and _follows_operand(source, token):
        description = "an operator or a new statement"
    return DSLSyntaxError(f"unexpected {_describe_token(token)}, expected {description}", span)


def _follows_operand(source: SourceText, token: Token) -> bool:
    """Whether the token comes straight after a complete operand (a missing operator)."""
    before = source.text[: token.start_pos].rstrip()
    return bool(before) and (before[-1].isalnum() or before[-1] in "_)]")
