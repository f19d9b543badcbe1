"""The registry of code-generation backends, read from backends/*.toml.

A backend is a manifest naming its array-module import, its sympy printer
and its prelude file; adding one is a manifest, a prelude and (if it prints
differently) a printer subclass.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache

from .. import resources
from ..errors import DSLError
from . import printer as printers

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class Backend:
    name: str
    description: str
    array_module: str
    prelude: str
    printer: object
    modules: dict  # name -> the import lines that bind it (scipy.special as `special`), for unit types' helpers


def backend(name: str) -> Backend:
    """The backend registered as `name`: looked up among the package's manifests, never joined into a path.

    A checkpoint names its backend, and a manifest's `array_module` line is
    executed in every generated module: a name like '../../x/evil' must not
    reach a file outside backends/.
    """
    known = names()
    if not isinstance(name, str) or name not in known:
        raise DSLError(f"unknown backend {name!r} (known: {', '.join(known)})")
    return _read_backend(name)


@lru_cache(maxsize=None)
def _read_backend(name: str) -> Backend:
    path = resources.backends_dir() / f"{name}.toml"
    manifest = tomllib.loads(path.read_text(encoding="utf-8"))
    prelude = "\n\n".join(
        (resources.backends_dir() / part).read_text(encoding="utf-8").rstrip() for part in manifest["prelude"]
    ) + "\n"
    printer = getattr(printers, manifest["printer"])()
    return Backend(manifest["name"], manifest["description"], manifest["array_module"], prelude, printer,
                   dict(manifest.get("modules", {})))


@lru_cache(maxsize=1)
def names() -> tuple[str, ...]:
    """The registered backends: one manifest each in the package's backends/ folder."""
    return tuple(sorted(p.stem for p in resources.backends_dir().glob("*.toml") if p.is_file()))
