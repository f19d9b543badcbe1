"""The grammar and its transformer stay in step: every rule has a handler."""

from pgmdsl.frontend import ast, parse_text
from pgmdsl.frontend.parser import _parser
from pgmdsl.frontend.transformer import ToAst


def test_every_grammar_rule_has_a_handler():
    names = set()
    for rule in _parser().rules:
        if rule.options.expand1 and not rule.alias:
            continue  # `?rule` alternatives with one child are inlined by Lark
        name = rule.alias or rule.origin.name
        name = getattr(name, "value", name)
        if not str(name).startswith("_"):
            names.add(str(name))
    missing = sorted(n for n in names if not hasattr(ToAst, n))
    assert missing == []


def test_newlines_are_not_significant_so_energies_continue():
    text = "model m(n: int = 2)\nvisible v[n]: binary\nparam a[n] = 0\nenergy = -a[i]*v[i]\n  - a[i]*v[i]\n"
    file = parse_text(text, "m.dgm")
    energy = file.models[0].body[-1]
    assert isinstance(energy, ast.EnergyDef) and isinstance(energy.terms[0].expr, ast.BinOp)


def test_spans_point_at_the_text():
    file = parse_text("model m()\nvisible v[3]: binary\n", "m.dgm")
    layer = file.models[0].body[0]
    assert (layer.name.span.line, layer.name.span.column) == (2, 9)
    assert (layer.unit.span.line, layer.unit.span.column) == (2, 15)


def test_power_is_right_associative_and_binds_tighter_than_negation():
    file = parse_text("term t(x) = -x[i]^2^3", "t.dgm")
    body = file.terms[0].body
    assert isinstance(body, ast.Neg)
    assert body.operand.op == "^" and body.operand.right.op == "^"


def test_imports_terms_and_models_are_collected():
    file = parse_text('import "terms.dgm"\nterm t(x) = -x[i]\nmodel a()\nmodel b()\n', "f.dgm")
    assert [i.path for i in file.imports] == ["terms.dgm"]
    assert [t.name.name for t in file.terms] == ["t"]
    assert [m.name.name for m in file.models] == ["a", "b"]
