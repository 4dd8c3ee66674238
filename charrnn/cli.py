"""The `charrnn` command line: parses options, calls one library function, prints, exits.

No maths lives here. Expected failures are `CharrnnError`s, printed as one `Error: ...` line on stderr
with exit status 1; usage errors keep Click's status 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
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
    hidden: Annotated[int | None, typer.Option(help="Hidden units per layer [default: 512].")] = None,
    layers: Annotated[int | None, typer.Option(help="Stacked Elman layers [default: 2].")] = None,
    activation: Annotated[str | None, typer.Option(help="tanh or relu [default: tanh].")] = None,
    seq_len: Annotated[int, typer.Option(help="Characters per chunk (truncated BPTT length).")] = 64,
    batch_size: Annotated[int, typer.Option(help="Parallel streams per step.")] = 64,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 2e-3,
    optimizer: Annotated[str, typer.Option(help="adam, rmsprop, adagrad or sgd (with --momentum).")] = "adam",
    momentum: Annotated[float, typer.Option(help="Momentum for sgd.")] = 0.9,
    weight_decay: Annotated[float, typer.Option(help="L2 weight decay (decoupled for adam).")] = 0.0,
    dropout: Annotated[float, typer.Option(help="Drop probability on non-recurrent connections.")] = 0.25,
    clip: Annotated[float, typer.Option(help="Clip gradients to this global norm (0: off).")] = 5.0,
    clip_value: Annotated[float, typer.Option(help="Clamp each gradient element to ±this (0: off).")] = 0.0,
    lr_decay: Annotated[float, typer.Option(help="Multiply the learning rate by this each epoch.")] = 1.0,
    lr_schedule: Annotated[
        str, typer.Option(help="cosine (decay to --lr-floor over the run's steps/epochs/time) or constant.")
    ] = "cosine",
    lr_floor: Annotated[float, typer.Option(help="Where the cosine schedule ends, as a fraction of --lr.")] = 0.05,
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
            weight_decay=weight_decay, dropout=dropout, clip=clip, clip_value=clip_value, lr_decay=lr_decay,
            lr_schedule=lr_schedule, lr_floor=lr_floor,
            epochs=epochs,
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
                "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3]
            )


@corpus_app.command("get")
def corpus_get(
    name: Annotated[str, typer.Argument(help="Corpus name, as shown by `charrnn corpus list`.")],
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Cache directory [default: $XDG_CACHE_HOME/charrnn or ~/.cache/charrnn]."),
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
    from .atomic import write_bytes_atomic

    try:
        write_bytes_atomic(output, result.text.encode("utf-8"), make_parents=True)
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
    alphabet: Annotated[int, typer.Option("--alphabet", help="Alphabet size A (2-26 lowercase letters).")] = 8,
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
        result = markov_text(length, order=order, alphabet_size=alphabet, concentration=concentration, seed=seed)
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
        result = brackets_text(length, types=types, letters=letters, p_open=p_open, p_close=p_close, seed=seed)
        _report_synth(result, output, as_json)


# ---- end corpus commands ----

# ---- sample / score / attribute commands ----

UnkOption = Annotated[
    str, typer.Option("--unk", help="Characters not in the model's vocabulary: error, skip or map:<char>.")
]


def _read_prime(prime: str | None, prime_file: Path | None) -> str:
    from .score import read_source

    if prime is not None and prime_file is not None:
        raise CharrnnError("give --prime or --prime-file, not both")
    return read_source(prime_file)[0] if prime_file is not None else (prime or "")


@app.command()
def sample(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.npz).", show_default=False)],
    length: Annotated[int, typer.Option("-n", "--length", help="New characters per sample (prime not counted).")] = 500,
    temperature: Annotated[float, typer.Option(help="Softmax temperature (> 0); lower is more conservative.")] = 1.0,
    greedy: Annotated[bool, typer.Option("--greedy", help="Always take the most likely character.")] = False,
    top_k: Annotated[int, typer.Option(help="Sample only among the k most likely characters (0: off).")] = 0,
    top_p: Annotated[float, typer.Option(help="Sample from the smallest set with this much mass (1: off).")] = 1.0,
    prime: Annotated[str | None, typer.Option(help="Text to warm the state on (printed, not counted).")] = None,
    prime_file: Annotated[Path | None, typer.Option(help="Read the prime from this file.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed: the same seed gives the same text.")] = None,
    num_samples: Annotated[int, typer.Option(help="Samples to generate together as one batch.")] = 1,
    stop: Annotated[str | None, typer.Option(help="End a sample right after it produces this string.")] = None,
    unk: UnkOption = "error",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per sample (JSON lines).")] = False,
    threads: ThreadsOption = 1,  # the per-step products are small: a second BLAS thread costs more than it saves
) -> None:
    """Generate text from MODEL, streamed to stdout as it is produced."""
    from .generate import compute_threads
    from .generate import sample as start_sampling
    from .model import load_model
    from .vocab import parse_unk_option

    with user_errors():
        text = _read_prime(prime, prime_file)
        loaded = load_model(model)
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
                typer.echo(json.dumps({**result.to_dict(), "prime": text, "seed": sampler.seed}))
            elif streaming:
                if last not in ("", "\n"):
                    sys.stdout.write("\n")
            else:
                body = text + result.text
                typer.echo(f"--- sample {result.index + 1} of {num_samples} ---\n{body}", nl=not body.endswith("\n"))
        sys.stdout.flush()


@app.command()
def score(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.npz).", show_default=False)],
    source: Annotated[
        str | None, typer.Argument(help="Text file to score, or - for stdin.", show_default=False)
    ] = None,
    text: Annotated[str | None, typer.Option("--text", help="Score this string instead of a file.")] = None,
    per_char: Annotated[bool, typer.Option("--per-char", help="A row per character: probability, surprisal.")] = False,
    alternatives: Annotated[int, typer.Option(help="Most likely alternatives shown with --per-char.")] = 3,
    per_line: Annotated[bool, typer.Option("--per-line", help="Bits/char of each line.")] = False,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="Also score with n-gram models (orders 1-5) fitted on this training text."),
    ] = None,
    unk: UnkOption = "error",
    as_json: JsonOption = False,
    threads: ThreadsOption = 1,  # see sample
) -> None:
    """Log-likelihood of a text under MODEL: nats, bits, bits/char, perplexity. The first character only
    conditions; characters 2..N are scored from a zero state."""
    from .generate import compute_threads
    from .model import load_model
    from .score import line_scores, ngram_baselines, per_char_rows, read_source, score_text
    from .vocab import describe_char, parse_unk_option

    with user_errors():
        if (source is None) == (text is None):
            raise CharrnnError("give a FILE (or - for stdin) or --text, exactly one")
        if alternatives < 0:
            raise CharrnnError(f"--alternatives must be >= 0, got {alternatives}")
        body, name = (text, "--text") if text is not None else read_source(source)
        loaded = load_model(model)
        with compute_threads(threads):
            result = score_text(loaded, body, parse_unk_option(unk), top=alternatives if per_char else 0, where=name)
        summary = result.summary()
        if baseline is not None:
            summary["baselines_nats_per_char"] = ngram_baselines(loaded, baseline, body, parse_unk_option(unk))
        rows = per_char_rows(result, loaded) if per_char else None
        lines = line_scores(result, loaded) if per_line else None
        if as_json:
            out = {"source": name, "model": str(model), **summary}
            if rows is not None:
                out["per_char"] = rows
            if lines is not None:
                out["lines"] = [{"line": ln.line, "text": ln.text, "scored": ln.scored,
                                 "log_likelihood_nats": ln.log_likelihood,
                                 "bits_per_char": ln.bits_per_char if ln.scored else None} for ln in lines]  # fmt: skip
            typer.echo(json.dumps(out, indent=2))
            return
        if rows is not None:
            typer.echo(f"{'position':>8}  {'char':<8}{'prob':>9}{'bits':>8}  most likely")
            for row in rows:
                alts = "  ".join(f"{describe_char(a['char'])} {a['prob']:.3f}" for a in row["alternatives"])
                typer.echo(f"{row['position']:>8}  {describe_char(row['char']):<8}{row['prob']:>9.4f}"
                           f"{row['bits']:>8.2f}  {alts}")  # fmt: skip
        if lines is not None:
            typer.echo(f"{'line':>6}{'chars':>7}{'bits/char':>11}  text")
            for ln in lines:
                bpc = f"{ln.bits_per_char:.3f}" if ln.scored else "-"
                typer.echo(f"{ln.line:>6}{ln.scored:>7}{bpc:>11}  {ln.text[:60]}")
        typer.echo(f"{name}: {summary['characters']:,} characters, {summary['scored']:,} scored (the first only "
                   f"conditions)\nlog-likelihood {summary['log_likelihood_nats']:.2f} nats "
                   f"({summary['log_likelihood_bits']:.2f} bits)\n{summary['nats_per_char']:.4f} nats/char, "
                   f"{summary['bits_per_char']:.4f} bits/char, perplexity {summary['perplexity']:.3f}")  # fmt: skip
        for order, nats in summary.get("baselines_nats_per_char", {}).items():
            typer.echo(f"  {order}-gram baseline (Kneser-Ney, fitted on {baseline}): {nats:.4f} nats/char, "
                       f"{nats / 0.6931471805599453:.4f} bits/char")  # fmt: skip
        if result.unknown.total:
            action = {"skip": "skipped"}.get(result.unknown.policy, f"mapped to {describe_char(result.unknown.policy)}")
            typer.echo(f"unknown characters {action}: {result.unknown.summary()}")


@app.command()
def attribute(
    source: Annotated[str, typer.Argument(help="Text file to attribute, or - for stdin.", show_default=False)],
    models: Annotated[list[Path], typer.Option("-m", "--model", help="A candidate model (repeat: -m A -m B).")],
    by_paragraph: Annotated[bool, typer.Option("--by-paragraph", help="Also a verdict per paragraph.")] = False,
    as_json: JsonOption = False,
    threads: ThreadsOption = 1,  # see sample
) -> None:
    """Which model explains a text best: bits/char and posterior (uniform prior) per model. Characters
    outside the vocabulary shared by all models are removed for every model, and reported."""
    from .generate import compute_threads
    from .model import load_model
    from .score import attribute as run_attribution
    from .score import read_source
    from .vocab import describe_char

    with user_errors():
        stems = [path.stem for path in models]
        names = [path.stem if stems.count(path.stem) == 1 else str(path) for path in models]
        if len(set(names)) != len(names):
            raise CharrnnError("the same model is given twice")
        body, name = read_source(source)
        loaded = {label: load_model(path) for label, path in zip(names, models, strict=True)}
        with compute_threads(threads):
            result = run_attribution(body, loaded, by_paragraph=by_paragraph)
        report = result.to_dict()
        if as_json:
            typer.echo(json.dumps({"source": name, **report}, indent=2))
            return
        width = max(12, *(len(n) for n in names))
        if result.paragraphs is not None:
            typer.echo(f"{'para':>5}{'line':>7}{'chars':>7}  {'best':<{width}}{'margin bits':>12}  text")
            for para in report["paragraphs"]:
                if para["best"] is None:
                    typer.echo(f"{para['index'] + 1:>5}{para['line']:>7}{para['scored']:>7}  {'(too short)':<{width}}")
                    continue
                preview = para["preview"].replace("\n", " ")[:50]
                typer.echo(f"{para['index'] + 1:>5}{para['line']:>7}{para['scored']:>7}  {para['best']:<{width}}"
                           f"{para['margin_bits']:>12.1f}  {preview}")  # fmt: skip
            wins = {n: sum(p["best"] == n for p in report["paragraphs"]) for n in names}
            typer.echo("paragraphs won: " + ", ".join(f"{n} {c}" for n, c in wins.items()) + "\n")
        typer.echo(f"{'model':<{width}}{'bits/char':>11}{'log-lik (nats)':>17}{'posterior':>12}")
        for label, row in report["models"].items():
            typer.echo(f"{label:<{width}}{row['bits_per_char']:>11.4f}{row['log_likelihood_nats']:>17.1f}"
                       f"{row['posterior']:>12.4g}")  # fmt: skip
        excluded = ", ".join(f"{describe_char(c)} x{n}" for c, n in sorted(result.excluded.items()))
        typer.echo(f"verdict: {result.best} ({report['scored']:,} characters scored"
                   + (f"; excluded as unknown to some model: {excluded})" if excluded else ")"))  # fmt: skip


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


from . import cli_codec  # noqa: E402  (compress / decompress live in cli_codec.py)

app.command()(cli_codec.compress)
app.command()(cli_codec.decompress)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
