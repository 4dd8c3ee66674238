"""Reading an .npz someone else may have written: every size checked before anything is allocated.

`np.load` trusts the file: an array header that declares 10^12 floats is allocated before anything can
object, a small compressed member can inflate to gigabytes, and every member is read whether it is
wanted or not. `NpzReader` reads the zip directory and each wanted member's .npy header first, compares
the declared dtype, shape and uncompressed size with what the caller expects, and only then reads the
data. Members the caller does not ask for are never read. Every problem is a CharrnnError naming the file
and the member.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from .errors import CharrnnError

HEADER_LIMIT = 1 << 16  # an .npy header is a short dict; anything longer is not one


def available_memory() -> int:
    """Bytes this process could still allocate: MemAvailable from /proc/meminfo (Linux), else physical memory."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def gib(nbytes: float) -> str:
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"


def require_memory(nbytes: int, what: str) -> None:
    """Refuse, in one line with the estimate, an allocation that cannot fit in the memory available now."""
    free = available_memory()
    if nbytes > free:
        raise CharrnnError(f"{what} needs ~{gib(nbytes)}; this machine has {gib(free)} available")


class NpzReader:
    """Members of an .npz read one at a time, each only after its header passed the caller's checks."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
            self._members = {info.filename: info for info in self._zip.infolist()}
        except (OSError, zipfile.BadZipFile, NotImplementedError, ValueError, EOFError) as error:
            raise CharrnnError(f"{self.path} is not a readable charrnn checkpoint (.npz): {_short(error)}") from None

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._zip.close()

    def names(self) -> list[str]:
        """Array names in the archive (member names without the .npy suffix)."""
        return [name[:-4] for name in self._members if name.endswith(".npy")]

    def __contains__(self, name: str) -> bool:
        return f"{name}.npy" in self._members

    def header(self, name: str) -> tuple[tuple[int, ...], np.dtype]:
        """(shape, dtype) as the member declares them, read without touching its data."""
        with self._open(name) as handle:
            return self._read_header(name, handle)[:2]

    def read(self, name: str, shape: tuple[int, ...] | None = None, dtypes: tuple[str, ...] = (),
             max_bytes: int | None = None) -> np.ndarray:  # fmt: skip
        """The array `name`, after checking its header: exact `shape` when given, dtype among `dtypes` when
        given, at most `max_bytes` of data; the member's declared uncompressed size must match the header
        (a member that would inflate past its array is refused before inflating)."""
        info = self._members.get(f"{name}.npy")
        if info is None:
            raise CharrnnError(f"{self.path}: array {name!r} is missing")
        with self._open(name) as handle:
            declared_shape, dtype, fortran, header_bytes = self._read_header(name, handle)
            if dtypes and dtype.name not in dtypes:
                expected = " or ".join(dtypes)
                raise CharrnnError(f"{self.path}: array {name!r} has dtype {dtype.name}, expected {expected}")
            if shape is not None and declared_shape != tuple(shape):
                raise CharrnnError(f"{self.path}: array {name!r} has shape {declared_shape}, expected {tuple(shape)}")
            count = int(np.prod(declared_shape, dtype=np.int64)) if declared_shape else 1
            nbytes = count * dtype.itemsize
            if max_bytes is not None and nbytes > max_bytes:
                raise CharrnnError(f"{self.path}: array {name!r} declares {gib(nbytes)}, more than it can hold")
            if info.file_size != header_bytes + nbytes:
                raise CharrnnError(
                    f"{self.path}: array {name!r} is damaged (its zip entry holds {info.file_size} bytes, "
                    f"its header declares {header_bytes + nbytes})"
                )
            require_memory(nbytes, f"{self.path}: array {name!r}")
            try:
                data = handle.read(nbytes)
            except (OSError, zipfile.BadZipFile, EOFError, ValueError) as error:
                raise CharrnnError(f"{self.path}: array {name!r} cannot be read: {_short(error)}") from None
            if len(data) != nbytes:
                raise CharrnnError(f"{self.path}: array {name!r} is truncated")
        array = np.frombuffer(data, dtype=dtype, count=count)
        return array.reshape(declared_shape, order="F" if fortran else "C").copy(order="C")

    def _open(self, name: str):
        try:
            return self._zip.open(f"{name}.npy")
        except KeyError:
            raise CharrnnError(f"{self.path}: array {name!r} is missing") from None
        except (OSError, zipfile.BadZipFile, NotImplementedError, ValueError, RuntimeError) as error:
            raise CharrnnError(f"{self.path}: array {name!r} cannot be opened: {_short(error)}") from None

    def _read_header(self, name: str, handle) -> tuple[tuple[int, ...], np.dtype, bool, int]:
        try:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle, max_header_size=HEADER_LIMIT)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle, max_header_size=HEADER_LIMIT)
            else:
                raise ValueError(f"unknown .npy version {version}")
        except (ValueError, OSError, EOFError, SyntaxError, TypeError, zipfile.BadZipFile) as error:
            raise CharrnnError(f"{self.path}: array {name!r} has no valid .npy header: {_short(error)}") from None
        dtype = np.dtype(dtype)
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
            raise CharrnnError(f"{self.path}: array {name!r} has dtype {dtype}, which a checkpoint never holds")
        if any((not isinstance(n, int)) or n < 0 for n in shape):
            raise CharrnnError(f"{self.path}: array {name!r} declares an invalid shape {shape}")
        return tuple(shape), dtype, bool(fortran), handle.tell()


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
