"""`load` and `parse`: from a standard-library name, a path or text to a Model."""

from __future__ import annotations

from pathlib import Path

from . import resources
from .errors import DSLError
from .ir.build import build_model
from .ir.library import FileScope, Library
from .model import Model


def load(name_or_path: str | Path, **sizes: int) -> Model:
    """Load a model by standard-library name (`"rbm"`) or .dgm path, with size overrides."""
    path = _locate(name_or_path)
    scope = Library().load_path(path)
    return _select(scope, path.stem, sizes)


def parse(text: str, filename: str = "<string>", **sizes: int) -> Model:
    """Build a model from .dgm text; `filename` is used in error messages."""
    scope = Library().load_text(text, filename)
    return _select(scope, Path(filename).stem, sizes)


def _locate(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.is_file():
        return path
    library = resources.models_dir() / f"{name_or_path}.dgm"
    if isinstance(name_or_path, str) and path.suffix == "" and library.is_file():
        return library
    known = ", ".join(resources.standard_models())
    raise DSLError(f"no such model file or standard-library model: '{name_or_path}' (the library has: {known})")


def _select(scope: FileScope, stem: str, sizes: dict[str, int]) -> Model:
    models = scope.file.models
    if not models:
        raise DSLError(f"{scope.file.filename}: the file defines no model")
    chosen = next((m for m in models if m.name.name == stem), models[-1])
    return Model(build_model(chosen, scope, sizes))
