"""Files, imports and the standard library: what names a file can see.

`import "x.dgm"` looks beside the importing file first, then in the standard
library. Each file is parsed once per Library; its scope holds its own terms
and models and those it imports (its own shadow imported ones).

A Library also records every file it read, with its text and where each of
its imports led (`files`): a model's cache key covers all of them, and a
checkpoint embeds them, so `EmbeddedLibrary` rebuilds the same model from the
checkpoint alone, whatever directory it is loaded in.
"""

from __future__ import annotations

import os
import stat
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
MAX_FILE_BYTES = 1 << 20  # a .dgm file of over a mebibyte is not a model: refuse it before reading


@dataclass(frozen=True)
class SourceFile:
    """One file a model was read from: its name, its text, and the file each of its imports resolved to.

    imports: (the import's path as written, index of the imported file in the same `files` tuple).
    """

    name: str
    text: str
    imports: tuple[tuple[str, int], ...] = ()


class Library:
    """Loads .dgm files and resolves their imports, detecting cycles."""

    def __init__(self):
        self._scopes: dict[object, FileScope] = {}  # by resolved path (or embedded index)
        self._loading: list[object] = []
        self._records: list[tuple[str, str, dict]] = []  # (name, text, {import path: index}) in reading order
        self._index: dict[object, int] = {}

    @property
    def files(self) -> tuple[SourceFile, ...]:
        """Every file read so far, the first one first: what a model loaded through this Library depends on."""
        return tuple(SourceFile(name, text, tuple(imports.items())) for name, text, imports in self._records)

    def load_path(self, path: Path) -> FileScope:
        path = path.resolve()
        if path not in self._scopes:
            text = _read(path)
            self._scopes[path] = self._scope(parse_text(text, str(path)), text, path.parent, path)
        return self._scopes[path]

    def load_text(self, text: str, filename: str) -> FileScope:
        return self._scope(parse_text(text, filename), text, Path.cwd(), None)

    def _scope(self, file: ast.File, text: str, directory, key) -> FileScope:
        scope = FileScope(file)
        record = self._record(file.filename, text, key)
        if key is not None:
            self._loading.append(key)
        try:
            for statement in file.imports:
                imported_key, imported = self._import(statement, directory)
                record[statement.path] = self._index[imported_key]
                scope.terms.update(imported.terms)
                scope.models.update(imported.models)
        finally:
            if key is not None:
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

    def _record(self, filename: str, text: str, key) -> dict:
        """Note a file as read (its text, and later where its imports led); returns its import map."""
        imports: dict[str, int] = {}
        if key is not None:
            self._index[key] = len(self._records)
        self._records.append((filename, text, imports))
        return imports

    def _import(self, statement: ast.Import, directory: Path) -> tuple[object, FileScope]:
        target = _import_target(statement, directory)
        self._check_nesting(statement, target, lambda key: key.name)
        return target, self.load_path(target)

    def _check_nesting(self, statement: ast.Import, key, label) -> None:
        if key in self._loading:
            cycle = " -> ".join(label(k) for k in self._loading[self._loading.index(key):] + [key])
            raise DSLError(f"import cycle: {cycle}", statement.span)
        if len(self._loading) >= MAX_IMPORT_DEPTH:
            raise DSLError(f"imports nested too deeply: more than {MAX_IMPORT_DEPTH} files, each importing the next", statement.span)


class EmbeddedLibrary(Library):
    """A Library over files carried with a model (a checkpoint's): imports resolve to them, never to the disk.

    files[0] is the main file; every import of every file must name the file
    it resolved to when the model was saved.
    """

    def __init__(self, files: tuple[SourceFile, ...]):
        super().__init__()
        self._embedded = files

    def load_main(self) -> FileScope:
        return self._load_embedded(0)

    def _load_embedded(self, index: int) -> FileScope:
        if index not in self._scopes:
            source = self._embedded[index]
            self._scopes[index] = self._scope(parse_text(source.text, source.name), source.text, None, index)
        return self._scopes[index]

    def _import(self, statement: ast.Import, directory) -> tuple[object, FileScope]:
        importing = self._embedded[self._loading[-1]]
        target = dict(importing.imports).get(statement.path)
        if not isinstance(target, int) or not 0 <= target < len(self._embedded):
            raise DSLError(f"{importing.name}: the saved files do not hold its import '{statement.path}'")
        self._check_nesting(statement, target, lambda k: Path(self._embedded[k].name).name)
        return target, self._load_embedded(target)


def _import_target(statement: ast.Import, directory: Path) -> Path:
    """The regular .dgm file an import names, after symlinks: beside the importing file, else in the library.

    Anything else is refused without being read: a syntax error would show
    its first lines (an `env.dgm` linked to /proc/self/environ, say).
    """
    if not statement.path.endswith(".dgm"):
        raise DSLError(f"can only import .dgm files, not '{statement.path}'", statement.span)
    for candidate in (directory / statement.path, resources.models_dir() / statement.path):
        try:
            target = candidate.resolve()
            info = target.stat()
        except (OSError, ValueError):  # missing, a broken link, a name too long or holding NUL
            continue
        if target.suffix != ".dgm" or not stat.S_ISREG(info.st_mode):
            raise DSLError(f"import '{statement.path}' leads to {target}, which is not a regular .dgm file",
                           statement.span)
        return target
    raise DSLError(f"cannot find '{statement.path}' (looked in {directory} and the standard library)", statement.span)


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
    """A model file's text: a regular file of sane size in UTF-8 (checked before reading it)."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise DSLError(f"{path}: not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise DSLError(f"{path}: {info.st_size} bytes is too large for a model file (at most {MAX_FILE_BYTES})")
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DSLError(f"{path}: not a UTF-8 text file") from None
    except OSError as error:
        raise DSLError(f"cannot read {path}: {error.strerror}") from None
