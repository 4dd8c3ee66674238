"""`charrnn sample MODEL`: generate text, streamed to stdout as it is produced."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Annotated

import typer

from ..config import MAX_SEED
from .common import ModelArgument, ThreadsOption, UnkOption, emit, text_argument, user_errors


def read_prime(prime: str | None, prime_file: Path | None) -> str:
    from ..errors import OptionError
    from ..score import read_source

    if prime is not None and prime_file is not None:
        raise OptionError("give --prime or --prime-file, not both")
    return read_source(prime_file)[0] if prime_file is not None else (prime or "")


def sample(
    ctx: typer.Context,
    model: ModelArgument,
    length: Annotated[
        int, typer.Option("-n", "--length", help="New characters per sample (prime not counted); for a documents "
                          "model, the number of documents [default: 10].")
    ] = 500,
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
    max_length: Annotated[
        int | None, typer.Option(help="Documents model: new characters at most per document [default: twice the "
                                 "longest training document].", min=1)
    ] = None,
    unique: Annotated[bool, typer.Option("--unique", help="Documents model: never the same document twice.")] = False,
    novel: Annotated[
        bool, typer.Option("--novel", help="Documents model: only documents in neither the training nor the "
                           "validation set.")
    ] = False,
) -> None:
    """Generate text from MODEL, streamed to stdout as it is produced. A documents model (train --documents)
    gives -n whole documents, in its corpus's format."""
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
        prime, stop = text_argument(prime, "--prime"), text_argument(stop, "--stop")
        text_argument(unk, "--unk")
        text = read_prime(prime, prime_file)
        loaded = load_model(model)
        typed = {name for name in ctx.params if getattr(ctx.get_parameter_source(name), "name", "") != "DEFAULT"}
        if loaded.vocab.has_end:  # a documents model: whole documents (cli/documents.py)
            from .documents import sample_documents

            for option, flag in (("num_samples", "--num-samples"), ("stop", "--stop")):
                if option in typed:
                    raise OptionError(f"{flag} does not apply to a documents model (-n is the number of documents)")
            with compute_threads(threads):
                sample_documents(model, length if "length" in typed else 10, max_length, temperature, top_k, top_p,
                                 greedy, text, seed, unique, novel, parse_unk_option(unk), as_json)  # fmt: skip
            return
        if max_length is not None or unique or novel:
            raise OptionError("--max-length, --unique and --novel apply to documents models (train --documents)")
        if seed is None:  # drawn here, below 2^53, so that the seed --json reports survives any JSON reader
            seed = secrets.randbelow(MAX_SEED)
        # one sample printed as it comes is streamed, not kept: memory stays flat for any -n (the others are
        # printed whole at the end, so their texts are kept, and their size is checked before starting)
        streaming = num_samples == 1 and not as_json
        with compute_threads(threads):
            sampler = start_sampling(loaded, length, temperature, top_k, top_p, greedy, text, num_samples, seed,
                                     stop, parse_unk_option(unk), keep_text=not streaming)  # fmt: skip
            if sampler.unknown.total:
                action = "skipped" if sampler.unknown.policy == "skip" else "mapped"
                typer.echo(f"prime: unknown characters {action}: {sampler.unknown.summary()}", err=True)
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
