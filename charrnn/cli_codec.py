"""`charrnn compress` and `charrnn decompress`: parse, call charrnn.codec, report. Registered in cli.py.

A one-line summary goes to stderr (or, with --json, one JSON object to stdout); the data goes to the
output file, or to stdout with `-o -`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

InputArgument = Annotated[str, typer.Argument(help="Input file, or - for standard input.", show_default=False)]
ModelArgument = Annotated[Path, typer.Argument(help="Checkpoint (.npz).", show_default=False)]
ForceOption = Annotated[bool, typer.Option("--force", "-f", help="Replace an existing output file.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]
JsonSummary = Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")]
PROGRESS_BYTES = 1 << 20  # show a progress bar for inputs from this size


def compress(
    model: ModelArgument,
    source: InputArgument = "-",
    output: Annotated[
        str | None, typer.Option("-o", "--output", help="Compressed file [default: FILE.crz; stdout for -].")
    ] = None,
    adapt: Annotated[
        bool, typer.Option("--adapt", help="Keep training the model on the text as it is coded (slower, smaller).")
    ] = False,
    adapt_lr: Annotated[float, typer.Option("--adapt-lr", help="Learning rate of --adapt (SGD).")] = 0.02,
    adapt_window: Annotated[
        int, typer.Option("--adapt-window", help="Characters per --adapt update (its BPTT length).")
    ] = 32,
    force: ForceOption = False,
    quiet: QuietOption = False,
    as_json: JsonSummary = False,
) -> None:
    """Compress a file with MODEL: arithmetic coding of every character with the model's prediction.
    Any bytes round-trip; decompressing needs the very same model file."""
    from .cli import user_errors
    from .codec import Adaptation, files
    from .codec import compress as run
    from .model import load_model

    with user_errors():
        adaptation = Adaptation(adapt_lr, adapt_window) if adapt else None
        target = files.output_name(source, output, compressing=True)
        files.check_output(target, [source, str(model)], force, binary=True)
        _check_json(as_json, target)
        loaded = load_model(model)
        data = files.read_input(source)
        with _progress(len(data), quiet) as tick:
            blob, stats = run(loaded, data, adapt=adaptation, progress=tick)
        files.write_output(target, blob)
        _report(stats, source, target, as_json, quiet, "compressed")


def decompress(
    model: ModelArgument,
    source: InputArgument,
    output: Annotated[
        str | None, typer.Option("-o", "--output", help="Decompressed file [default: FILE without .crz; stdout for -].")
    ] = None,
    force: ForceOption = False,
    quiet: QuietOption = False,
    as_json: JsonSummary = False,
) -> None:
    """Decompress a file made by `charrnn compress` with the same MODEL. A damaged file, or another
    model, is an error; nothing is written then."""
    from .cli import user_errors
    from .codec import decompress as run
    from .codec import files, read_header
    from .model import load_model

    with user_errors():
        target = files.output_name(source, output, compressing=False)
        files.check_output(target, [source, str(model)], force, binary=False)
        _check_json(as_json, target)
        loaded = load_model(model)
        blob = files.read_input(source)
        name = "<stdin>" if source == files.STREAM else source
        header = read_header(blob, name)
        with _progress(header.size, quiet) as tick:
            data, stats = run(loaded, blob, name=name, progress=tick, model_name=str(model))
        files.write_output(target, data)
        _report(stats, source, target, as_json, quiet, "decompressed")


def _check_json(as_json: bool, target: str) -> None:
    from .codec.files import STREAM
    from .errors import CharrnnError

    if as_json and target == STREAM:
        raise CharrnnError("--json prints on stdout: write the data to a file with -o FILE")


def _progress(size: int, quiet: bool):
    """A context manager yielding a callback(characters) that advances a progress bar on stderr (only
    for inputs of PROGRESS_BYTES or more; characters approximate bytes)."""
    import contextlib

    from tqdm import tqdm

    @contextlib.contextmanager
    def bar():
        if quiet or size < PROGRESS_BYTES:
            yield None
            return
        with tqdm(total=size, unit="char", unit_scale=True, leave=False, dynamic_ncols=True) as progress:
            yield progress.update

    return bar()


def _report(stats, source: str, target: str, as_json: bool, quiet: bool, verb: str) -> None:
    if as_json:
        typer.echo(json.dumps({"input": source, "output": target, **stats.to_dict()}))
    elif not quiet:
        sizes = (stats.original_bytes, stats.compressed_bytes)
        before, after = sizes if verb == "compressed" else sizes[::-1]
        typer.echo(f"{source}: {before:,} -> {after:,} bytes ({stats.bits_per_byte:.3f} bits/byte), "
                   f"{stats.kilobytes_per_second:,.0f} KB/s; {verb} to {'stdout' if target == '-' else target}",
                   err=True)  # fmt: skip
