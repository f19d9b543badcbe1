"""The LALR parser's tables kept in the cache as JSON, never as a pickle.

Building the parser from the grammar takes 0.1-0.2 s, paid by every
process (each CLI call). Lark can keep its analysed grammar, but only as a
pickle, which executes whatever a tampered file holds. Its tables are plain
data (dicts, lists, tuples, strings, numbers), so they are stored as JSON
instead, tagged where JSON has no form of its own (tuples, dicts with
non-string keys), in a verified cache entry (pgmdsl.cache) keyed by the
grammar's text and the versions of Lark and Python. Decoding JSON runs no
code; an entry that fails to decode or load is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import sys

import lark
from lark import Lark

from .. import cache

_PAIRS, _TUPLE = "\0pairs", "\0tuple"  # tags no key of Lark's tables has


def parser(grammar: str, **options) -> Lark:
    """The LALR parser of `grammar` with `options`: from the cache when an intact entry is there, else built."""
    name = _entry_name(grammar, options)
    data = cache.read(name)
    if data is not None:
        try:
            tables = json.loads(data.decode("utf-8"), object_hook=_decoded)
            return Lark._load_from_dict(tables["data"], tables["memo"])
        except Exception:  # noqa: BLE001 - an entry that does not load is a miss, whatever it raises
            pass
    built = Lark(grammar, parser="lalr", **options)
    tables, memo = built.memo_serialize([lark.lexer.TerminalDef, lark.grammar.Rule])
    cache.write(name, json.dumps(_encode({"data": tables, "memo": memo})).encode("utf-8"))
    return built


def _entry_name(grammar: str, options: dict) -> str:
    described = json.dumps([grammar, sorted(options.items()), lark.__version__, sys.version_info[:2]])
    return f"grammar-{hashlib.sha256(described.encode('utf-8')).hexdigest()[:20]}.json"


def _encode(value):
    """Lark's tables as JSON values; tuples and dicts with non-string keys tagged."""
    if isinstance(value, dict):
        if all(isinstance(key, str) for key in value):
            return {key: _encode(item) for key, item in value.items()}
        return {_PAIRS: [[_encode(key), _encode(item)] for key, item in value.items()]}
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(item) for item in value]}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot keep a {type(value).__name__} in the parser's tables")


def _decoded(value: dict):
    """json's object_hook: the tagged forms back to tuples and dicts (inner values come decoded already)."""
    if _PAIRS in value:
        return {key: item for key, item in value[_PAIRS]}
    if _TUPLE in value:
        return tuple(value[_TUPLE])
    return value
