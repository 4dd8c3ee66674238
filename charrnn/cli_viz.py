"""`charrnn viz`: a self-contained HTML page of what a model sees in a text (and its data as JSON).

Registered in the CLI app next to the other commands; the library work is in viz.py and viz_page.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def viz(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.npz).", show_default=False)],
    source: Annotated[str | None, typer.Argument(help="Text file to show, or - for stdin.", show_default=False)] = None,
    text: Annotated[str | None, typer.Option("--text", help="Show this string instead of a file.")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the HTML page here.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the page's data (surprisal, top-5, activations) as one JSON object.")
    ] = False,
    max_chars: Annotated[int, typer.Option(help="Show at most this many characters (the first ones).")] = 20_000,
    max_mb: Annotated[
        float,
        typer.Option(help="Keep the page under this many MB: coarser activations, then fewer characters (0: off)."),
    ] = 5.0,
    pattern: Annotated[
        str | None,
        typer.Option(
            help="Rank the hidden units by correlation with this regex's matches (the page opens on the top one)."
        ),
    ] = None,
    top_units: Annotated[int, typer.Option(help="Units listed for --pattern.")] = 10,
    unk: Annotated[
        str, typer.Option("--unk", help="Characters not in the model's vocabulary: error, skip or map:<char>.")
    ] = "error",
    threads: Annotated[int, typer.Option("--threads", help="Threads for BLAS and kernels (0: all cores).")] = 1,
) -> None:
    """Shade a text by the model's surprisal, with its top-5 guesses, every hidden unit and a pattern
    search, in one HTML file that opens from disk (no network)."""
    from .cli import user_errors
    from .errors import CharrnnError
    from .generate import compute_threads
    from .model import load_model
    from .score import read_source
    from .viz import to_payload, visualise
    from .viz_page import payload_budget, payload_json, write_page
    from .vocab import parse_unk_option

    with user_errors():
        if (source is None) == (text is None):
            raise CharrnnError("give a FILE (or - for stdin) or --text, exactly one")
        if output is None and not as_json:
            raise CharrnnError("give -o PAGE.html to write the page, or --json to print its data")
        if output is not None and output.is_dir():
            raise CharrnnError(f"{output} is a directory; give a file name for the page")
        if top_units < 1:
            raise CharrnnError(f"--top-units must be >= 1, got {top_units}")
        if max_mb < 0:
            raise CharrnnError(f"--max-mb must be >= 0 (0: no limit), got {max_mb}")
        body, name = (text, "--text") if text is not None else read_source(source)
        loaded = load_model(model)
        with compute_threads(threads):
            vis = visualise(loaded, body, parse_unk_option(unk), max_chars=max_chars, where=name,
                            max_bytes=payload_budget(max_mb))  # fmt: skip
        payload = to_payload(vis, loaded, source=name, model_name=model.name, pattern=pattern, top_units=top_units,
                             max_bytes=payload_budget(max_mb))  # fmt: skip
        if output is not None:
            size = write_page(output, payload)
            shown = payload["characters"]
            cut = f" (the first {shown:,} of {payload['source_characters']:,})" if payload["limited_by"] else ""
            typer.echo(f"wrote {output} ({size / 1e6:.2f} MB): {shown:,} characters{cut}, "
                       f"{payload['bits_per_char']:.3f} bits/char", err=True)  # fmt: skip
        if payload["pattern"] is not None:
            units = ", ".join(f"layer {u['layer']} unit {u['unit']} {u['correlation']:+.3f}"
                              for u in payload["pattern"]["ranking"][:5])  # fmt: skip
            typer.echo(f"pattern {pattern!r} ({payload['pattern']['matched']:,} characters): {units}", err=True)
        if as_json:
            typer.echo(payload_json(payload))
