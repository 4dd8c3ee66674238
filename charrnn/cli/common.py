"""What every command shares: the error boundary, Ctrl-C handling, and options spelled the same everywhere."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import CharrnnError, OptionError


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected failures into one line on stderr and a non-zero exit: 2 for a bad option value (a
    usage mistake, as Click's own), 1 for everything else."""
    try:
        yield
    except OptionError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(2) from None
    except CharrnnError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        raise typer.Exit(130) from None
    except BrokenPipeError:
        # `charrnn sample | head`: the reader went away; that is not an error
        with contextlib.suppress(Exception):
            sys.stdout = None  # type: ignore[assignment]
        raise typer.Exit(0) from None


@contextlib.contextmanager
def graceful_interrupt() -> Iterator[list[bool]]:
    """First Ctrl-C asks the training loop to stop at the next step boundary (so the checkpoint it then
    writes is consistent); a second one interrupts at once."""
    requested = [False]

    def handler(signum, frame):  # noqa: ARG001
        requested[0] = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, previous)


def show_bars(quiet: bool) -> bool:
    """Whether library progress bars that take a plain on/off switch should draw: not under -q, only on a
    terminal, and not under TQDM_DISABLE (which, as tqdm reads it, disables whenever set non-empty). The
    training bar makes this choice itself (charrnn/progress.py)."""
    return not quiet and sys.stderr.isatty() and not os.environ.get("TQDM_DISABLE")


def emit(record: dict[str, Any]) -> None:
    """Print one record as one line of JSON (the convention of docs/json.md: JSON lines everywhere)."""
    typer.echo(json.dumps(record))


ModelArgument = Annotated[Path, typer.Argument(help="Checkpoint (.npz).", show_default=False)]
ThreadsOption = Annotated[int, typer.Option("--threads", help="Threads for BLAS and kernels (0: all cores).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON records, one per line (docs/json.md).")]
UnkOption = Annotated[
    str, typer.Option("--unk", help="Characters not in the model's vocabulary: error, skip or map:<char>.")
]
