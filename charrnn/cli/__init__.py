"""The `charrnn` command line: parses options, calls one library function, prints, exits.

One module per command; this one builds the Typer app from them and holds `main()` (the `charrnn`
entry point, also `python -m charrnn`). No maths lives here, and library imports happen inside the
commands so `charrnn --help` stays fast. Text reports are rendered from the same records `--json`
prints (charrnn/report.py).

Exit status: 0 done; 1 a runtime failure (a missing or corrupt file, a corpus too short, divergence),
printed as one `Error: ...` line; 2 a usage mistake (an unknown option, a value of the wrong type, out
of range or not among the choices), also one `Error: ...` line; 130 interrupted (Ctrl-C); 143 stopped by
SIGTERM (training saves first, as for Ctrl-C).
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from ..errors import CharrnnError
from . import attribute, codec, corpus, curves, engine, export, info, rerank, sample, score, series, spot, train, viz
from .common import StdoutError, Terminated, describe, guarded_stdout, signals_as_exceptions, silence_stdout

# Click's base exception, reached through Typer's public BadParameter: recent Typer releases vendor Click
# (typer._click), older ones use click itself, and both keep this class hierarchy.
ClickException = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class CharrnnGroup(TyperGroup):
    """The outer error boundary: Click's usage errors as one `Error:` line (exit 2, as Click), Ctrl-C
    anywhere as exit 130, SIGTERM as 143, and whatever a command let through that a user can cause
    (common.describe) as one line; standard output guarded (common.guarded_stdout)."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            with signals_as_exceptions(), guarded_stdout():
                status = super().main(*args, standalone_mode=False, **kwargs)
        except ClickException as error:
            context = getattr(error, "ctx", None)
            hint = f" (see '{context.command_path} --help')" if context is not None else ""
            typer.echo(f"Error: {error.format_message()}{hint}", err=True)
            sys.exit(error.exit_code)
        except (typer.Abort, KeyboardInterrupt):
            typer.echo("Interrupted.", err=True)
            sys.exit(130)
        except Terminated:
            typer.echo("Terminated.", err=True)
            sys.exit(143)
        except BrokenPipeError:
            silence_stdout()
            sys.exit(0)
        except (OSError, MemoryError, UnicodeError, CharrnnError) as error:
            message, status = describe(error)  # type: ignore[misc]
            if isinstance(error, StdoutError):
                silence_stdout()
            typer.echo(f"Error: {message}", err=True)
            sys.exit(status)
        sys.exit(status if isinstance(status, int) else 0)


app = typer.Typer(
    name="charrnn",
    cls=CharrnnGroup,
    help="Character-level RNN language models: train, sample, score.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from ..provenance import version

        typer.echo(f"charrnn {version()}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_version)
    ] = False,
) -> None:
    pass


app.command()(train.train)
app.command()(info.info)
app.add_typer(corpus.corpus_app, name="corpus")
app.command()(sample.sample)
app.command()(score.score)
app.command()(attribute.attribute)
app.command()(curves.curves)
app.command()(export.export)
app.add_typer(series.series_app, name="series")
app.command()(viz.viz)
app.command()(rerank.rerank)
app.command()(spot.spot)
app.command(name="sweep")(engine.sweep)  # grid or random search over `charrnn train`
app.command()(codec.compress)
app.command()(codec.decompress)


def main() -> None:
    app()


__all__ = ["app", "main"]
