"""`charrnn series ...`: time-series forecasting on the Elman core. Parses options, calls one function of
charrnn.series.run (or .data), prints, exits; no maths here.

Expected failures are `CharrnnError`s: one `Error: ...` line on stderr, exit status 1 (as in cli.py).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import CharrnnError

series_app = typer.Typer(
    help="Time-series forecasting with the same Elman core: generate, train, evaluate, forecast, plot.",
    no_args_is_help=True,
)


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """One line on stderr and a non-zero exit for expected failures (cli.py's user_errors, kept here so
    this module imports nothing from the command-line package)."""
    try:
        yield
    except CharrnnError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        raise typer.Exit(130) from None


def _ints(text: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise CharrnnError(f"{option} takes comma-separated whole numbers, got {text!r}") from None
    return values


def _fractions(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise CharrnnError(f"--split takes three comma-separated fractions, got {text!r}") from None
    if len(values) != 3:
        raise CharrnnError(f"--split takes three fractions (train, valid, test), got {text!r}")
    return values  # type: ignore[return-value]


Data = Annotated[
    Path, typer.Argument(help="Series: an .npz from `charrnn series generate`, or a CSV.", show_default=False)
]
ModelFile = Annotated[
    Path, typer.Argument(help="A series model (.npz) from `charrnn series train`.", show_default=False)
]
Threads = Annotated[int, typer.Option("--threads", help="Threads for the kernels (0: all cores).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of text.")]
Split = Annotated[str, typer.Option("--split", help="Split of an .npz to use: train, valid or test.")]


@series_app.command()
def generate(
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write: .npz (the three splits) or .csv.",
                                         show_default=False)],  # fmt: skip
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the generator.")] = 42,
    series: Annotated[int, typer.Option("--series", help="How many series (split 70/20/10 in order).")] = 10_000,
    steps: Annotated[
        int, typer.Option("--steps", help="Values per series (51: 50 in, 1 ahead; 60: 50 in, 10 ahead).")
    ] = 51,
) -> None:
    """Write the seed's series (two sines and noise): 10,000 of 51 steps split 7,000/2,000/1,000."""
    from ..series.data import generate_data, write_csv, write_npz

    with _user_errors():
        data = generate_data(series, steps, seed)
        if output.suffix.lower() == ".csv":
            import numpy as np

            write_csv(output, np.concatenate([data.train, data.valid, data.test]))
        elif output.suffix.lower() == ".npz":
            write_npz(output, data)
        else:
            raise CharrnnError(f"--output must end in .npz or .csv, got {output.name}")
    typer.echo(f"wrote {output}: {series:,} series of {steps} steps (train {len(data.train):,} / valid "
               f"{len(data.valid):,} / test {len(data.test):,}), seed {seed}", err=True)  # fmt: skip


@series_app.command()
def train(
    data: Data,
    output: Annotated[Path, typer.Option("-o", "--output", help="Model file (.npz) to write.", show_default=False)],
    units: Annotated[
        str, typer.Option("--units", help="Recurrent layer widths, bottom first (1: SimpleRNN(1)).")
    ] = "20,20",
    head: Annotated[str, typer.Option("--head", help="dense: a linear output layer; none: the top layer's units "
                                                     "are the outputs.")] = "dense",  # fmt: skip
    ahead: Annotated[int, typer.Option("--ahead", help="Steps ahead to predict at once (K outputs).")] = 1,
    every_step: Annotated[
        bool,
        typer.Option("--every-step", help="Sequence to sequence: predict the next --ahead values at every step."),
    ] = False,
    window: Annotated[int | None, typer.Option("--window", help="Input steps. A CSV then holds one long series, "
                                               "cut into windows; default: each series but its last --ahead values.",
                                               show_default=False)] = None,  # fmt: skip
    column: Annotated[
        str | None,
        typer.Option("--column", help="With --window: the CSV column (header name or 0-based number) to read."),
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Train,valid,test fractions of a CSV's rows or windows, in "
                                                       "order.")] = "0.7,0.2,0.1",  # fmt: skip
    epochs: Annotated[int, typer.Option("--epochs", help="Passes over the training series.")] = 20,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Series per step.")] = 32,
    optimizer: Annotated[str, typer.Option("--optimizer", help="adam, rmsprop, adagrad or sgd.")] = "adam",
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.")] = 1e-3,
    clip: Annotated[float, typer.Option("--clip", help="Clip the gradient's global norm to this (0: off).")] = 0.0,
    schedule: Annotated[
        str, typer.Option("--schedule", help="Learning rate: cosine (from --lr down to 5% of it) or constant.")
    ] = "cosine",
    normalize: Annotated[
        str,
        typer.Option("--normalize", help="none, standard (mean/std of the training inputs), or auto: standard "
                     "with a dense head; without one, scaled into [-1, 1] if needed."),
    ] = "auto",  # fmt: skip
    activation: Annotated[str, typer.Option("--activation", help="tanh or relu.")] = "tanh",
    dtype: Annotated[str, typer.Option("--dtype", help="float32 or float64.")] = "float32",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the initial weights and the batch order.")] = 0,
    threads: Threads = 0,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No summary or progress bars.")] = False,
    as_json: Json = False,
) -> None:
    """Train a series model (default: two 20-unit layers and a dense head, 20 epochs, Adam 1e-3, batch 32)."""
    from ..series.run import train_file

    with _user_errors():
        if head not in ("dense", "none"):
            raise CharrnnError(f"--head must be dense or none, got {head!r}")
        model, history, meta = train_file(
            data, output, _ints(units, "--units"), head == "dense", every_step, ahead, window, column,
            _fractions(split), activation, dtype, on_start=None if quiet or as_json else _announce, epochs=epochs,
            batch_size=batch_size, optimizer=optimizer, lr=lr, clip=clip, schedule=schedule, normalize=normalize,
            seed=seed, threads=threads, verbose=not quiet and not as_json,
        )  # fmt: skip
    if as_json:
        typer.echo(json.dumps({"output": str(output), "parameters": int(model.flat.size), **meta}))
    elif not quiet:
        final = f"validation MSE {history.val_loss[-1]:.5f}" if history.val_loss else "no validation series"
        typer.echo(f"saved {output}: {final} after {len(history.loss)} epoch(s), "
                   f"{history.series_per_second:,.0f} series/s", err=True)  # fmt: skip
    if history.stop_reason == "interrupted":
        raise typer.Exit(130)


