"""`charrnn sample MODEL`: generate text, streamed to stdout as it is produced."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..config import MAX_SEED
from .common import ModelArgument, ThreadsOption, UnkOption, emit, user_errors


def read_prime(prime: str | None, prime_file: Path | None) -> str:
    from ..errors import OptionError
    from ..score import read_source

    if prime is not None and prime_file is not None:
        raise OptionError("give --prime or --prime-file, not both")
    return read_source(prime_file)[0] if prime_file is not None else (prime or "")


def sample(
    model: ModelArgument,
    length: Annotated[int, typer.Option("-n", "--length", help="New characters per sample (prime not counted).")] = 500,
    temperature: Annotated[float, typer.Option(help="Softmax temperature (> 0); lower is more conservative.")] = 1.0,
    greedy: Annotated[bool, typer.Option("--greedy", help="Always take the most likely character.")] = False,
    top_k: Annotated[int, typer.Option(help="Sample only among the k most likely characters (0: off).")] = 0,
    top_p: Annotated[float, typer.Option(help="Sample from the smallest set with this much mass (1: off).")] = 1.0,
    prime: Annotated[str | None, typer.Option(help="Text to warm the state on (printed, not counted).")] = None,
    prime_file: Annotated[Path | None, typer.Option(help="Read the prime from this file.")] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Random seed in [0, 2^53): the same seed gives the same text.", min=0, max=MAX_SEED - 1,
                     show_default="random, reported by --json"),
    ] = None,  # fmt: skip
    num_samples: Annotated[int, typer.Option(help="Samples to generate together as one batch.")] = 1,
    stop: Annotated[str | None, typer.Option(help="End a sample right after it produces this string.")] = None,
    unk: UnkOption = "error",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON record per sample (docs/json.md).")] = False,
    threads: ThreadsOption = 1,  # the per-step products are small: a second BLAS thread costs more than it saves
) -> None:
    """Generate text from MODEL, streamed to stdout as it is produced."""
    from ..errors import CharrnnError, OptionError
    from ..generate import check_sampling_options, compute_threads
    from ..generate import sample as start_sampling
    from ..model import load_model
    from ..report import sample_record
    from ..vocab import parse_unk_option

    with user_errors():
        try:  # every problem it finds is an option value (a usage mistake): exit 2 before the model is read
            check_sampling_options(length, temperature, top_k, top_p, num_samples, 1)
        except CharrnnError as error:
            raise OptionError(str(error)) from None
        text = read_prime(prime, prime_file)
        loaded = load_model(model)
        if seed is None:  # drawn here, below 2^53, so that the seed --json reports survives any JSON reader
            seed = secrets.randbelow(MAX_SEED)
        with compute_threads(threads):
            sampler = start_sampling(loaded, length, temperature, top_k, top_p, greedy, text, num_samples, seed,
                                     stop, parse_unk_option(unk))  # fmt: skip
            if sampler.unknown.total:
                action = "skipped" if sampler.unknown.policy == "skip" else "mapped"
                typer.echo(f"prime: unknown characters {action}: {sampler.unknown.summary()}", err=True)
            streaming = num_samples == 1 and not as_json
            if streaming:
                sys.stdout.write(text)
            last = text[-1:]
            for pieces in sampler:
                if streaming and pieces[0]:
                    sys.stdout.write(pieces[0])
                    sys.stdout.flush()
                    last = pieces[0][-1]
        for result in sampler.results:
            if as_json:
                emit(sample_record(result, text, sampler.seed))
            elif streaming:
                if last not in ("", "\n"):
                    sys.stdout.write("\n")
            else:
                body = text + result.text
                typer.echo(f"--- sample {result.index + 1} of {num_samples} ---\n{body}", nl=not body.endswith("\n"))
        sys.stdout.flush()
