"""Generated source to a live module: cached on disk, registered in linecache.

The cache lives in the user's cache directory (PGMDSL_CACHE_DIR, else
XDG_CACHE_HOME/pgmdsl or ~/.cache/pgmdsl), never inside the package, keyed by
a hash of the model text, its sizes, the backend, the dtype, the compiler
version and the backend files.
"""

from __future__ import annotations

import hashlib
import linecache
import os
import tempfile
import types
from functools import lru_cache
from pathlib import Path

from .. import __version__, resources


def cache_key(model, backend: str, dtype: str) -> str:
    digest = hashlib.sha256()
    for part in (model.source, model.name, repr(sorted(model.sizes.items())), backend, dtype, __version__):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(_compiler_digest())
    return digest.hexdigest()[:20]


@lru_cache(maxsize=1)
def _compiler_digest() -> bytes:
    """A hash of the backend files and the compiler's own code (read once per process)."""
    digest = hashlib.sha256()
    for path in sorted(resources.backends_dir().iterdir()):
        if path.is_file():
            digest.update(path.read_bytes())
    for path in _compiler_files():
        digest.update(path.read_bytes())
    return digest.digest()


def _compiler_files() -> list[Path]:
    package = Path(__file__).resolve().parent.parent
    return sorted(list((package / "symbolic").glob("*.py")) + list((package / "codegen").glob("*.py")))


def read_cached(key: str) -> str | None:
    path = resources.cache_dir() / f"{key}.py"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def write_cached(key: str, source: str) -> None:
    """Atomic write; a cache that cannot be written is skipped, not an error."""
    directory = resources.cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(source)
        os.replace(temporary, directory / f"{key}.py")
    except OSError:
        pass


def load_module(source: str, name: str) -> types.ModuleType:
    """Execute generated source as a module; tracebacks show its lines (linecache)."""
    filename = f"<pgmdsl {name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    module = types.ModuleType(name.replace("-", "_"))
    module.__file__ = filename
    exec(_bytecode(source, filename), module.__dict__)  # the source is generated from validated names only
    return module


@lru_cache(maxsize=32)
def _bytecode(source: str, filename: str) -> types.CodeType:
    """The compiled module code, kept for the process: each fit of an estimator recompiles its model."""
    return compile(source, filename, "exec")
