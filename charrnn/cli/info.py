"""`charrnn info MODEL`: architecture, parameter counts, vocabulary and training progress of a checkpoint."""

from __future__ import annotations

import typer

from .common import JsonOption, ModelArgument, echo_json, user_errors


def info(model: ModelArgument, as_json: JsonOption = False) -> None:
    """Architecture, parameter counts, vocabulary and training progress of a checkpoint."""
    from ..model import checkpoint_info
    from ..report import info_text

    with user_errors():
        details = checkpoint_info(model)
    if as_json:
        echo_json(details)
    else:
        typer.echo(info_text(details))