def _announce(model) -> None:
    typer.echo(model.summary(), err=True)


def _table(report: dict[str, Any]) -> str:
    task = report["task"]
    lines = [f"{report['model']} on {report['data']}: {task['window']} steps in, {task['ahead']} ahead "
             f"({task['method']}), {report['parameters']:,} parameters",
             f"{'split':<7}{'series':>8}  {'':<7}{'model':>10}{'naive':>10}{'linear':>10}"]  # fmt: skip
    for name, row in report["splits"].items():
        for measure in ("mse", "mae"):
            label = f"{name:<7}{row['series']:>8,}" if measure == "mse" else " " * 15
            lines.append(f"{label}  {measure.upper():<7}" + "".join(f"{row[k][measure]:>10.5f}"
                                                                    for k in ("model", "naive", "linear")))  # fmt: skip
    return "\n".join(lines)


@series_app.command()
def evaluate(
    model: ModelFile,
    data: Data,
    ahead: Annotated[
        int | None,
        typer.Option("--ahead", help="Steps ahead to score (default: the model's; more than it predicts at once: "
                     "iterated).", show_default=False),
    ] = None,  # fmt: skip
    threads: Threads = 0,
    as_json: Json = False,
) -> None:
    """MSE and MAE on the validation and test series, beside the naive and linear baselines."""
    from ..series.run import evaluate_file

    with _user_errors():
        report = evaluate_file(model, data, ahead, threads)
    typer.echo(json.dumps(report, indent=2) if as_json else _table(report))


@series_app.command()
def forecast(
    model: ModelFile,
    data: Data,
    steps: Annotated[
        int | None,
        typer.Option("--steps", help="Values to forecast after each series (default: the model's outputs; more: "
                     "iterated).", show_default=False),
    ] = None,  # fmt: skip
    split: Split = "test",
    limit: Annotated[int | None, typer.Option("--limit", help="Only the first N series.", show_default=False)] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write CSV (or JSON if it ends in .json) "
                                                "here instead of stdout.", show_default=False)] = None,  # fmt: skip
    threads: Threads = 0,
    as_json: Json = False,
) -> None:
    """Forecast the values after the end of each series (its last window is the input): CSV or JSON."""
    from ..series.data import write_csv
    from ..series.run import forecast_file

    with _user_errors():
        result = forecast_file(model, data, steps, split, limit, threads)
        values = result.pop("forecasts")
        header = [f"step_{k + 1}" for k in range(result["steps"])]
        if as_json or (output is not None and output.suffix.lower() == ".json"):
            text = json.dumps({**result, "forecasts": values.tolist()})
            if output is None:
                typer.echo(text)
                return
            from ..atomic import write_bytes_atomic

            write_bytes_atomic(output, (text + "\n").encode())
        elif output is not None:
            write_csv(output, values, header)
        else:
            typer.echo(",".join(header))
            for row in values:
                typer.echo(",".join(f"{v:.9g}" for v in row))
            return
    typer.echo(f"wrote {output}: {len(values):,} forecasts of {result['steps']} step(s) ({result['method']})", err=True)


@series_app.command()
def plot(
    model: ModelFile,
    data: Data,
    output: Annotated[Path, typer.Option("-o", "--output", help="PNG to write (needs: pip install 'charrnn[plot]').",
                                         show_default=False)],  # fmt: skip
    count: Annotated[int, typer.Option("--count", help="How many series to draw.")] = 3,
    split: Split = "valid",
    steps: Annotated[int | None, typer.Option("--steps", help="Steps ahead to forecast (default: the model's).",
                                              show_default=False)] = None,  # fmt: skip
    threads: Threads = 0,
) -> None:
    """A PNG of a few series with their forecasts, the actual values and the naive forecast."""
    from ..series.run import plot_file

    with _user_errors():
        written = plot_file(model, data, output, count, split, steps, threads)
    typer.echo(f"wrote {written}", err=True)


def show_info(path: Path, as_json: bool) -> None:
    """`charrnn info` on a series model (cli.py hands series checkpoints here)."""
    from ..series.run import model_info

    with _user_errors():
        details = model_info(path)
    if as_json:
        typer.echo(json.dumps(details, indent=2))
        return
    task, norm = details["task"] or {}, details["normalization"]
    typer.echo(f"{details['path']}: series model, {details['config']['activation']} Elman RNN, "
               f"{details['config']['dtype']}, format v{details['format_version']}")  # fmt: skip
    typer.echo(details["summary"])
    typer.echo(f"task: {task.get('window')} steps in, {task.get('ahead')} ahead"
               + (", at every step" if task.get("every_step") else "")
               + f"; normalisation offset {norm['offset']:.6g}, scale {norm['scale']:.6g}")  # fmt: skip
    final = details["final_val_loss"]
    typer.echo(f"trained: {details['epochs']} epoch(s); final validation MSE "
               + (f"{final:.6f}" if final is not None else "none"))  # fmt: skip
