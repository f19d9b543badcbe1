"""The user's disk cache as a store of verified entries: nothing read back is used unless it checks out.

Generated modules (codegen.load) and the parser's tables (frontend.parser)
are kept here. Each entry is a file beside a digest of its name and bytes;
`read` returns an entry only if both are regular files of this user that no
one else can write, in a private directory (resources.private_cache_dir),
and the digest matches. Anything else is a miss, and the caller builds the
entry again and `write`s it over whatever was there.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from pathlib import Path

from . import resources


def read(name: str) -> bytes | None:
    """The bytes of entry `name` if it is there, ours and intact, else None."""
    directory = resources.private_cache_dir()
    if directory is None:
        return None
    try:
        data = _read_own(directory / name)
        digest = _read_own(directory / f"{name}.sha256").decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return data if digest == digest_of(name, data) else None


def write(name: str, data: bytes) -> None:
    """Atomic writes of the entry, then its digest; a cache that cannot be written is skipped, not an error."""
    directory = resources.private_cache_dir()
    if directory is None:
        return
    try:
        _write_atomic(directory, name, data)
        _write_atomic(directory, f"{name}.sha256", digest_of(name, data).encode("ascii"))
    except OSError:
        pass


def digest_of(name: str, data: bytes) -> str:
    """What the digest file of an entry holds: the entry's name and bytes, hashed together."""
    return hashlib.sha256(name.encode("utf-8") + b"\0" + data).hexdigest()


def _read_own(path: Path) -> bytes:
    """A cache file's bytes; refused (OSError) unless it is a regular file of ours that only we can write."""
    with open(path, "rb") as stream:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o022 or info.st_uid != resources.user_id(info.st_uid):
            raise OSError(f"{path}: not a private cache file")
        return stream.read()


def _write_atomic(directory: Path, name: str, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, directory / name)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
