"""`charrnn spot MODEL [FILE|-]`: flag probably wrong characters and suggest a single-edit fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .common import ModelArgument, ThreadsOption, user_errors
from .options import escape


def spot(
    model: ModelArgument,
    source: Annotated[str, typer.Argument(help="Text to check, or - for stdin.")] = "-",
    min_surprisal: Annotated[
        float, typer.Option("--min-surprisal", metavar="BITS", help="Only characters at least this surprising.")
    ] = 10.0,
    min_gain: Annotated[
        float,
        typer.Option("--min-gain", metavar="BITS", help="Report when an edit makes the window this much likelier."),
    ] = 12.0,
    window: Annotated[int, typer.Option("--window", help="Characters after the edit that it is judged on.")] = 10,
    alternatives: Annotated[
        int, typer.Option("--alternatives", help="Most likely characters tried as replacements and insertions.")
    ] = 6,
    unk_penalty: Annotated[
        float | None,
        typer.Option("--unk-penalty", metavar="BITS", show_default=False,
                     help=escape("Surprisal of a character the model does not know [default: that of the least "
                                 "likely known character in that context].")),
    ] = None,  # fmt: skip
    fix: Annotated[
        Path | None, typer.Option("--fix", help="Write the text with every suggested edit applied to this file.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Let --fix replace an existing file (never the input).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per suspect character.")] = False,
    threads: ThreadsOption = 0,
) -> None:
    """Flag characters that are probably wrong: surprising to the model, and a single edit (substitution,
    insertion, deletion) makes the following window much more likely. Prints line, column, the character,
    the suggested correction and the gain in bits."""
    from ..atomic import atomic_writer
    from ..errors import CharrnnError
    from ..generate import compute_threads
    from ..model import load_model
    from ..nbest import read_input
    from ..spot import apply_fixes
    from ..spot import spot as find_suspects

    with user_errors():
        if fix is not None:
            if source != "-" and fix.exists() and Path(source).exists() and fix.resolve() == Path(source).resolve():
                raise CharrnnError(f"--fix {fix} is the input file: write the corrected text elsewhere")
            if fix.exists() and not force:
                raise CharrnnError(f"--fix {fix} exists: choose another name, or --force to replace it")
            if fix.is_dir():
                raise CharrnnError(f"--fix {fix} is a directory")
        text, name = read_input(source)
        loaded = load_model(model)
        with compute_threads(threads):
            suspects = find_suspects(loaded, text, min_surprisal, min_gain, window, alternatives, unk_penalty)
        for s in suspects:
            if as_json:
                typer.echo(json.dumps({"source": name, **s.record()}, ensure_ascii=False))
            else:
                typer.echo(f"{name}:{s.line}:{s.column}: {s.describe()}  (gain {s.gain_bits:.1f} bits, "
                           f"surprisal {s.surprisal_bits:.1f} bits)")  # fmt: skip
        if fix is not None:
            with atomic_writer(fix) as handle:
                handle.write(apply_fixes(text, suspects).encode("utf-8"))
            typer.echo(f"wrote {fix} ({len(suspects)} edit(s))", err=True)
