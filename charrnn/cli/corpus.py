"""`charrnn corpus ...`: named corpora (charrnn/corpora.py) and synthetic texts with a known entropy rate
(charrnn/synth.py)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from .common import JsonOption, emit, show_bars, user_errors

corpus_app = typer.Typer(help="Named corpora: list, download, and synthesise texts.", no_args_is_help=True)
synth_app = typer.Typer(
    help="Write a synthetic text whose exact entropy rate (bits/char) is known.", no_args_is_help=True
)
corpus_app.add_typer(synth_app, name="synth")

RegistryOption = Annotated[
    Path | None,
    typer.Option("--registry", help="Use this registry JSON file instead of the built-in one."),
]
SynthOutput = Annotated[Path, typer.Option("-o", "--output", help="Write the text to this file (UTF-8).")]
SynthLength = Annotated[int, typer.Option("--length", help="Number of characters to generate.")]
SynthSeed = Annotated[int, typer.Option("--seed", help="Random seed (same seed, same text).")]


@corpus_app.command("list")
def corpus_list(registry: RegistryOption = None, as_json: JsonOption = False) -> None:
    """List the registry's corpora: name, download size, whether its sha256 is pinned, license."""
    from ..corpora import list_corpora, load_registry
    from ..report import corpus_list_text, corpus_record

    with user_errors():
        records = [corpus_record(corpus) for corpus in list_corpora(load_registry(registry) if registry else None)]
    if as_json:
        for record in records:
            emit(record)
    else:
        typer.echo(corpus_list_text(records))


@corpus_app.command("get")
def corpus_get(
    name: Annotated[str, typer.Argument(help="Corpus name, as shown by `charrnn corpus list`.")],
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Cache directory.",
                     show_default="$XDG_CACHE_HOME/charrnn or ~/.cache/charrnn"),
    ] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Also copy the text to this file.")] = None,
    registry: RegistryOption = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar or notices.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Download (or build) a corpus into the cache, verify it, and print the path of the text file."""
    from ..corpora import get_corpus, load_registry
    from ..errors import CharrnnError
    from ..report import corpus_record

    with user_errors():
        entries = load_registry(registry) if registry else None
        path = get_corpus(
            name,
            cache_dir=cache_dir,
            progress=show_bars(quiet),
            registry=entries,
            log=None if quiet else (lambda message: typer.echo(message, err=True)),
        )
        if output is not None:
            from ..outputs import refuse_inputs

            refuse_inputs({"-o": output}, [("the cached corpus", path)])
            try:
                shutil.copyfile(path, output)
            except OSError as error:
                raise CharrnnError(f"cannot write {output}: {error.strerror or error}") from None
            path = output
        if as_json:
            emit(corpus_record((entries or load_registry())[name], path))
        else:
            typer.echo(str(path))


def _report_synth(result, output: Path, as_json: bool) -> None:
    """Write the synthetic text to `output` and print its entropy rate (or one JSON object)."""
    from ..atomic import write_bytes_atomic
    from ..errors import CharrnnError
    from ..report import synth_record, synth_text

    try:
        write_bytes_atomic(output, result.text.encode("utf-8"), make_parents=True)
    except OSError as error:
        raise CharrnnError(f"cannot write {output}: {error.strerror or error}") from None
    record = synth_record(result, str(output))
    if as_json:
        emit(record)
    else:
        typer.echo(synth_text(record))


@synth_app.command("markov")
def synth_markov(
    output: SynthOutput,
    order: Annotated[int, typer.Option("--order", help="Context length k (characters).")] = 2,
    alphabet: Annotated[int, typer.Option("--alphabet", help="Alphabet size A (2-26 lowercase letters).")] = 8,
    concentration: Annotated[
        float, typer.Option("--concentration", help="Dirichlet concentration of each row (small = peaked).")
    ] = 1.0,
    length: SynthLength = 200_000,
    seed: SynthSeed = 0,
    as_json: JsonOption = False,
) -> None:
    """An order-k Markov chain with a random transition table; prints its exact entropy rate."""
    from ..synth import markov_text

    with user_errors():
        result = markov_text(length, order=order, alphabet_size=alphabet, concentration=concentration, seed=seed)
        _report_synth(result, output, as_json)


@synth_app.command("brackets")
def synth_brackets(
    output: SynthOutput,
    types: Annotated[int, typer.Option("--types", help="Bracket pair types, 1-4: () [] {} <>.")] = 3,
    letters: Annotated[int, typer.Option("--letters", help="Filler letters a, b, ... (0-26).")] = 4,
    p_open: Annotated[float, typer.Option("--p-open", help="Probability of opening a bracket.")] = 0.25,
    p_close: Annotated[
        float, typer.Option("--p-close", help="Probability of closing one (must exceed --p-open).")
    ] = 0.35,
    length: SynthLength = 200_000,
    seed: SynthSeed = 0,
    as_json: JsonOption = False,
) -> None:
    """Nested, typed brackets that need a stack to predict; prints the exact entropy rate."""
    from ..synth import brackets_text

    with user_errors():
        result = brackets_text(length, types=types, letters=letters, p_open=p_open, p_close=p_close, seed=seed)
        _report_synth(result, output, as_json)
