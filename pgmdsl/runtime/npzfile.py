""".npy and .npz files read as untrusted data: every header checked before any array is read.

Checkpoints and data files are NumPy files someone else may have made:
truncated, bit-flipped, holding pickles, or a few bytes declaring gigabytes.
`read_npz` and `read_npy` check each array's header (no Python objects, a
shape that agrees with the bytes present, a caller's size budget over all
headers together) before numpy reads, and so allocates, anything; damage of
any kind is one error line saying what is wrong with which member.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from dataclasses import dataclass
from math import prod
from typing import Callable

import numpy as np

from ..errors import DSLError

# What zipfile, the .npy header parser and numpy raise on a damaged file: it is the file, not the program.
DAMAGE = (OSError, EOFError, ValueError, TypeError, KeyError, IndexError, OverflowError, SyntaxError,
          RuntimeError, NotImplementedError, zipfile.BadZipFile, zlib.error)


@dataclass(frozen=True)
class Header:
    """What one array's .npy header declares."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def bytes(self) -> int:
        return prod(self.shape) * self.dtype.itemsize


Budget = Callable[[list[Header]], None]  # raises if the declared arrays together are too large


def shown(text: str, limit: int = 200) -> str:
    """Text from a file as one printable line: escapes (newlines, terminal controls), at most `limit` characters."""
    text = repr(text)[1:-1]
    return text if len(text) <= limit else text[:limit] + "..."


def is_npz(path) -> bool:
    """Whether the file is a zip archive (a .npz), by its content rather than its name."""
    with open(path, "rb") as stream:
        return stream.read(4) == b"PK\x03\x04"


def read_npz(path, what: str, budget: Budget, error=DSLError) -> dict[str, np.ndarray]:
    """Every array of the .npz at `path` by name, read only after every member's header was checked.

    what: how errors name the file ("checkpoint runs/x/model.npz"). One open
    file serves both passes, so what was checked is what is read.
    """
    try:
        with open(path, "rb") as stream, zipfile.ZipFile(stream) as archive:
            length = os.fstat(stream.fileno()).st_size
            infos = archive.infolist()
            names = [info.filename for info in infos]
            if len(set(names)) != len(names):
                raise error(f"cannot read {what}: a member name appears twice")
            headers = [_member_header(what, archive, info, length, error) for info in infos]
            budget([header for header, _ in headers])  # before the sizes: a huge declaration is told as such
            for info, (header, start) in zip(infos, headers):
                if start + header.bytes != info.file_size:
                    raise error(f"cannot read {what}: member '{shown(info.filename)}' declares {header.bytes} bytes "
                                f"of data; it holds {info.file_size - start}")
            return {info.filename[:-len(".npy")]: _member_array(what, archive, info, error) for info in infos}
    except DAMAGE as failure:
        raise error(f"cannot read {what}: {shown(str(failure) or type(failure).__name__)}") from None


def read_npy(path, what: str, budget: Budget, error=DSLError) -> np.ndarray:
    """The array of the .npy file at `path`, read only after its header was checked against `budget`."""
    try:
        with open(path, "rb") as stream:
            length = os.fstat(stream.fileno()).st_size
            header, start = _header(stream, "array", lambda why: _refuse(error, f"cannot read {what}: it {why}"))
            budget([header])
            if start + header.bytes != length:
                raise error(f"cannot read {what}: it declares {header.bytes} bytes of data; it holds {length - start}")
            stream.seek(0)
            return np.lib.format.read_array(stream, allow_pickle=False)
    except DAMAGE as failure:
        raise error(f"cannot read {what}: {shown(str(failure) or type(failure).__name__)}") from None


def _refuse(error, message: str):
    raise error(message)


def _header(stream, name: str, refuse) -> tuple[Header, int]:
    """The .npy header at the stream's position, and where its data starts; refuses objects and odd versions.

    refuse(why) raises; `why` completes "the array ..." ("holds Python objects").
    """
    version = np.lib.format.read_magic(stream)
    if version not in ((1, 0), (2, 0)):
        refuse(f"is .npy format version {version[0]}.{version[1]} (1.0 and 2.0 are read)")
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = reader(stream)
    if dtype.hasobject:
        refuse("holds Python objects (a pickle), which are never loaded")
    if any(size < 0 for size in shape):
        refuse(f"declares the shape {shape}")
    return Header(name, tuple(shape), dtype), stream.tell()


def _member_header(what: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo, length: int,
                   error) -> tuple[Header, int]:
    """A member's header and where its data starts, refusing whatever cannot be an array numpy wrote."""
    def refuse(why: str):
        raise error(f"cannot read {what}: member '{shown(info.filename)}' {why}")

    if not info.filename.endswith(".npy"):
        refuse("is not a .npy array")
    if info.flag_bits & 0x1:
        refuse("is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        refuse(f"uses compression method {info.compress_type} (numpy writes stored or deflated members)")
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        refuse(f"is stored uncompressed in {info.compress_size} bytes but declares {info.file_size}")
    if info.header_offset + info.compress_size > length:
        refuse(f"extends past the end of the file ({length} bytes)")
    with archive.open(info) as member:
        return _header(member, info.filename[:-len(".npy")], refuse)


def _member_array(what: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo, error) -> np.ndarray:
    with archive.open(info) as member:
        array = np.lib.format.read_array(member, allow_pickle=False)
        if member.read(1):  # reaching the end also checks the member's CRC
            raise error(f"cannot read {what}: member '{shown(info.filename)}' has bytes after its data")
    return array
