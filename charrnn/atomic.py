"""Atomic file writes: the one way charrnn puts a file under its final name.

Data goes to a temporary file in the destination's directory (so the final `os.replace` is an atomic
rename on the same file system), is flushed and fsync'ed, then renamed, and the directory is fsync'ed
so the rename itself survives a crash. If the body raises (an error, a failed check, Ctrl-C) the
temporary file is removed and the final name is untouched: a checkpoint, a cached corpus or a download
is never seen torn or half-written.

A process killed mid-write (kill -9, power loss) cannot remove its temporary file, so the next write to
the same path removes such leftovers (`.<name>.*.part`). A writer holds an exclusive `flock` on its
temporary file while it writes, and the kernel drops that lock when the writer dies: a leftover is a
`.part` file whose lock can be taken, so a concurrent writer's file in progress is never touched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import CharrnnError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no leftovers are recognised, none are removed
    fcntl = None  # type: ignore[assignment]

FRESH_SECONDS = 60  # an empty, unlocked .part younger than this may be a writer between mkstemp and flock


@contextlib.contextmanager
def atomic_writer(final_path: str | Path, make_parents: bool = False) -> Iterator[BinaryIO]:
    """Open a temporary file beside `final_path`; on a clean exit fsync it and rename it into place.

    Failures of the writing machinery itself (no such directory, disk full) become CharrnnError naming
    the file; whatever the body raises passes through unchanged.
    """
    final_path = Path(final_path)
    directory = final_path.parent
    if final_path.exists() and not final_path.is_file():  # renaming over /dev/null or a FIFO would replace it
        what = "a directory" if final_path.is_dir() else "not a regular file (a device, FIFO or socket)"
        raise CharrnnError(f"cannot write {final_path}: it is {what}")
    try:
        if make_parents:
            directory.mkdir(parents=True, exist_ok=True)
        remove_leftovers(final_path)
        fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{final_path.name}.", suffix=".part")
    except OSError as error:
        raise CharrnnError(f"cannot write {final_path}: {error.strerror or error}") from None
    try:
        # mkstemp creates the file private (0600); an output or cache file should be readable like any other
        os.chmod(temp_name, 0o644)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # "alive": see remove_leftovers
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


def remove_leftovers(final_path: str | Path) -> list[Path]:
    """Remove the temporary files that killed writes of `final_path` left behind (see the module
    docstring); returns what was removed. Files another live process is writing are left alone."""
    final_path = Path(final_path)
    removed: list[Path] = []
    if fcntl is None:
        return removed
    directory = final_path.parent if str(final_path.parent) else Path(".")
    try:
        candidates = list(directory.glob(f".{_glob_escape(final_path.name)}.*.part"))
    except OSError:
        return removed
    for candidate in candidates:
        try:
            fd = os.open(candidate, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            info = os.fstat(fd)
            if info.st_size == 0 and time.time() - info.st_mtime < FRESH_SECONDS:
                continue  # possibly a writer that has created its file but not locked it yet
            os.unlink(candidate)
            removed.append(candidate)
        except OSError:
            continue  # locked: a live writer's file
        finally:
            os.close(fd)
    return removed


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


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
