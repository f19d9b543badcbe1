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


@lru_cache(maxsize=None)
def backend(name: str) -> Backend:
    path = resources.backends_dir() / f"{name}.toml"
    if not path.is_file():
        raise DSLError(f"unknown backend '{name}' (known: {', '.join(names())})")
    manifest = tomllib.loads(path.read_text(encoding="utf-8"))
    prelude = "\n\n".join(
        (resources.backends_dir() / part).read_text(encoding="utf-8").rstrip() for part in manifest["prelude"]
    ) + "\n"
    printer = getattr(printers, manifest["printer"])()
    return Backend(manifest["name"], manifest["description"], manifest["array_module"], prelude, printer)


def names() -> list[str]:
    return sorted(p.stem for p in resources.backends_dir().glob("*.toml"))
