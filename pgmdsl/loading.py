"""`load` and `parse`: from a standard-library name, a path or text to a Model."""

from __future__ import annotations

import os
import re
from pathlib import Path

from . import resources
from .errors import DSLError, DSLSyntaxError
from .ir.build import build_model
from .ir.library import EmbeddedLibrary, FileScope, Library, SourceFile
from .model import Model
from .source import SourceSpan, SourceText


def load(name_or_path: str | Path, **sizes: int) -> Model:
    """Load a model by standard-library name (`"rbm"`) or .dgm path, with size overrides."""
    path = _locate(_checked_path(name_or_path))
    library = Library()
    return _select(library, library.load_path(path), path.stem, sizes)


def parse(text: str, filename: str = "<string>", **sizes: int) -> Model:
    """Build a model from .dgm text; `filename` is used in error messages."""
    filename = _checked_filename(filename)
    text = _checked_text(text, filename)
    library = Library()
    return _select(library, library.load_text(text, filename), Path(filename).stem, sizes)


def load_files(files: tuple[SourceFile, ...], name: str, **sizes: int) -> Model:
    """Model `name` from files carried with it (a checkpoint's `Model.files`): nothing is read from disk."""
    for source in files:  # a checkpoint's texts are data: they may hold what no .dgm file read as UTF-8 can
        _checked_text(source.text, source.name)
    library = EmbeddedLibrary(files)
    scope = library.load_main()
    if name not in scope.models:
        raise DSLError(f"{files[0].name}: the saved files define no model '{name}'")
    definition, file_scope = scope.models[name]
    return Model(build_model(definition, file_scope, sizes), library.files)


def _locate(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if _is_file(path):
        return path
    library = resources.models_dir() / f"{name_or_path}.dgm"
    if isinstance(name_or_path, str) and path.suffix == "" and _is_file(library):
        return library
    known = ", ".join(resources.standard_models())
    raise DSLError(f"no such model file or standard-library model: {str(name_or_path)!r} (the library has: {known})")


def _is_file(path: Path) -> bool:
    """Whether `path` is a file; a name the system cannot even look up (too long, NUL) is not one."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


# The public entry points take what a user may pass by mistake (bytes, None, a number) and refuse it with
# one line: past them, every stage assumes str text, and a TypeError from deep in the parser says nothing.

def _checked_path(name_or_path) -> str | Path:
    if isinstance(name_or_path, (str, Path)):
        return name_or_path
    if isinstance(name_or_path, os.PathLike) and isinstance(os.fspath(name_or_path), str):
        return Path(name_or_path)
    raise DSLError(f"load takes a standard-library name or a .dgm path (str or Path), got {_kind(name_or_path)}")


def _checked_filename(filename) -> str:
    if isinstance(filename, os.PathLike) and isinstance(os.fspath(filename), str):
        return os.fspath(filename)
    if not isinstance(filename, str):
        raise DSLError(f"parse takes the file name as a str, got {_kind(filename)}")
    return filename


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _checked_text(text, filename: str) -> str:
    """`text` if it is Unicode text; a lone surrogate (undecodable bytes read with 'surrogateescape') is not.

    Such text parses, but no file, cache entry or terminal can hold it: refused here at its position,
    with an excerpt that shows '?' in its place so that the message itself can be printed.
    """
    if not isinstance(text, str):
        hint = " (decode it first: data.decode('utf-8'))" if isinstance(text, (bytes, bytearray)) else ""
        raise DSLError(f"parse takes the model's text as a str, got {_kind(text)}{hint}")
    found = _LONE_SURROGATE.search(text)
    if found:
        line = text.count("\n", 0, found.start()) + 1
        column = found.start() - text.rfind("\n", 0, found.start())
        printable = SourceText(filename, text.encode("utf-8", "replace").decode("utf-8"))
        span = SourceSpan(printable, line, column, line, column + 1)
        raise DSLSyntaxError(f"lone surrogate {found[0]!r} in the text: not a Unicode character (is it UTF-8?)", span)
    return text


def _kind(value) -> str:
    return "None" if value is None else type(value).__name__


def _select(library: Library, scope: FileScope, stem: str, sizes: dict[str, int]) -> Model:
    models = scope.file.models
    if not models:
        raise DSLError(f"{scope.file.filename}: the file defines no model")
    chosen = next((m for m in models if m.name.name == stem), models[-1])
    return Model(build_model(chosen, scope, sizes), library.files)
