"""`charrnn info MODEL`: architecture, parameter counts, vocabulary and training progress of a checkpoint."""

from __future__ import annotations

import typer

from .common import JsonOption, ModelArgument, emit, user_errors


def info(model: ModelArgument, as_json: JsonOption = False) -> None:
    """Architecture, parameter counts, vocabulary, training progress and options of a checkpoint."""
    from ..report import info_record, info_text
    from ..series.model import is_series_checkpoint

    if is_series_checkpoint(model):  # a `charrnn series` model has its own summary (cli/series.py)
        from .series import show_info

        return show_info(model, as_json)
    with user_errors():
        details = info_record(model)
    if as_json:
        emit(details)
    else:
        typer.echo(info_text(details))
