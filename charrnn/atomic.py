"""Atomic file writes: the one way charrnn puts a file under its final name.

Data goes to a temporary file in the destination's directory (so the final `os.replace` is an atomic
rename on the same file system), is flushed and fsync'ed, then renamed, and the directory is fsync'ed
so the rename itself survives a crash. If the body raises (an error, a failed check, Ctrl-C) the
temporary file is removed and the final name is untouched: a checkpoint, a cached corpus or a download
is never seen torn or half-written.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import CharrnnError


@contextlib.contextmanager
def atomic_writer(final_path: str | Path, make_parents: bool = False) -> Iterator[BinaryIO]:
    """Open a temporary file beside `final_path`; on a clean exit fsync it and rename it into place.

    Failures of the writing machinery itself (no such directory, disk full) become CharrnnError naming
    the file; whatever the body raises passes through unchanged.
    """
    final_path = Path(final_path)
    directory = final_path.parent
    try:
        if make_parents:
            directory.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{final_path.name}.", suffix=".part")
    except OSError as error:
        raise CharrnnError(f"cannot write {final_path}: {error.strerror or error}") from None
    try:
        # mkstemp creates the file private (0600); an output or cache file should be readable like any other
        os.chmod(temp_name, 0o644)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            _durable(handle.flush, final_path)
            _durable(lambda: os.fsync(handle.fileno()), final_path)
        _durable(lambda: os.replace(temp_name, final_path), final_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    _fsync_directory(directory)


def write_bytes_atomic(path: str | Path, data: bytes, make_parents: bool = False) -> None:
    """Replace `path` with `data` atomically."""
    with atomic_writer(path, make_parents) as handle:
        handle.write(data)


def _durable(operation, final_path: Path) -> None:
    try:
        operation()
    except OSError as error:
        raise CharrnnError(f"cannot write {final_path}: {error.strerror or error}") from None


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
