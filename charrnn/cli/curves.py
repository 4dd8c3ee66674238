"""`charrnn curves MODEL`: training and validation loss against steps or time, from <stem>.metrics.jsonl."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import JsonOption, emit, user_errors
from .options import choice_type, escape

Axis = choice_type("Axis", ("step", "time"))
MAX_WIDTH, MAX_HEIGHT = 1000, 500  # metrics.MAX_PLOT: a plot larger than any terminal is a mistake


def curves(
    model: Annotated[
        Path,
        typer.Argument(help="Checkpoint (.npz) whose <stem>.metrics.jsonl to plot, or that file.", show_default=False),
    ],
    png: Annotated[
        Path | None,
        typer.Option("-o", "--output", help=escape("Also draw a PNG here (needs: pip install 'charrnn[plot]').")),
    ] = None,
    x: Annotated[Axis, typer.Option("--x", help="Terminal plot against step or time.")] = Axis("step"),
    width: Annotated[int, typer.Option(help="Terminal plot width in characters.", min=8, max=MAX_WIDTH)] = 64,
    height: Annotated[int, typer.Option(help="Terminal plot height in lines.", min=3, max=MAX_HEIGHT)] = 12,
    ascii_only: Annotated[bool, typer.Option("--ascii", help="Plain ASCII plot characters.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Training and validation loss against steps and time, in the terminal and optionally as a PNG."""
    from ..metrics import curves_png, find_metrics, read_metrics, terminal_plot
    from ..outputs import refuse_inputs

    with user_errors():
        path = find_metrics(model)
        stem = path.with_name(path.name.removesuffix(".metrics.jsonl"))
        history = [("the metrics file", path), ("MODEL", model), ("the model", stem.with_suffix(".npz")),
                   ("the best model", stem.with_suffix(".best.npz"))]  # fmt: skip
        refuse_inputs({"-o": png}, history)
        records = read_metrics(path)
        plot = None if as_json else terminal_plot(records, "step" if x.value == "step" else "elapsed", width, height,
                                                  ascii_only)  # fmt: skip
        written = curves_png(records, png, title=str(model)) if png is not None else None
    if as_json:
        for record in records:
            emit({"kind": "metrics", **record})
        emit({"kind": "curves", "metrics_file": str(path), "png": None if written is None else str(written),
              "evaluations": len(records)})  # fmt: skip
        return
    typer.echo(plot)
    if written is not None:
        typer.echo(f"wrote {written}", err=True)
