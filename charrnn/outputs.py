"""Where results are written: never over an input, and one writer at a time.

Two guards every command that writes a file uses before it writes anything:

  - `refuse_inputs(outputs, inputs)`: an output that is the same file as an input (`train corpus.txt -o
    corpus.txt`, `-o` equal to `--val-file` or `--init-from`, `curves -o` equal to the metrics file) is
    refused, naming both. "The same file" is decided by the file system (device and inode, so links
    and `./a/../a` count), or by the resolved path when the output does not exist yet.
  - `hold_output(path)`: an exclusive `fcntl.flock` on `.<name>.lock` beside the output for as long as
    the run writes it. A second process that wants the same output gets one line saying who holds it,
    instead of two runs interleaving their checkpoints and metrics. The kernel drops the lock when the
    process ends however it ends (kill -9 included), so a crash never leaves a stale lock; the lock file
    is removed on a clean release. Within one process the lock is re-entrant (the CLI takes it before
    checking the output, the training loop takes it again).

Temporary files of interrupted writes are cleaned by atomic.py on the next write to the same path.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from .errors import CharrnnError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, writes stay atomic
    fcntl = None  # type: ignore[assignment]

_held: dict[str, int] = {}  # lock file -> how many holders in this process


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name the same file (by device and inode when both exist, else by resolved path)."""
    a, b = Path(a), Path(b)
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def refuse_inputs(outputs: Mapping[str, str | Path | None], inputs: Iterable[tuple[str, str | Path | None]]) -> None:
    """CharrnnError if an output (label -> path, e.g. {"-o": "m.npz"}) is one of the inputs ((label, path)
    pairs; a label may repeat, as "corpus" does). None entries and standard input ("-") are ignored."""
    inputs = list(inputs)
    for out_label, output in outputs.items():
        if output is None:
            continue
        for in_label, source in inputs:
            if source is None or str(source) == "-":
                continue
            if same_file(output, source):
                raise CharrnnError(f"{out_label} {output} is the same file as {in_label} {source}; writing it "
                                   "would destroy the input: choose another output")  # fmt: skip


def lock_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(f".{output.name}.lock")


@contextlib.contextmanager
def hold_output(output: str | Path) -> Iterator[None]:
    """Hold the write lock of `output` inside the block (see the module docstring)."""
    path = lock_path(output)
    key = str(path.absolute())
    if key in _held or fcntl is None:
        _held[key] = _held.get(key, 0) + 1
        try:
            yield
        finally:
            _held[key] -= 1
            if not _held[key]:
                del _held[key]
        return
    fd = _acquire(path, output)
    _held[key] = 1
    try:
        yield
    finally:
        del _held[key]
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still holding it: a process waiting on the old file retries (see _acquire)
        os.close(fd)


def _acquire(path: Path, output: str | Path) -> int:
    """An open, flock'ed descriptor of `path`. Retries when the file was replaced between open and lock
    (a holder releasing unlinks it; locking the unlinked file would lock nothing)."""
    for _ in range(100):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            if error.errno in (errno.EACCES, errno.EROFS, errno.EPERM, errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
                return _unlocked_fd()  # no lock possible there: the write itself fails with a clearer message
            raise CharrnnError(f"cannot lock {output}: {error.strerror or error}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _read_holder(fd)
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise CharrnnError(f"{output} is being written by another charrnn process{holder}; wait for it to "
                                   "finish or choose another output") from None  # fmt: skip
            raise CharrnnError(f"cannot lock {output}: {error.strerror or error}") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)
    raise CharrnnError(f"cannot lock {output}: its lock file {path} keeps changing")


def _unlocked_fd() -> int:
    return os.open(os.devnull, os.O_RDONLY)


def _read_holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        pid = int(os.pread(fd, 32, 0).decode().strip())
        return f" (pid {pid})"
    return ""
