"""`charrnn score MODEL [FILE|-]`: log-likelihood of a text, optionally per character and per line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import JsonOption, ModelArgument, ThreadsOption, UnkOption, emit, user_errors
from .engine import (
    BatchOutputOption,
    EngineOption,
    ResumeOutputOption,
    TaskCharsOption,
    WorkersOption,
    batch_score,
    check_batch_options,
    single_source,
)


def score(
    model: ModelArgument,
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            help="Text file to score, or - for stdin (with --engine: files, directories, JSON lines).",
            show_default=False,
        ),
    ] = None,
    text: Annotated[str | None, typer.Option("--text", help="Score this string instead of a file.")] = None,
    per_char: Annotated[bool, typer.Option("--per-char", help="A row per character: probability, surprisal.")] = False,
    alternatives: Annotated[int, typer.Option(help="Most likely alternatives shown with --per-char.", min=0)] = 3,
    per_line: Annotated[bool, typer.Option("--per-line", help="Bits/char of each line.")] = False,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="Also score with n-gram models (orders 1-5) fitted on this training text."),
    ] = None,
    unk: UnkOption = "error",
    as_json: JsonOption = False,
    threads: ThreadsOption = 1,  # see sample
    # ---- many documents, on one process or a Dask cluster (cli/engine.py) ----
    engine: EngineOption = None,
    workers: WorkersOption = None,
    output: BatchOutputOption = None,
    resume_output: ResumeOutputOption = False,
    task_chars: TaskCharsOption = None,
) -> None:
    """Log-likelihood of a text under MODEL: nats, bits, bits/char, perplexity. The first character only
    conditions; characters 2..N are scored from a zero state. With --engine: many documents, one JSON line each."""
    from ..errors import OptionError
    from ..generate import compute_threads
    from ..model import load_model
    from ..report import char_header, char_records, char_text, line_header, line_records, line_text, score_record
    from ..report import score_text as summary_text
    from ..score import line_scores, ngram_baselines, read_source
    from ..score import score_text as score_under
    from ..vocab import parse_unk_option

    with user_errors():
        classic = {"--text": text is not None, "--per-char": per_char, "--per-line": per_line,
                   "--baseline": baseline is not None}  # fmt: skip
        batch = {"--workers": workers is not None, "--output": output is not None, "--resume-output": resume_output,
                 "--task-chars": task_chars is not None}  # fmt: skip
        if check_batch_options(engine, classic, batch):
            batch_score(model, sources or [], unk, engine, workers, output, resume_output, task_chars, threads)
            return
        source = single_source(sources)
        if (source is None) == (text is None):
            raise OptionError("give a FILE (or - for stdin) or --text, exactly one")
        body, name = (text, "--text") if text is not None else read_source(source)
        loaded = load_model(model)
        with compute_threads(threads):
            result = score_under(loaded, body, parse_unk_option(unk), top=alternatives if per_char else 0, where=name)
        baselines = ngram_baselines(loaded, baseline, body, parse_unk_option(unk)) if baseline is not None else None
        # rows stream, one line each, before the summary record
        tables = [(per_char, char_header, lambda: char_records(result, loaded.vocab.chars), char_text),
                  (per_line, line_header, lambda: line_records(line_scores(result, loaded)), line_text)]  # fmt: skip
        for wanted, header, records, text_of in tables:
            if wanted:
                if not as_json:
                    typer.echo(header())
                for row in records():
                    if as_json:
                        emit(row)
                    else:
                        typer.echo(text_of(row))
        record = score_record(name, str(model), result, baselines)
        if as_json:
            emit(record)
        else:
            typer.echo(summary_text(record, str(baseline)))
