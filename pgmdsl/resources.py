"""The one place that knows where grammars/, backends/ and models/ live.

In an installed wheel they are packaged under pgmdsl/_data/; in a checkout
they are the top-level folders beside the package.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"pgmdsl installation is missing its {name}/ folder")


def grammar_path() -> Path:
    """The Lark grammar of the .dgm language."""
    return _data_dir("grammars") / "dgm.lark"


def models_dir() -> Path:
    """The standard library of .dgm models."""
    return _data_dir("models")


def backends_dir() -> Path:
    """The code generators' manifests and templates."""
    return _data_dir("backends")


def standard_models() -> list[str]:
    """Names of the standard-library models (one per .dgm file, terms excluded)."""
    return sorted(p.stem for p in models_dir().glob("*.dgm") if p.stem != "terms")


def cache_dir() -> Path:
    """The user's pgmdsl cache (generated modules, the parser tables), never inside the package.

    PGMDSL_CACHE_DIR if set, else XDG_CACHE_HOME/pgmdsl, else ~/.cache/pgmdsl.
    """
    root = os.environ.get("PGMDSL_CACHE_DIR")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pgmdsl"
