"""`charrnn score MODEL [FILE|-]`: log-likelihood of a text, optionally per character and per line."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from .common import JsonOption, ModelArgument, ThreadsOption, UnkOption, emit, text_argument, user_errors
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
    documents: Annotated[
        bool, typer.Option("--documents", help="Score each document on its own, end symbol included (the default "
                           "for a documents model).")
    ] = False,
    split: Annotated[
        str | None, typer.Option(help="With --documents: lines, blank-lines or a separator [default: the model's].")
    ] = None,
) -> None:
    """Log-likelihood of a text under MODEL: nats, bits, bits/char, perplexity. The first character only
    conditions; characters 2..N are scored from a zero state. With --engine: many documents, one JSON line each.
    A documents model (train --documents) scores each document from a zero state, its end symbol included."""
    from ..errors import OptionError
    from ..generate import compute_threads
    from ..model import load_model
    from ..report import score_record
    from ..report import score_text as summary_text
    from ..score import baseline_stream, source_pieces
    from ..stream import LineTracker, TextScorer
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
        text, unk = text_argument(text, "--text"), text_argument(unk, "--unk")
        loaded = load_model(model)
        if documents or split is not None or loaded.vocab.has_end:  # cli/documents.py
            from ..score import read_source
            from .documents import score_documents

            if per_char or per_line or baseline is not None:
                raise OptionError("--per-char, --per-line and --baseline do not apply to scoring documents")
            body, name = (text, "--text") if text is not None else read_source(source)
            with compute_threads(threads):
                score_documents(model, body, name, split, parse_unk_option(unk), as_json)
            return
        top = alternatives if per_char else 0
        if top > loaded.config.vocab_size:
            raise OptionError(f"--alternatives must be at most the model's vocabulary size "
                              f"({loaded.config.vocab_size}), got {alternatives}")  # fmt: skip
        policy = parse_unk_option(unk)
        baselines = baseline_stream(loaded, baseline, policy) if baseline is not None else None
        pieces, name = ([text], "--text") if text is not None else source_pieces(source)
        scorer = TextScorer(loaded, policy, top, where=name)
        lines = LineTracker(loaded) if per_line else None
        with compute_threads(threads), Rows(per_char, per_line, as_json) as rows:
            # the text streams through: rows are printed as their chunk is scored, nothing grows with the text
            for chunk in _chunks(scorer, pieces):
                if per_char:
                    rows.chars(chunk, loaded.vocab.chars)
                if lines is not None:
                    rows.lines(lines.add(chunk, scorer.first_id))
                if baselines is not None:
                    baselines.add(chunk, scorer.first_id)
            if lines is not None:
                rows.lines(lines.finish())
        record = score_record(name, str(model), scorer, baselines.nats_per_char() if baselines else None)
        if as_json:
            emit(record)
        else:
            typer.echo(summary_text(record, str(baseline)))


def _chunks(scorer, pieces):
    for piece in pieces:
        yield from scorer.feed(piece)
    yield from scorer.finish()


class Rows:
    """Prints the per-character rows as they come and the per-line rows after them (docs/json.md's order):
    with both, line rows wait in a temporary file, not in memory."""

    def __init__(self, per_char: bool, per_line: bool, as_json: bool) -> None:
        self.as_json, self.per_char, self.per_line = as_json, per_char, per_line
        self.spool = tempfile.TemporaryFile("w+", encoding="utf-8") if per_char and per_line else None
        self.headed = {"char": False, "line": False}

    def __enter__(self) -> Rows:
        return self

    def __exit__(self, kind, value, trace) -> None:
        try:
            if kind is None and self.spool is not None:
                self.spool.seek(0)
                for line in self.spool:
                    self._print("line", json.loads(line))
        finally:
            if self.spool is not None:
                self.spool.close()

    def chars(self, chunk, chars: str) -> None:
        from ..report import char_records

        for row in char_records(chunk, chars):
            self._print("char", row)

    def lines(self, scores) -> None:
        from ..report import line_records

        for row in line_records(scores):
            if self.spool is not None:
                self.spool.write(json.dumps(row) + "\n")
            else:
                self._print("line", row)

    def _print(self, kind: str, row: dict) -> None:
        from ..report import char_header, char_text, line_header, line_text

        if self.as_json:
            emit(row)
            return
        if not self.headed[kind]:
            typer.echo(char_header() if kind == "char" else line_header())
            self.headed[kind] = True
        typer.echo(char_text(row) if kind == "char" else line_text(row))
