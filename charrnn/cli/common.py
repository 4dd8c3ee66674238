"""What every command shares: the error boundary, signals, a guarded standard output, and options spelled the
same everywhere."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import CharrnnError, OptionError


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt is for SIGINT (a cluster scheduler's stop): exit 143."""


def _raise_terminated(signum, frame):  # noqa: ARG001
    raise Terminated


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """SIGTERM raises Terminated inside the block (the previous handler is restored after)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def describe(error: BaseException) -> tuple[str, int] | None:
    """(one-line message, exit status) for an exception a user can cause, or None for a bug."""
    if isinstance(error, OptionError):
        return str(error), 2
    if isinstance(error, CharrnnError):
        return str(error), 1
    if isinstance(error, OSError):
        if error.filename is None:
            return f"input/output error: {error.strerror or error}", 1
        name = error.filename if isinstance(error.filename, str) else os.fsdecode(error.filename)
        return f"{name}: {error.strerror or error}", 1
    if isinstance(error, MemoryError):
        return "out of memory (the request is larger than this machine can hold; try smaller sizes)", 1
    if isinstance(error, UnicodeError):
        return f"text cannot be {'decoded' if isinstance(error, UnicodeDecodeError) else 'encoded'}: {error}", 1
    return None


class StdoutError(CharrnnError):
    """Standard output cannot be written (a full disk or device, a closed descriptor)."""


class GuardedStdout:
    """Standard output whose write failures are one clear StdoutError (a closed pipe stays a
    BrokenPipeError: `charrnn sample | head` is not an error). Wraps None (fd 1 closed) too."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _guard(self, operation: str, *args: Any) -> Any:
        if self._stream is None:
            raise StdoutError("cannot write to standard output: it is closed")
        try:
            return getattr(self._stream, operation)(*args)
        except BrokenPipeError:
            raise
        except OSError as error:
            raise StdoutError(f"cannot write to standard output: {error.strerror or error}") from None
        except UnicodeEncodeError as error:
            raise StdoutError(f"cannot write to standard output: its encoding ({error.encoding}) cannot "
                              f"represent {error.object[error.start:error.end]!a}") from None  # fmt: skip

    def write(self, text: str) -> int:
        return self._guard("write", text)

    def flush(self) -> None:
        if self._stream is not None:
            self._guard("flush")

    def isatty(self) -> bool:
        return self._stream is not None and self._stream.isatty()

    def __getattr__(self, name: str) -> Any:
        if self._stream is None:
            raise StdoutError("cannot write to standard output: it is closed")
        return getattr(self._stream, name)


@contextlib.contextmanager
def guarded_stdout() -> Iterator[None]:
    """`sys.stdout` is a GuardedStdout inside the block; at the end its buffer is flushed while errors can
    still be reported. Descriptors 1 and 2, when closed, are held on /dev/null so that no file the
    command opens lands on them."""
    for fd in (1, 2):
        try:
            os.fstat(fd)
        except OSError:
            with contextlib.suppress(OSError):
                held = os.open(os.devnull, os.O_RDWR)
                if held != fd:
                    os.dup2(held, fd)
                    os.close(held)
    original = sys.stdout
    if getattr(original, "errors", None) == "strict":  # a file name with bytes that are not UTF-8 prints as them
        with contextlib.suppress(Exception):
            original.reconfigure(errors="surrogateescape")
    sys.stdout = GuardedStdout(original)  # type: ignore[assignment]
    try:
        yield
        sys.stdout.flush()
    finally:
        sys.stdout = original


def silence_stdout() -> None:
    """Point standard output at /dev/null, so that nothing left in its buffer fails again at exit."""
    with contextlib.suppress(Exception):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """The one error boundary: every failure a user can cause becomes one `Error: ...` line on stderr and a
    non-zero exit — 2 for a bad option value (a usage mistake, as Click's own), 1 for everything else
    (a CharrnnError, a file that cannot be read or written, standard output full or closed, text that
    cannot be encoded, memory), 130 for Ctrl-C, 143 for SIGTERM. `charrnn sample | head` closing the
    pipe is not an error (exit 0)."""
    try:
        yield
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        raise typer.Exit(130) from None
    except Terminated:
        typer.echo("Terminated.", err=True)
        raise typer.Exit(143) from None
    except BrokenPipeError:
        silence_stdout()
        raise typer.Exit(0) from None
    except (CharrnnError, OSError, MemoryError, UnicodeError) as error:
        message, status = describe(error)  # type: ignore[misc]
        if isinstance(error, StdoutError):
            silence_stdout()
        typer.echo(f"Error: {message}", err=True)
        raise typer.Exit(status) from None


@contextlib.contextmanager
def graceful_interrupt() -> Iterator[list[int]]:
    """The first Ctrl-C or SIGTERM asks the training loop to stop at the next step boundary (so the
    checkpoint it then writes is consistent): `requested[0]` becomes the signal's number. A second one
    interrupts at once (KeyboardInterrupt, or Terminated for SIGTERM)."""
    requested = [0]

    def handler(signum, frame):  # noqa: ARG001
        requested[0] = requested[0] or signum
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _raise_terminated)

    previous = {number: signal.signal(number, handler) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def exit_status(signum: int) -> int:
    """The shell's convention for a run stopped by a signal: 128 + its number (130 Ctrl-C, 143 SIGTERM)."""
    return 128 + signum


def text_argument(value: str | None, flag: str) -> str | None:
    """A text option as given, refused (usage error) when it holds bytes that are not valid UTF-8 (the
    shell passes them through; Python keeps them as lone surrogates, which no text can contain)."""
    if value is None:
        return None
    bad = next((i for i, char in enumerate(value) if "\ud800" <= char <= "\udfff"), None)
    if bad is not None:
        code = ord(value[bad])
        what = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X} (a lone surrogate)"
        raise OptionError(f"{flag} is not valid text: {what} at character {bad + 1} (arguments must be UTF-8)")
    return value


def show_bars(quiet: bool) -> bool:
    """Whether library progress bars that take a plain on/off switch should draw: not under -q, only on a
    terminal, and not under TQDM_DISABLE (which, as tqdm reads it, disables whenever set non-empty). The
    training bar makes this choice itself (charrnn/progress.py)."""
    return not quiet and sys.stderr.isatty() and not os.environ.get("TQDM_DISABLE")


def emit(record: dict[str, Any]) -> None:
    """Print one record as one line of JSON (the convention of docs/json.md: JSON lines everywhere; a
    value that is not a finite number, from a hostile metrics file or a probability of 0, is null)."""
    try:
        line = json.dumps(record, allow_nan=False)
    except ValueError:
        line = json.dumps(_finite(record))
    typer.echo(line)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


ModelArgument = Annotated[Path, typer.Argument(help="Checkpoint (.npz).", show_default=False)]
ThreadsOption = Annotated[int, typer.Option("--threads", help="Threads for BLAS and kernels (0: all cores).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON records, one per line (docs/json.md).")]
UnkOption = Annotated[
    str, typer.Option("--unk", help="Characters not in the model's vocabulary: error, skip or map:<char>.")
]
