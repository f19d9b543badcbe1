"""Files, imports and the standard library: what names a file can see.

`import "x.dgm"` looks beside the importing file first, then in the standard
library. Each file is parsed once per Library; its scope holds its own terms
and models and those it imports (its own shadow imported ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import resources
from ..errors import DSLError, DSLNameError
from ..frontend import ast, parse_text
from .names import check_identifier


@dataclass
class FileScope:
    file: ast.File
    terms: dict = field(default_factory=dict)  # name -> (TermDef, FileScope)
    models: dict = field(default_factory=dict)  # name -> (ModelDef, FileScope)


MAX_IMPORT_DEPTH = 32  # files importing files importing files...


class Library:
    """Loads .dgm files and resolves their imports, detecting cycles."""

    def __init__(self):
        self._scopes: dict[Path, FileScope] = {}
        self._loading: list[Path] = []

    def load_path(self, path: Path) -> FileScope:
        path = path.resolve()
        if path not in self._scopes:
            text = _read(path)
            self._scopes[path] = self._scope(parse_text(text, str(path)), path.parent, path)
        return self._scopes[path]

    def load_text(self, text: str, filename: str) -> FileScope:
        return self._scope(parse_text(text, filename), Path.cwd(), None)

    def _scope(self, file: ast.File, directory: Path, path: Path | None) -> FileScope:
        scope = FileScope(file)
        if path is not None:
            self._loading.append(path)
        try:
            for statement in file.imports:
                imported = self._import(statement, directory)
                scope.terms.update(imported.terms)
                scope.models.update(imported.models)
        finally:
            if path is not None:
                self._loading.pop()
        own_terms: dict[str, ast.TermDef] = {}
        for term in file.terms:
            name = check_identifier(term.name, "term")
            if name in own_terms:
                raise DSLError(f"duplicate term '{name}': already defined at line {own_terms[name].span.line}", term.name.span)
            own_terms[name] = term
            _check_params(term)
            scope.terms[name] = (term, scope)
        own_models: dict[str, ast.ModelDef] = {}
        for model in file.models:
            name = model.name.name
            if name in own_models:
                raise DSLError(f"duplicate model '{name}': already defined at line {own_models[name].span.line}", model.name.span)
            own_models[name] = model
            scope.models[name] = (model, scope)
        return scope

    def _import(self, statement: ast.Import, directory: Path) -> FileScope:
        if not statement.path.endswith(".dgm"):
            # Only model files: an import of any other file would echo its first lines in the syntax error.
            raise DSLError(f"can only import .dgm files, not '{statement.path}'", statement.span)
        candidates = [directory / statement.path, resources.models_dir() / statement.path]
        target = next((c.resolve() for c in candidates if c.is_file()), None)
        if target is None:
            raise DSLError(
                f"cannot find '{statement.path}' (looked in {directory} and the standard library)", statement.span
            )
        if target in self._loading:
            cycle = " -> ".join(p.name for p in self._loading[self._loading.index(target):] + [target])
            raise DSLError(f"import cycle: {cycle}", statement.span)
        if len(self._loading) >= MAX_IMPORT_DEPTH:
            raise DSLError(f"imports nested too deeply: more than {MAX_IMPORT_DEPTH} files, each importing the next", statement.span)
        return self.load_path(target)


def _check_params(term: ast.TermDef) -> None:
    seen = set()
    for param in term.params:
        check_identifier(param, "term argument")
        if param.name in seen:
            raise DSLError(f"term '{term.name.name}' has two arguments named '{param.name}'", param.span)
        seen.add(param.name)
    _check_body(term, term.body, seen)


def _check_body(term: ast.TermDef, node, params: set[str]) -> None:
    """A term's body names only its arguments (indices aside): it must not reach into the caller's model."""
    listed = ", ".join(p.name for p in term.params) or "none"
    if isinstance(node, (ast.Name, ast.Indexed)) and node.name not in params:
        raise DSLNameError(
            f"term '{term.name.name}' refers to '{node.name}', which is not one of its arguments ({listed})",
            node.span,
        )
    if isinstance(node, ast.Indexed):
        for index in node.indices:
            for name in _names_in(index):
                if name.name in params:
                    raise DSLNameError(
                        f"term '{term.name.name}' uses its argument '{name.name}' as an index", name.span
                    )
    elif isinstance(node, ast.BinOp):
        _check_body(term, node.left, params)
        _check_body(term, node.right, params)
    elif isinstance(node, ast.Neg):
        _check_body(term, node.operand, params)
    elif isinstance(node, ast.Call):
        for arg in node.args + tuple(k.value for k in node.keywords):
            _check_body(term, arg, params)


def _names_in(node) -> list[ast.Name]:
    if isinstance(node, ast.Name):
        return [node]
    if isinstance(node, ast.BinOp):
        return _names_in(node.left) + _names_in(node.right)
    if isinstance(node, ast.Neg):
        return _names_in(node.operand)
    return []


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DSLError(f"{path}: not a UTF-8 text file") from None
    except OSError as error:
        raise DSLError(f"cannot read {path}: {error.strerror}") from None
