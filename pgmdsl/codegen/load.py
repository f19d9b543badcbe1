"""Generated source to a live module: cached on disk, registered in linecache.

The cache lives in the user's cache directory (resources.cache_dir), never
inside the package. An entry is keyed by a hash of everything the module is
made from: the text and name of every .dgm file the model was read from
(imports included), its sizes, the backend, the dtype, the compiler version
and the compiler's own files. The cache is not trusted: an entry is run only
if its source matches the digest stored beside it, one that fails to read,
match or load is a miss and is generated again, and a directory other users
can write to is not used at all (pgmdsl.cache).
"""

from __future__ import annotations

import hashlib
import json
import linecache
import types
from functools import lru_cache
from pathlib import Path

from .. import __version__, cache, resources, units


def cache_key(model, backend: str, dtype: str) -> str:
    files = [[f.name, f.text, [list(i) for i in f.imports]] for f in model.files]
    described = json.dumps([files, model.name, sorted(model.sizes.items()), backend, dtype, __version__,
                            _unit_types(model)])
    digest = hashlib.sha256(described.encode("ascii"))  # json escapes every non-ASCII character (and lone surrogates)
    digest.update(_compiler_digest())
    return digest.hexdigest()[:20]


def _unit_types(model) -> list[str]:
    """The unit types the layers use, as their classes and fields: a plug-in type edited in its own file is a new
    module (its templates and helpers are part of the generated code)."""
    described = []
    for layer in model.layers:
        unit = units.get(layer.unit) if layer.unit else None
        if unit is not None:
            described.append(f"{layer.unit}={type(unit).__module__}.{type(unit).__qualname__}{unit!r}")
    return described


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
    """The cached source for `key` if it is there, ours and intact (pgmdsl.cache), else None."""
    data = cache.read(f"{key}.py")
    try:
        return None if data is None else data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def write_cached(key: str, source: str) -> None:
    cache.write(f"{key}.py", source.encode("utf-8"))


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
