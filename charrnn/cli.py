"""The `charrnn` command line: parses options, calls one library function, prints, exits.

No maths lives here. Expected failures are `CharrnnError`s, printed as one `Error: ...` line on stderr
with exit status 1; usage errors keep Click's status 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from .errors import CharrnnError

app = typer.Typer(
    name="charrnn",
    help="Character-level RNN language models: train, sample, score.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected failures into one line on stderr and a non-zero exit."""
    try:
        yield
    except CharrnnError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        raise typer.Exit(130) from None
    except BrokenPipeError:
        # `charrnn sample | head`: the reader went away; that is not an error
        with contextlib.suppress(Exception):
            sys.stdout = None  # type: ignore[assignment]
        raise typer.Exit(0) from None


# ---- corpus commands ----
# `charrnn corpus ...`: named corpora (charrnn/corpora.py) and synthetic texts with a known entropy rate
# (charrnn/synth.py). Library imports are inside the commands so `charrnn --help` stays fast.

corpus_app = typer.Typer(help="Named corpora: list, download, and synthesise texts.", no_args_is_help=True)
synth_app = typer.Typer(
    help="Write a synthetic text whose exact entropy rate (bits/char) is known.", no_args_is_help=True
)
corpus_app.add_typer(synth_app, name="synth")
app.add_typer(corpus_app, name="corpus")

RegistryOption = Annotated[
    Path | None,
    typer.Option("--registry", help="Use this registry JSON file instead of the built-in one."),
]
SynthOutput = Annotated[Path, typer.Option("-o", "--output", help="Write the text to this file (UTF-8).")]
SynthLength = Annotated[int, typer.Option("--length", help="Number of characters to generate.")]
SynthSeed = Annotated[int, typer.Option("--seed", help="Random seed (same seed, same text).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


def _human_size(size: int | None) -> str:
    if size is None:
        return "?"
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return "?"


@corpus_app.command("list")
def corpus_list(registry: RegistryOption = None, as_json: JsonFlag = False) -> None:
    """List the registry's corpora: name, download size, whether its sha256 is pinned, license."""
    from .corpora import list_corpora, load_registry

    with user_errors():
        corpora = list_corpora(load_registry(registry) if registry else None)
        if as_json:
            typer.echo(json.dumps([dataclasses.asdict(corpus) for corpus in corpora], indent=2))
            return
        rows = [("NAME", "SIZE", "SHA256", "LICENSE")]
        for corpus in corpora:
            checksum = "built-in" if corpus.builtin else "pinned" if corpus.sha256 else "recorded on 1st get"
            size = "built-in" if corpus.builtin else _human_size(corpus.size)
            rows.append((corpus.name, size, checksum, corpus.license))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        for row in rows:
            typer.echo(
                "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
                + "  "
                + row[3]
            )


@corpus_app.command("get")
def corpus_get(
    name: Annotated[str, typer.Argument(help="Corpus name, as shown by `charrnn corpus list`.")],
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir", help="Cache directory [default: $XDG_CACHE_HOME/charrnn or ~/.cache/charrnn]."
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Also copy the text to this file."),
    ] = None,
    registry: RegistryOption = None,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar or notices.")] = False,
) -> None:
    """Download (or build) a corpus into the cache, verify it, and print the path of the text file."""
    from .corpora import get_corpus, load_registry

    with user_errors():
        path = get_corpus(
            name,
            cache_dir=cache_dir,
            progress=not quiet,
            registry=load_registry(registry) if registry else None,
            log=None if quiet else (lambda message: typer.echo(message, err=True)),
        )
        if output is not None:
            try:
                shutil.copyfile(path, output)
            except OSError as error:
                raise CharrnnError(f"cannot write {output}: {error.strerror or error}") from None
            path = output
        typer.echo(str(path))


def _report_synth(result, output: Path, as_json: bool) -> None:
    """Write the synthetic text to `output` and print its entropy rate (or one JSON object)."""
    from .fetch import write_bytes_atomic

    try:
        write_bytes_atomic(output, result.text.encode("utf-8"))
    except OSError as error:
        raise CharrnnError(f"cannot write {output}: {error.strerror or error}") from None
    if as_json:
        fields = {"source": result.source, "output": str(output), "length": len(result.text)}
        typer.echo(json.dumps({**fields, **result.params, "entropy_rate_bits_per_char": result.entropy_rate}))
    else:
        typer.echo(f"wrote {len(result.text):,} characters to {output}")
        typer.echo(f"entropy rate: {result.entropy_rate:.6f} bits/char")


@synth_app.command("markov")
def synth_markov(
    output: SynthOutput,
    order: Annotated[int, typer.Option("--order", help="Context length k (characters).")] = 2,
    alphabet: Annotated[
        int, typer.Option("--alphabet", help="Alphabet size A (2-26 lowercase letters).")
    ] = 8,
    concentration: Annotated[
        float, typer.Option("--concentration", help="Dirichlet concentration of each row (small = peaked).")
    ] = 1.0,
    length: SynthLength = 200_000,
    seed: SynthSeed = 0,
    as_json: JsonFlag = False,
) -> None:
    """An order-k Markov chain with a random transition table; prints its exact entropy rate."""
    from .synth import markov_text

    with user_errors():
        result = markov_text(
            length, order=order, alphabet_size=alphabet, concentration=concentration, seed=seed
        )
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
    as_json: JsonFlag = False,
) -> None:
    """Nested, typed brackets that need a stack to predict; prints the exact entropy rate."""
    from .synth import brackets_text

    with user_errors():
        result = brackets_text(
            length, types=types, letters=letters, p_open=p_open, p_close=p_close, seed=seed
        )
        _report_synth(result, output, as_json)


# ---- end corpus commands ----


def main() -> None:
    app()


if __name__ == "__main__":
    main()
