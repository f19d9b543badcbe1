"""Lark parse tree to AST: one handler per grammar rule, each keeping its span."""

from __future__ import annotations

import math

from lark import Token, Transformer, v_args

from ..errors import DSLSyntaxError
from ..source import SourceSpan, SourceText
from . import ast


def _number(text: str) -> int | float | None:
    """The value of a NUMBER token, or None when it does not fit in a float.

    Leading zeros are dropped before int(): Python refuses to convert a string of
    over 4300 digits, and a finite float has at most 309 significant ones.
    """
    if not math.isfinite(float(text)):
        return None
    return int(text.lstrip("0") or "0") if text.isdigit() else float(text)


@v_args(meta=True)
class ToAst(Transformer):
    """Builds ast nodes; `handled_rules` lists every rule it knows (tested)."""

    def __init__(self, source: SourceText):
        super().__init__()
        self.source = source

    # ---- positions ----
    def _span(self, meta) -> SourceSpan:
        return SourceSpan(self.source, meta.line, meta.column, meta.end_line, meta.end_column)

    def _ident(self, token: Token) -> ast.Identifier:
        span = SourceSpan(self.source, token.line, token.column, token.end_line, token.end_column)
        return ast.Identifier(str(token), span)

    # ---- file structure ----
    def start(self, meta, items):
        source_items = list(items)
        return ast.File(
            self.source.filename,
            tuple(i for i in source_items if isinstance(i, ast.Import)),
            tuple(i for i in source_items if isinstance(i, ast.TermDef)),
            tuple(i for i in source_items if isinstance(i, ast.ModelDef)),
        )

    def import_stmt(self, meta, children):
        return ast.Import(str(children[0])[1:-1], self._span(meta))

    def term_def(self, meta, children):
        name, *params, body = children
        params = tuple(self._ident(p) for p in params if p is not None)
        return ast.TermDef(self._ident(name), params, body, self._span(meta))

    def model_def(self, meta, children):
        name, *rest = children
        size_params = tuple(c for c in rest if isinstance(c, ast.SizeParam))
        body = tuple(c for c in rest if c is not None and not isinstance(c, ast.SizeParam))
        return ast.ModelDef(self._ident(name), size_params, body, self._span(meta))

    def size_param(self, meta, children):
        name, type_name, default = children
        return ast.SizeParam(self._ident(name), self._ident(type_name), default, self._span(meta))

    def let_def(self, meta, children):
        name, indices, body = children
        return ast.LetDef(self._ident(name), indices, body, self._span(meta))

    def index_names(self, meta, children):
        return tuple(self._ident(c) for c in children)

    def layer_def(self, meta, children):
        role, name, shape, unit, pooling = children
        return ast.LayerDef(role, self._ident(name), shape, unit, pooling, self._span(meta))

    def unit_name(self, meta, children):
        ident = self._ident(children[0])
        return ast.UnitSpec(ident.name, None, ident.span, ident.span)

    def unit_family(self, meta, children):
        ident = self._ident(children[0])
        args = tuple(a for a in children[1:] if a is not None)
        return ast.UnitSpec(ident.name, args, ident.span, self._span(meta))

    def role(self, meta, children):
        return str(children[0])

    def shape(self, meta, children):
        return tuple(children)

    def pooling(self, meta, children):
        *sizes, into = children
        sizes = tuple(s for s in sizes if s is not None)
        return ast.Pooling(sizes, self._ident(into), self._span(meta))

    def param_def(self, meta, children):
        name, shape, init, *constraints = children
        constraints = tuple(self._ident(c) for c in constraints if c is not None)
        return ast.ParamDef(self._ident(name), shape or (), init, constraints, self._span(meta))

    def init_random(self, meta, children):
        return ast.Initializer(True, children[0], self._span(meta))

    def init_value(self, meta, children):
        return ast.Initializer(False, children[0], self._span(meta))

    def energy_expr(self, meta, children):
        span = self._span(meta)
        return ast.EnergyDef((ast.NamedTerm(None, children[0], children[0].span),), span)

    def energy_block(self, meta, children):
        return ast.EnergyDef(tuple(children), self._span(meta))

    def named_term(self, meta, children):
        name, expr = children
        return ast.NamedTerm(self._ident(name), expr, self._span(meta))

    def stack_def(self, meta, children):
        return ast.StackDef(tuple(children), self._span(meta))

    def stack_entry(self, meta, children):
        name, *arguments = children
        args, keywords = _split_arguments(arguments)
        return ast.StackEntry(self._ident(name), args, keywords, self._span(meta))

    # ---- expressions ----
    def number(self, meta, children):
        value = _number(str(children[0]))
        if value is None:
            raise DSLSyntaxError("number too large", self._span(meta))
        return ast.Number(value, self._span(meta))

    def name(self, meta, children):
        return ast.Name(str(children[0]), self._span(meta))

    def indexed(self, meta, children):
        name, *indices = children
        return ast.Indexed(str(name), tuple(indices), self._span(meta))

    def call(self, meta, children):
        func, *arguments = children
        args, keywords = _split_arguments(arguments)
        return ast.Call(str(func), args, keywords, self._span(meta))

    def keyword_argument(self, meta, children):
        name, value = children
        return ast.KeywordArgument(str(name), value, self._span(meta))

    def _binary(op):
        def handler(self, meta, children):
            left, right = children
            return ast.BinOp(op, left, right, self._span(meta))

        return handler

    add = _binary("+")
    sub = _binary("-")
    mul = _binary("*")
    div = _binary("/")
    pow = _binary("^")
    del _binary

    def neg(self, meta, children):
        return ast.Neg(children[0], self._span(meta))


def _split_arguments(arguments):
    arguments = [a for a in arguments if a is not None]
    args = tuple(a for a in arguments if not isinstance(a, ast.KeywordArgument))
    keywords = tuple(a for a in arguments if isinstance(a, ast.KeywordArgument))
    return args, keywords
