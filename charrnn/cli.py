"""The `charrnn` command line: parses options, calls one library function, prints, exits.

No maths lives here. Expected failures are `CharrnnError`s, printed as one `Error: ...` line on stderr
with exit status 1; usage errors keep Click's status 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import typer

from .errors import CharrnnError

app = typer.Typer(
    name="charrnn",
    help="Character-level RNN language models: train, sample, score.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected failures into one line on stderr and a non-zero exit."""
    try:
        yield
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
