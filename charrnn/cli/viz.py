"""`charrnn viz MODEL [FILE|-] -o page.html`: a self-contained HTML page of what a model sees in a text
(surprisal, top-5 guesses, every hidden unit, pattern search), and its data as one JSON record (`--json`).
The library work is in charrnn/viz.py (the data) and charrnn/viz_page.py (the page)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import JsonOption, ModelArgument, ThreadsOption, UnkOption, user_errors


def viz(
    model: ModelArgument,
    source: Annotated[str | None, typer.Argument(help="Text file to show, or - for stdin.", show_default=False)] = None,
    text: Annotated[str | None, typer.Option("--text", help="Show this string instead of a file.")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the HTML page here.")] = None,
    max_chars: Annotated[int, typer.Option(help="Show at most this many characters (the first ones).", min=2)] = 20_000,
    max_mb: Annotated[
        float,
        typer.Option(
            help="Keep the page under this many MB: coarser activations, then fewer characters (0: off).", min=0
        ),
    ] = 5.0,  # fmt: skip
    pattern: Annotated[
        str | None,
        typer.Option(help="Rank the units by correlation with this regex's matches (the page opens on the top one)."),
    ] = None,  # fmt: skip
    top_units: Annotated[int, typer.Option(help="Units listed for --pattern.", min=1)] = 10,
    unk: UnkOption = "error",
    as_json: JsonOption = False,
    threads: ThreadsOption = 1,  # one text, one step at a time: as score
) -> None:
    """Shade a text by the model's surprisal, with its top-5 guesses, every hidden unit and a pattern
    search, in one HTML file that opens from disk (no network)."""
    from ..errors import OptionError
    from ..generate import compute_threads
    from ..model import load_model
    from ..score import read_source
    from ..viz import pattern_mask, to_payload, visualise
    from ..viz_page import payload_budget, payload_json, write_page
    from ..vocab import parse_unk_option

    with user_errors():
        if (source is None) == (text is None):
            raise OptionError("give a FILE (or - for stdin) or --text, exactly one")
        if output is None and not as_json:
            raise OptionError("give -o PAGE.html to write the page, or --json to print its data")
        if output is not None and output.is_dir():
            raise OptionError(f"-o {output} is a directory; give a file name for the page")
        if pattern is not None:
            try:
                pattern_mask("", pattern)  # a bad regex is a usage mistake, found before any work
            except Exception as error:
                raise OptionError(str(error)) from None
        policy = parse_unk_option(unk)
        body, name = (text, "--text") if text is not None else read_source(source)
        loaded = load_model(model)
        budget = payload_budget(max_mb)
        with compute_threads(threads):
            vis = visualise(loaded, body, policy, max_chars=max_chars, where=name, max_bytes=budget)
        payload = to_payload(vis, loaded, source=name, model_name=model.name, pattern=pattern, top_units=top_units,
                             max_bytes=budget)  # fmt: skip
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
