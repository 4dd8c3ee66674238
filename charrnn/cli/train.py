"""`charrnn train CORPUS`: train (or resume, or fine-tune) a model and write its checkpoints.

The architecture, optimisation, data and preview options come from charrnn/config.py (`config_options`).
`--resume M` continues with every option recorded in M unless given again; the ones given that differ
from the record are listed before training starts.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import DataConfig, ModelConfig, PreviewConfig, TrainConfig
from .common import emit, exit_status, graceful_interrupt, show_bars, user_errors
from .options import command_line, config_options, given


def _log(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


@config_options(ModelConfig, TrainConfig, DataConfig, PreviewConfig)
def train(
    ctx: typer.Context,
    corpus: Annotated[
        list[Path],
        typer.Argument(help="Text files (plain, .gz, .bz2, .xz) or directories; - reads stdin.", show_default=False),
    ],
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Checkpoint to write (latest state; the best model by validation loss "
                     "goes beside it as <stem>.best.npz).", show_default="the --resume file, else model.npz"),
    ] = None,  # fmt: skip
    resume: Annotated[
        Path | None,
        typer.Option(help="Continue from this checkpoint (an -o file) with its recorded options, except those given."),
    ] = None,
    init_from: Annotated[
        Path | None, typer.Option(help="Fine-tune: start from this model's weights and vocabulary, at step 0.")
    ] = None,
    extend_vocab: Annotated[
        bool,
        typer.Option("--extend-vocab", help="With --init-from: add the corpus's new characters to the vocabulary."),
    ] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Where encoded corpora are cached.", show_default="$XDG_CACHE_HOME/charrnn/ids"),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing checkpoint (and its .best.npz, .metrics.jsonl).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    description: Annotated[
        str | None, typer.Option(help="A note stored in the checkpoint and shown by info (kept when resuming).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="At the end, print the run's summary as a JSON record (docs/json.md).")
    ] = False,
    **options: Any,
) -> None:
    """Train a character-level RNN on CORPUS and write a checkpoint."""
    import contextlib
    from dataclasses import asdict

    from ..budget import check_training
    from ..checkpointing import best_path, check_replaceable, check_writable, metrics_path, training_meta
    from ..config import check_values, resume_options
    from ..errors import CharrnnError, OptionError
    from ..outputs import hold_output, refuse_inputs
    from ..preview import SamplePreview
    from ..provenance import run_metadata
    from ..report import train_record, train_text
    from ..runstart import ARCHITECTURE_OPTIONS, prepare_run
    from ..train import train as run_training
    from ..vocab import parse_unk_option

    with user_errors(), contextlib.ExitStack() as held:
        if resume is not None and init_from is not None:
            raise OptionError("--resume and --init-from exclude each other (resume continues a run; init-from "
                              "starts one)")  # fmt: skip
        if extend_vocab and init_from is None:
            raise OptionError("--extend-vocab needs --init-from (a fresh run's vocabulary is the corpus's own)")
        architecture = given(ctx, options, ModelConfig)
        check_values(ModelConfig, architecture)  # before any corpus work
        shown = PreviewConfig(**given(ctx, options, PreviewConfig))
        recorded = training_meta(resume) if resume is not None else None
        output = output if output is not None else resume if resume is not None else Path("model.npz")
        run = resume_options({TrainConfig: given(ctx, options, TrainConfig),
                              DataConfig: given(ctx, options, DataConfig)}, recorded)  # fmt: skip
        for override in run.overrides:  # documents or not, and how split, is what the model is: never changed
            if override.startswith(("--documents ", "--val-docs ")):
                raise OptionError(f"{resume} was trained otherwise: {override}; resume with the same")
        inputs = [*(("corpus", path) for path in corpus), ("--val-file", run.data.val_file), ("--init-from", init_from)]
        refuse_inputs({"-o": output, "the best model": best_path(output), "the metrics log": metrics_path(output)},
                      inputs)  # fmt: skip
        check_writable(output)  # before anything is locked or read: -o /dev/null, a directory, no such directory
        held.enter_context(hold_output(output))  # until the run ends: one writer per output
        check_replaceable(output, resume, force)
        if resume is None and init_from is None:  # before the corpus is read (1 character: a lower bound)
            config = {name: architecture.get(name) or getattr(ModelConfig, name) for name in ARCHITECTURE_OPTIONS}
            check_training(1, config["hidden_size"], config["num_layers"], config["dtype"], run.train.batch_size,
                           run.train.seq_len, run.train.optimizer, run.train.dropout > 0)  # fmt: skip
        if run.overrides:
            _log(f"resuming {resume} with options changed from its record: {', '.join(run.overrides)}")
        preview = SamplePreview(shown.length, shown.temperatures, run.train.seed)
        data_options = run.data
        corpus_docs = None
        if data_options.documents is not None:  # documents mode: cli/documents.py, charrnn/documents.py
            from .documents import documents_start

            run, corpus_docs, start, preview = documents_start(ctx, options, corpus, run, architecture, shown,
                                                               resume, init_from, cache_dir)  # fmt: skip
        elif data_options.val_docs is not None:
            raise OptionError("--val-docs needs --documents")
        else:
            start = prepare_run(
                corpus, {name: architecture.get(name) for name in ARCHITECTURE_OPTIONS}, resume=resume,
                init_from=init_from, extend=extend_vocab, unk=parse_unk_option(data_options.unk), seed=run.train.seed,
                val_frac=data_options.val_frac, val_file=data_options.val_file, encoding=data_options.encoding,
                errors=data_options.errors, progress=show_bars(quiet), cache_dir=cache_dir,
            )  # fmt: skip
        for note in start.notes:
            _log(note)
        card = run_metadata(corpus, run.data.val_file, command_line(ctx), description, recorded, init_from)

        def show_samples(model, step: int) -> None:
            for temperature, text in preview(model, step):
                _log(f"---- sample at step {step}, temperature {temperature:g} ----\n{text}\n----")

        data = start.data
        with graceful_interrupt() as interrupted:
            result = run_training(
                start.model_config, run.train, data.vocab, data.train_ids, data.val_ids, output, resume=resume,
                progress=not quiet, log=_log, should_stop=lambda: bool(interrupted[0]), init_model=start.init_model,
                stop_evaluation=lambda: bool(interrupted[0]),
                on_sample=show_samples, train_hash=data.train_hash, metadata={"data_config": asdict(run.data), **card},
                documents=corpus_docs,
            )  # fmt: skip
        record = train_record(result, run.train.max_rollbacks)
        if as_json:  # also when training diverged or was interrupted: the record says so
            emit(record)
        if result.stop_reason == "diverged":
            raise CharrnnError(train_text(record))
        typer.echo(train_text(record), err=True)
        if result.stop_reason == "interrupted":
            raise typer.Exit(exit_status(interrupted[0] or signal.SIGINT))
