"""The `charrnn` command line: parses options, calls one library function, prints, exits.

No maths lives here. Expected failures are `CharrnnError`s, printed as one `Error: ...` line on stderr
with exit status 1; usage errors keep Click's status 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

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


ThreadsOption = Annotated[int, typer.Option("--threads", help="Threads for BLAS and kernels (0: all cores).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]


@contextlib.contextmanager
def graceful_interrupt() -> Iterator[list[bool]]:
    """First Ctrl-C asks the training loop to stop at the next step boundary (so the checkpoint it then
    writes is consistent); a second one interrupts at once."""
    requested = [False]

    def handler(signum, frame):  # noqa: ARG001
        requested[0] = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, previous)


@app.command()
def train(
    corpus: Annotated[list[Path], typer.Argument(help="Text files or directories to train on.", show_default=False)],
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            help="Checkpoint to write (latest state; the best "
            "model by validation loss goes beside it as <stem>.best.npz).",
        ),
    ] = Path("model.npz"),
    hidden: Annotated[int | None, typer.Option(help="Hidden units per layer [default: 256].")] = None,
    layers: Annotated[int | None, typer.Option(help="Stacked Elman layers [default: 1].")] = None,
    activation: Annotated[str | None, typer.Option(help="tanh or relu [default: tanh].")] = None,
    seq_len: Annotated[int, typer.Option(help="Characters per chunk (truncated BPTT length).")] = 64,
    batch_size: Annotated[int, typer.Option(help="Parallel streams per step.")] = 64,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 2e-3,
    optimizer: Annotated[str, typer.Option(help="adam, rmsprop, adagrad or sgd (with --momentum).")] = "adam",
    momentum: Annotated[float, typer.Option(help="Momentum for sgd.")] = 0.9,
    weight_decay: Annotated[float, typer.Option(help="L2 weight decay (decoupled for adam).")] = 0.0,
    clip: Annotated[float, typer.Option(help="Clip gradients to this global norm (0: off).")] = 5.0,
    clip_value: Annotated[float, typer.Option(help="Clamp each gradient element to ±this (0: off).")] = 0.0,
    lr_decay: Annotated[float, typer.Option(help="Multiply the learning rate by this each epoch.")] = 1.0,
    epochs: Annotated[float | None, typer.Option(help="Stop after this many epochs.")] = None,
    steps: Annotated[
        int | None, typer.Option(help="Stop when the model has this many steps in all (resumed steps included).")
    ] = None,
    time_budget: Annotated[float | None, typer.Option("--time", help="Stop after this many seconds.")] = None,
    val_frac: Annotated[float, typer.Option(help="Fraction of the text (its tail) held out for validation.")] = 0.1,
    val_file: Annotated[Path | None, typer.Option(help="Validate on this file instead of a tail split.")] = None,
    eval_every: Annotated[int, typer.Option(help="Evaluate and checkpoint every this many steps.")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed (initialisation).")] = 1234,
    threads: ThreadsOption = 0,
    dtype: Annotated[str | None, typer.Option(help="float32 or float64 [default: float32].")] = None,
    resume: Annotated[Path | None, typer.Option(help="Continue from this checkpoint (an -o file).")] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding of the corpus.")] = "utf-8",
    errors: Annotated[
        str, typer.Option(help="strict: invalid bytes are an error; replace: accept them as U+FFFD.")
    ] = "strict",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    sample_every: Annotated[
        int | None, typer.Option(help="Show samples every this many steps (0: never) [default: at each evaluation].")
    ] = None,
    sample_length: Annotated[int, typer.Option(help="Characters per sample shown while training.")] = 200,
    sample_temperatures: Annotated[
        str, typer.Option(help="Comma-separated temperatures of the samples shown while training.")
    ] = "0.5,1.0",
    patience: Annotated[
        int | None, typer.Option(help="Stop after this many evaluations without a better validation loss.")
    ] = None,
    init_from: Annotated[
        Path | None, typer.Option(help="Fine-tune: start from this model's weights and vocabulary, at step 0.")
    ] = None,
    extend_vocab: Annotated[
        bool,
        typer.Option("--extend-vocab", help="With --init-from: add the corpus's new characters to the vocabulary."),
    ] = False,
    unk: Annotated[
        str, typer.Option(help="Characters missing from an --init-from/--resume vocabulary: error, skip or map:<char>.")
    ] = "error",
    cache_dir: Annotated[
        Path | None, typer.Option(help="Where encoded corpora are cached [default: $XDG_CACHE_HOME/charrnn/ids].")
    ] = None,
    val_max_chars: Annotated[
        int, typer.Option(help="Evaluate on at most this many validation characters.")
    ] = 1_000_000,
) -> None:
    """Train a character-level RNN on CORPUS and write a checkpoint."""
    import os

    from .finetune import prepare_run
    from .idcache import default_cache_dir
    from .preview import SamplePreview, parse_temperatures
    from .train import TrainConfig
    from .train import train as run_training
    from .vocab import parse_unk_option

    def log(message: str) -> None:
        tqdm.write(message, file=sys.stderr)

    with user_errors():
        train_config = TrainConfig(
            seq_len=seq_len, batch_size=batch_size, lr=lr, optimizer=optimizer, momentum=momentum,
            weight_decay=weight_decay, clip=clip, clip_value=clip_value, lr_decay=lr_decay, epochs=epochs,
            steps=steps, time_budget=time_budget, eval_every=eval_every, seed=seed, threads=threads,
            patience=patience, sample_every=sample_every, val_max_chars=val_max_chars,
        )  # fmt: skip
        preview = SamplePreview(sample_length, parse_temperatures(sample_temperatures), seed)
        start = prepare_run(
            corpus, dict(hidden_size=hidden, num_layers=layers, activation=activation, dtype=dtype), resume=resume,
            init_from=init_from, extend=extend_vocab, unk=parse_unk_option(unk), seed=seed, val_frac=val_frac,
            val_file=val_file, encoding=encoding, errors=errors, progress=not quiet,
            cache_dir=cache_dir if cache_dir is not None else default_cache_dir(dict(os.environ)),
        )  # fmt: skip
        for note in start.notes:
            log(note)

        def show_samples(model, step: int) -> None:
            for temperature, text in preview(model, step):
                log(f"---- sample at step {step}, temperature {temperature:g} ----\n{text}\n----")

        data = start.data
        with graceful_interrupt() as interrupted:
            result = run_training(
                start.model_config, train_config, data.vocab, data.train_ids, data.val_ids, output, resume=resume,
                progress=not quiet, log=log, should_stop=lambda: interrupted[0], init_model=start.init_model,
                on_sample=show_samples, train_hash=data.train_hash,
            )  # fmt: skip
        best = result.state.best_val_loss
        best_text = f", best validation {best:.4f} nats/char in {result.best_output}" if best is not None else ""
        if result.stop_reason == "diverged":
            raise CharrnnError(
                f"training diverged {train_config.max_rollbacks} times in a row even after halving the learning "
                f"rate each time; kept the last good model (step {result.state.step}) in {result.output}{best_text}"
            )
        typer.echo(
            f"stopped ({result.stop_reason}) at step {result.state.step}, {result.chars_per_second:,.0f} chars/s; "
            f"saved {result.output}" + best_text,
            err=True,
        )
        if result.stop_reason == "interrupted":
            raise typer.Exit(130)


@app.command()
def info(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.npz).", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Architecture, parameter counts, vocabulary and training progress of a checkpoint."""
    from .model import checkpoint_info

    with user_errors():
        details = checkpoint_info(model)
    if as_json:
        typer.echo(json.dumps(details, indent=2))
        return
    config = details["config"]
    typer.echo(f"{details['path']}: {config['num_layers']} x {config['hidden_size']} {config['activation']} "
               f"Elman RNN, {config['dtype']}, format v{details['format_version']}")  # fmt: skip
    typer.echo(f"{'tensor':<8}{'shape':<18}{'parameters':>12}")
    for row in details["parameters"]:
        typer.echo(f"{row['name']:<8}{str(tuple(row['shape'])):<18}{row['count']:>12,}")
    typer.echo(f"{'total':<26}{details['total_parameters']:>12,}")
    typer.echo(f"vocabulary: {details['vocab_size']} characters {details['vocab']!r}")
    best = details["best_val_loss_nats"]
    typer.echo(f"trained: {details['steps']} steps, epoch {details['epoch']}; best validation: "
               + (f"{best:.4f} nats/char ({details['best_val_loss_bits']:.4f} bits/char)" if best is not None
                  else "none"))  # fmt: skip


