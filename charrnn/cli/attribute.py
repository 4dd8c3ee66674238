"""`charrnn attribute FILE -m A -m B ...`: which model explains a text best."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import JsonOption, ThreadsOption, emit, user_errors
from .engine import (
    BatchOutputOption,
    EngineOption,
    ResumeOutputOption,
    TaskCharsOption,
    WorkersOption,
    batch_attribute,
    check_batch_options,
    single_source,
)


def attribute(
    sources: Annotated[
        list[str],
        typer.Argument(
            help="Text file to attribute, or - for stdin (with --engine: files, directories, JSON lines).",
            show_default=False,
        ),
    ],
    models: Annotated[list[Path], typer.Option("-m", "--model", help="A candidate model (repeat: -m A -m B).")],
    by_paragraph: Annotated[bool, typer.Option("--by-paragraph", help="Also a verdict per paragraph.")] = False,
    as_json: JsonOption = False,
    threads: ThreadsOption = 1,  # see sample
    # ---- many documents, on one process or a Dask cluster (cli/engine.py) ----
    engine: EngineOption = None,
    workers: WorkersOption = None,
    output: BatchOutputOption = None,
    resume_output: ResumeOutputOption = False,
    task_chars: TaskCharsOption = None,
) -> None:
    """Which model explains a text best: bits/char and posterior (uniform prior) per model. Characters
    outside the vocabulary shared by all models are removed for every model, and reported."""
    from ..errors import OptionError
    from ..generate import compute_threads
    from ..model import load_model
    from ..report import attribution_records, attribution_text
    from ..score import attribute as run_attribution
    from ..score import read_source

    with user_errors():
        stems = [path.stem for path in models]
        names = [path.stem if stems.count(path.stem) == 1 else str(path) for path in models]
        if len(set(names)) != len(names):
            raise OptionError("the same model is given twice")
        batch = {"--workers": workers is not None, "--output": output is not None, "--resume-output": resume_output,
                 "--task-chars": task_chars is not None}  # fmt: skip
        if check_batch_options(engine, {}, batch):
            batch_attribute(models, names, sources, by_paragraph, engine, workers, output, resume_output, task_chars,
                            threads)  # fmt: skip
            return
        body, name = read_source(single_source(sources))
        loaded = {label: load_model(path) for label, path in zip(names, models, strict=True)}
        with compute_threads(threads):
            result = run_attribution(body, loaded, by_paragraph=by_paragraph)
        paragraphs, summary = attribution_records(name, result)
        if as_json:
            for record in [*paragraphs, summary]:
                emit(record)
        else:
            typer.echo(attribution_text(summary, paragraphs))
