"""`charrnn curves MODEL`: training and validation loss against steps or time, from <stem>.metrics.jsonl."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import JsonOption, echo_json, user_errors
from .options import escape


def curves(
    model: Annotated[
        Path,
        typer.Argument(help="Checkpoint (.npz) whose <stem>.metrics.jsonl to plot, or that file.", show_default=False),
    ],
    png: Annotated[
        Path | None,
        typer.Option("-o", "--output", help=escape("Also draw a PNG here (needs: pip install 'charrnn[plot]').")),
    ] = None,
    x: Annotated[str, typer.Option("--x", help="Terminal plot against step or time.")] = "step",
    width: Annotated[int, typer.Option(help="Terminal plot width in characters.")] = 64,
    height: Annotated[int, typer.Option(help="Terminal plot height in lines.")] = 12,
    ascii_only: Annotated[bool, typer.Option("--ascii", help="Plain ASCII plot characters.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Training and validation loss against steps and time, in the terminal and optionally as a PNG."""
    from ..errors import CharrnnError
    from ..metrics import curves_png, find_metrics, read_metrics, terminal_plot

    with user_errors():
        path = find_metrics(model)
        records = read_metrics(path)
        if x not in ("step", "time"):
            raise CharrnnError(f"--x must be step or time, got {x!r}")
        plot = None if as_json else terminal_plot(records, "step" if x == "step" else "elapsed", width, height,
                                                  ascii_only)  # fmt: skip
        written = curves_png(records, png, title=str(model)) if png is not None else None
    if as_json:
        echo_json({"metrics_file": str(path), "png": None if written is None else str(written), "records": records},
                  indent=None)  # fmt: skip
        return
    typer.echo(plot)
    if written is not None:
        typer.echo(f"wrote {written}", err=True)