# ---- curves command ----


@app.command()
def curves(
    model: Annotated[
        Path,
        typer.Argument(help="Checkpoint (.npz) whose <stem>.metrics.jsonl to plot, or that file.", show_default=False),
    ],
    png: Annotated[
        Path | None, typer.Option("-o", "--output", help="Also draw a PNG here (needs: pip install 'charrnn[plot]').")
    ] = None,
    x: Annotated[str, typer.Option("--x", help="Terminal plot against step or time.")] = "step",
    width: Annotated[int, typer.Option(help="Terminal plot width in characters.")] = 64,
    height: Annotated[int, typer.Option(help="Terminal plot height in lines.")] = 12,
    ascii_only: Annotated[bool, typer.Option("--ascii", help="Plain ASCII plot characters.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Training and validation loss against steps and time, in the terminal and optionally as a PNG."""
    from .metrics import curves_png, find_metrics, read_metrics, terminal_plot

    with user_errors():
        path = find_metrics(model)
        records = read_metrics(path)
        if x not in ("step", "time"):
            raise CharrnnError(f"--x must be step or time, got {x!r}")
        plot = None if as_json else terminal_plot(records, "step" if x == "step" else "elapsed", width, height,
                                                  ascii_only)  # fmt: skip
        written = curves_png(records, png, title=str(model)) if png is not None else None
    if as_json:
        typer.echo(json.dumps({"metrics_file": str(path), "png": None if written is None else str(written),
                               "records": records}))  # fmt: skip
        return
    typer.echo(plot)
    if written is not None:
        typer.echo(f"wrote {written}", err=True)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
