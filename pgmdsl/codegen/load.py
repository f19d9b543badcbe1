"""Generated source to a live module: cached on disk, registered in linecache.

The cache lives in the user's cache directory (resources.cache_dir), never
inside the package. An entry is keyed by a hash of everything the module is
made from: the text and name of every .dgm file the model was read from
(imports included), its sizes, the backend, the dtype, the compiler version
and the compiler's own files. The cache is not trusted: an entry is run only
if its source matches the digest stored beside it, one that fails to read,
match or load is a miss and is generated again, and a directory other users
can write to is not used at all (resources.private_cache_dir).
"""

from __future__ import annotations

import hashlib
import json
import linecache
import os
import stat
import tempfile
import types
from functools import lru_cache
from pathlib import Path

from .. import __version__, resources


def cache_key(model, backend: str, dtype: str) -> str:
    files = [[f.name, f.text, [list(i) for i in f.imports]] for f in model.files]
    described = json.dumps([files, model.name, sorted(model.sizes.items()), backend, dtype, __version__])
    digest = hashlib.sha256(described.encode("ascii"))  # json escapes every non-ASCII character (and lone surrogates)
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
    """The cached source for `key` if it is there, ours and intact (its digest matches), else None."""
    directory = resources.private_cache_dir()
    if directory is None:
        return None
    try:
        data = _read_own(directory / f"{key}.py")
        digest = _read_own(directory / f"{key}.sha256").decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if digest != _digest(key, data):
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _read_own(path: Path) -> bytes:
    """A cache file's bytes; refused (OSError) unless it is a regular file of ours that only we can write."""
    with open(path, "rb") as stream:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o022 or info.st_uid != resources.user_id(info.st_uid):
            raise OSError(f"{path}: not a private cache file")
        return stream.read()


def _digest(key: str, data: bytes) -> str:
    """What the digest file of an entry holds: the entry's key and source, hashed together."""
    return hashlib.sha256(key.encode("ascii") + b"\0" + data).hexdigest()


def write_cached(key: str, source: str) -> None:
    """Atomic writes of the source, then its digest; a cache that cannot be written is skipped, not an error."""
    directory = resources.private_cache_dir()
    if directory is None:
        return
    data = source.encode("utf-8")
    try:
        _write_atomic(directory, f"{key}.py", data)
        _write_atomic(directory, f"{key}.sha256", _digest(key, data).encode("ascii"))
    except OSError:
        pass


def _write_atomic(directory: Path, name: str, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, directory / name)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


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
