"""The one place that knows where grammars/, backends/ and models/ live.

In an installed wheel they are packaged under pgmdsl/_data/; in a checkout
they are the top-level folders beside the package.
"""

from __future__ import annotations

import os
import stat
import warnings
from functools import lru_cache
from pathlib import Path

import platformdirs

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
    """The user's pgmdsl cache (generated modules, the parser's tables as JSON), never inside the package.

    PGMDSL_CACHE_DIR if set, else the platform's user cache directory (platformdirs): $XDG_CACHE_HOME/pgmdsl
    or ~/.cache/pgmdsl on Linux, ~/Library/Caches/pgmdsl on macOS, %LOCALAPPDATA%\\pgmdsl\\Cache on Windows.
    """
    root = os.environ.get("PGMDSL_CACHE_DIR")
    if root:
        return Path(root)
    return Path(platformdirs.user_cache_dir("pgmdsl", appauthor=False))


def user_id(default: int) -> int:
    """This process's user id (`default` where the platform has none, so ownership checks pass there)."""
    return os.getuid() if hasattr(os, "getuid") else default


def private_cache_dir() -> Path | None:
    """cache_dir(), created private (0700) if missing; None, with a warning, when it is not private.

    Cached modules are executed: a directory that is not ours, or that other
    users can write to (a shared /tmp, a group-writable folder), would let
    them plant code, so it is not used at all.
    """
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = directory.stat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode):
        return None
    if info.st_uid != user_id(info.st_uid) or info.st_mode & 0o022:
        _warn_shared(str(directory))
        return None
    return directory


@lru_cache(maxsize=None)
def _warn_shared(directory: str) -> None:
    """Say once per process and directory why the cache is off."""
    warnings.warn(
        f"pgmdsl: not using the cache directory {directory}: other users can write to it (or it is not yours); "
        "set PGMDSL_CACHE_DIR to a private directory",
        RuntimeWarning,
        stacklevel=3,
    )
