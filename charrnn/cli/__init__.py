"""The `charrnn` command line: parses options, calls one library function, prints, exits.

One module per command; this one builds the Typer app from them and holds `main()` (the `charrnn`
entry point, also `python -m charrnn`). No maths lives here, and library imports happen inside the
commands so `charrnn --help` stays fast. Expected failures are `CharrnnError`s, printed as one
`Error: ...` line on stderr with exit status 1; usage errors keep Click's status 2; Ctrl-C exits 130.
Text reports are rendered from the same records `--json` prints (charrnn/report.py).
"""

from __future__ import annotations

import typer

from . import attribute, corpus, curves, export, info, rerank, sample, score, spot, train

app = typer.Typer(
    name="charrnn",
    help="Character-level RNN language models: train, sample, score.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(train.train)
app.command()(info.info)
app.add_typer(corpus.corpus_app, name="corpus")
app.command()(sample.sample)
app.command()(score.score)
app.command()(attribute.attribute)
app.command()(curves.curves)
app.command()(export.export)
app.command()(rerank.rerank)
app.command()(spot.spot)


def main() -> None:
    app()


__all__ = ["app", "main"]
