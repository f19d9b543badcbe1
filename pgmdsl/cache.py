"""The user's disk cache as a store of verified entries: nothing read back is used unless it checks out.

Generated modules (codegen.load) and the parser's tables (frontend.parser)
are kept here. Each entry is a file beside a digest of its name and bytes;
`read` returns an entry only if both are regular files of this user that no
one else can write, in a private directory (resources.private_cache_dir),
and the digest matches. Anything else is a miss, and the caller builds the
entry again and `write`s it over whatever was there. `usage` and `clear`
(`pgmdsl cache info|clear`) count and remove those entries and nothing
else: a file in the directory without its digest is not the cache's.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
from pathlib import Path

from . import resources

_DIGEST = re.compile(rb"[0-9a-f]{64}")  # what digest_of writes


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


def entries(directory: Path) -> list[Path]:
    """The entries `write` left in `directory`, sorted: each a regular file of ours beside a digest file of ours
    holding 64 hex digits. Anything else there (a user's own file, another program's) is not the cache's."""
    found = []
    for path in sorted(directory.iterdir()):
        if path.name.endswith(".sha256") or path.name.startswith("."):
            continue
        digest = _digest_path(path)
        try:
            if _is_own_file(path) and _is_own_file(digest) and _DIGEST.fullmatch(digest.read_bytes().strip()):
                found.append(path)
        except OSError:  # no digest beside it, or unreadable: not an entry
            continue
    return found


def usage() -> tuple[Path, list[Path] | None, int]:
    """(the cache directory, its entries or None when it is not used (not private), their bytes, digests
    included): what `pgmdsl cache info` prints."""
    directory = resources.private_cache_dir()
    if directory is None:
        return resources.cache_dir(), None, 0
    found = entries(directory)
    return directory, found, sum(_entry_bytes(path) for path in found)


def clear() -> tuple[Path, int]:
    """Remove every entry (and its digest) of the private cache directory, nothing else; (directory, how many).

    A directory that is not private is not the cache's to clear: nothing is removed there.
    """
    directory = resources.private_cache_dir()
    if directory is None:
        return resources.cache_dir(), 0
    removed = 0
    for path in entries(directory):
        for part in (path, _digest_path(path)):
            part.unlink(missing_ok=True)
        removed += 1
    return directory, removed


def _entry_bytes(path: Path) -> int:
    return sum(part.lstat().st_size for part in (path, _digest_path(path)))


def _digest_path(path: Path) -> Path:
    """Where `write` keeps an entry's digest."""
    return path.with_name(f"{path.name}.sha256")


def _is_own_file(path: Path) -> bool:
    """A regular file (not a link) of this user that no one else can write: one the cache could have written."""
    info = path.lstat()
    return stat.S_ISREG(info.st_mode) and not info.st_mode & 0o022 and info.st_uid == resources.user_id(info.st_uid)


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
