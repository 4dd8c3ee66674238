"""`charrnn compress` and `charrnn decompress`: parse, call charrnn.codec, report. Registered in
charrnn/cli/__init__.py.

A one-line summary goes to stderr (or, with --json, one JSON record to stdout, docs/json.md); the data goes
to the output file, or to stdout with `-o -`. Library imports happen inside the commands (`--help` stays fast).
"""

from __future__ import annotations

from typing import Annotated

import typer

from .common import JsonOption, ModelArgument, emit, show_bars, user_errors

InputArgument = Annotated[str, typer.Argument(help="Input file, or - for standard input.", show_default=False)]
ForceOption = Annotated[bool, typer.Option("--force", "-f", help="Replace an existing output file.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]
PROGRESS_BYTES = 1 << 20  # show a progress bar for inputs from this size


def compress(
    model: ModelArgument,
    source: InputArgument = "-",
    output: Annotated[
        str | None, typer.Option("-o", "--output", help="Compressed file (default: FILE.crz; stdout when reading -).")
    ] = None,
    adapt: Annotated[
        bool, typer.Option("--adapt", help="Keep training the model on the text as it is coded (slower, smaller).")
    ] = False,
    adapt_lr: Annotated[float, typer.Option("--adapt-lr", help="Learning rate of --adapt (SGD), in (0, 10].")] = 0.02,
    adapt_window: Annotated[
        int, typer.Option("--adapt-window", help="Characters per --adapt update (its BPTT length).", min=1, max=4096)
    ] = 32,
    force: ForceOption = False,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Compress a file with MODEL: arithmetic coding of every character with the model's prediction.
    Any bytes round-trip; decompressing needs the very same model file."""
    from ..codec import Adaptation, files
    from ..codec import compress as run
    from ..errors import CharrnnError, OptionError
    from ..model import load_model

    with user_errors():
        try:
            adaptation = Adaptation(adapt_lr, adapt_window) if adapt else None
        except CharrnnError as error:
            raise OptionError(str(error)) from None
        target = files.output_name(source, output, compressing=True)
        files.check_output(target, [source, str(model)], force, binary=True)
        _check_json(as_json, target)
        loaded = load_model(model)
        data = files.read_input(source)
        with _progress(len(data), quiet) as tick:
            blob, stats = run(loaded, data, adapt=adaptation, progress=tick)
        files.write_output(target, blob)
        _report(stats, source, target, as_json, quiet, "compressed", model, adaptation)


def decompress(
    model: ModelArgument,
    source: InputArgument,
    output: Annotated[
        str | None, typer.Option("-o", "--output", help="Decompressed file (default: FILE without .crz; stdout for -).")
    ] = None,
    force: ForceOption = False,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Decompress a file made by `charrnn compress` with the same MODEL. A damaged file, or another
    model, is an error; nothing is written then."""
    from ..codec import decompress as run
    from ..codec import files, read_header
    from ..model import load_model

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
        _report(stats, source, target, as_json, quiet, "decompressed", model, header.adapt)


def _check_json(as_json: bool, target: str) -> None:
    from ..codec.files import STREAM
    from ..errors import OptionError

    if as_json and target == STREAM:
        raise OptionError("--json prints on stdout: write the data to a file with -o FILE")


def _progress(size: int, quiet: bool):
    """A context manager yielding a callback(characters) that advances a progress bar on stderr (only
    for inputs of PROGRESS_BYTES or more; characters approximate bytes)."""
    import contextlib

    from tqdm import tqdm

    @contextlib.contextmanager
    def bar():
        if not show_bars(quiet) or size < PROGRESS_BYTES:
            yield None
            return
        with tqdm(total=size, unit="char", unit_scale=True, leave=False, dynamic_ncols=True) as progress:
            yield progress.update

    return bar()


def _report(stats, source: str, target: str, as_json: bool, quiet: bool, verb: str, model, adapt) -> None:
    if as_json:
        adaptation = {"lr": adapt.lr, "window": adapt.window} if adapt else None
        emit({"kind": "compression" if verb == "compressed" else "decompression",
              "input": source, "output": target, "model": str(model), "adapt": adaptation,
              **stats.to_dict()})  # fmt: skip
    elif not quiet:
        sizes = (stats.original_bytes, stats.compressed_bytes)
        before, after = sizes if verb == "compressed" else sizes[::-1]
        typer.echo(f"{source}: {before:,} -> {after:,} bytes ({stats.bits_per_byte:.3f} bits/byte), "
                   f"{stats.kilobytes_per_second:,.0f} KB/s; {verb} to {'stdout' if target == '-' else target}",
                   err=True)  # fmt: skip
