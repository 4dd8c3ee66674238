"""`charrnn export`: a model's weights as safetensors or a PyTorch state_dict (nn.RNN + nn.Linear names)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer


class ExportFormat(str, Enum):
    safetensors = "safetensors"
    torch = "torch"


def export(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.npz).", show_default=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.", show_default=False)],
    fmt: Annotated[ExportFormat, typer.Option("--format", help="safetensors (no dependency) or torch.")] = (
        ExportFormat.safetensors
    ),
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists.")] = False,
) -> None:
    """Write MODEL's weights for PyTorch: tensors named as nn.RNN(V, H, L) + nn.Linear(H, V) hold them
    (prefixes rnn. and output.), the vocabulary and configuration in the metadata."""
    from ..errors import CharrnnError
    from ..export import export_model
    from ..model import load_model
    from .common import user_errors

    with user_errors():
        from ..outputs import same_file

        if output.exists() and same_file(output, model):  # through links too
            raise CharrnnError(f"-o {output} is the model itself; choose another output file")
        if output.exists() and not force:
            raise CharrnnError(f"{output} exists; pass --force to replace it")
        written = export_model(load_model(model), output, fmt.value)
        typer.echo(f"wrote {written} ({fmt.value}, {written.stat().st_size:,} bytes)", err=True)
