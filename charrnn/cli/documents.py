"""Documents mode at the command line (charrnn/documents.py, charrnn/docmodel.py): what `train --documents`
adds to a run's start, and the documents side of `sample`, `score` and `attribute`, which those commands
hand over to when the model is a documents model (or `--documents` is given)."""

from __future__ import annotations

import dataclasses
import secrets
import sys
from pathlib import Path
from typing import Any

import typer

from ..config import MAX_SEED, TrainConfig
from ..errors import CharrnnError, OptionError
from .common import emit
from .options import given


def documents_start(ctx: typer.Context, options: dict[str, Any], corpus: list[Path], run: Any,
                    architecture: dict[str, Any], shown: Any, resume: Path | None, init_from: Path | None,
                    cache_dir: Path | None):  # fmt: skip
    """`train --documents`: documents mode's defaults for the options not given (a fresh run; a resumed one
    keeps its record), the documents, the RunStart and the preview (8 documents per temperature).
    Returns (run options, DocumentCorpus, RunStart, preview)."""
    from ..docmodel import DocumentPreview
    from ..documents import prepare_documents_run, with_document_defaults
    from ..runstart import ARCHITECTURE_OPTIONS

    data = run.data
    stream_only = {"--unk": data.unk != "error", "--extend-vocab": ctx.params.get("extend_vocab"),
                   "--cache-dir": cache_dir is not None}  # fmt: skip
    for flag, present in stream_only.items():
        if present:
            raise OptionError(f"{flag} does not apply to --documents")
    names = set(given(ctx, options, TrainConfig))
    train_config, arch = with_document_defaults(
        run.train, {name: architecture.get(name) for name in ARCHITECTURE_OPTIONS},
        names | ({"epochs", "steps", "time_budget"} if resume is not None else set()),
    )  # fmt: skip
    if resume is not None:  # the recorded options win over documents mode's defaults
        train_config = run.train
    corpus_docs, start = prepare_documents_run(
        corpus, data.documents, arch, resume=resume, init_from=init_from, val_frac=data.val_frac,
        val_docs=data.val_docs, val_file=data.val_file, seed=train_config.seed, encoding=data.encoding,
        errors=data.errors,
    )  # fmt: skip
    longest = max(len(text) for text in corpus_docs.train_texts)
    preview = DocumentPreview(8, shown.temperatures, train_config.seed, corpus_docs.split, max(64, 2 * longest))
    return dataclasses.replace(run, train=train_config), corpus_docs, start, preview


def sample_documents(path: Path, count: int, max_length: int | None, temperature: float, top_k: int, top_p: float,
                     greedy: bool, prime: str, seed: int | None, unique: bool, novel: bool, unk: str,
                     as_json: bool) -> None:  # fmt: skip
    """`sample` on a documents model: `count` whole documents in the corpus's format, or JSON records."""
    from ..docmodel import SampleStats, default_max_length, join_documents, load_documents_model
    from ..docmodel import sample_documents as draw

    documents = load_documents_model(path)
    stats = SampleStats()
    max_length = default_max_length(documents) if max_length is None else max_length
    seed = secrets.randbelow(MAX_SEED) if seed is None else seed  # reported by --json: a sample can be redrawn
    produced = 0
    for sample in draw(documents, count, max_length, temperature, top_k, top_p, greedy, prime, seed, unique, novel,
                       unk, stats):  # fmt: skip
        produced += 1
        if as_json:
            emit({"kind": "document_sample", **sample.to_dict(), "prime": prime, "seed": seed})
        else:
            sys.stdout.write(join_documents([sample.text], documents.split))
            sys.stdout.flush()
    if produced < count:
        raise CharrnnError(f"found only {produced} of {count} documents in {stats.draws} draws ({stats.empty} "
                           f"empty, {stats.repeated} repeated, {stats.known} already in the corpus)")  # fmt: skip
    if stats.repeated or stats.known:
        typer.echo(f"drew {stats.draws} documents: {stats.repeated} repeated, {stats.known} already in the corpus",
                   err=True)  # fmt: skip
    if stats.incomplete:
        typer.echo(f"{stats.incomplete} document(s) cut at --max-length {max_length} before their end", err=True)


def read_documents(body: str, name: str, split: str) -> list[str]:
    from ..documents import split_documents

    texts, _ = split_documents(body, split)
    if not texts:
        raise CharrnnError(f"{name} has no documents (split by {split!r})")
    return texts


def score_documents(path: Path, body: str, name: str, split: str | None, unk: str, as_json: bool) -> None:
    """`score` on a documents model: a row per document, then the total (JSON lines with --json)."""
    from ..docmodel import load_documents_model, score_summary
    from ..docmodel import score_documents as score
    from ..vocab import describe_char

    documents = load_documents_model(path)
    texts = read_documents(body, name, split or documents.split)
    scores, unknown = score(documents.model, texts, unk, where=name)
    summary = score_summary(scores)
    if as_json:
        for row in scores:
            emit({"kind": "document_score", **row.to_dict()})
        emit({"kind": "document_scores", "source": name, "model": str(path), **summary})
        return
    typer.echo(f"{'document':>8}{'chars':>7}{'log-lik (nats)':>16}{'bits/char':>11}  text")
    for row in scores:
        preview = row.text.replace("\n", " ")[:50]
        typer.echo(f"{row.index + 1:>8}{row.predictions - 1:>7}{row.log_likelihood:>16.3f}{row.bits_per_char:>11.3f}"
                   f"  {preview}")  # fmt: skip
    typer.echo(f"{name}: {summary['documents']:,} documents, {summary['characters']:,} characters + "
               f"{summary['documents']:,} end symbols scored\nlog-likelihood {summary['log_likelihood_nats']:.2f} "
               f"nats\n{summary['nats_per_char']:.4f} nats/char, {summary['bits_per_char']:.4f} bits/char "
               f"(end symbol included), {summary['nats_per_document']:.3f} nats/document")  # fmt: skip
    if unknown.total:
        action = {"skip": "skipped"}.get(unknown.policy, f"mapped to {describe_char(unknown.policy)}")
        typer.echo(f"unknown characters {action}: " + ", ".join(
            f"{describe_char(c)} x{n} (first in document {first + 1})" for c, (n, first) in unknown.counts.items()))


def attribute_documents(body: str, name: str, paths: dict[str, Path], split: str | None, as_json: bool) -> None:
    """`attribute --documents`: a verdict per document, the documents each model wins, the overall verdict."""
    from ..docmodel import attribute_documents as attribute
    from ..docmodel import load_documents_model
    from ..vocab import describe_char

    loaded = {label: load_documents_model(path) for label, path in paths.items()}
    first = next(iter(loaded.values()))
    texts = read_documents(body, name, split or first.split)
    result = attribute(texts, {label: d.model for label, d in loaded.items()})
    report = result.to_dict()
    if as_json:
        for row in report.pop("documents"):
            emit({"kind": "document_verdict", **row})
        emit({"kind": "document_attribution", "source": name, **report})
        return
    width = max(12, *(len(n) for n in paths))
    typer.echo(f"{'document':>8}  {'best':<{width}}{'margin bits':>12}  text")
    for row in report["documents"]:
        typer.echo(f"{row['document'] + 1:>8}  {row['best']:<{width}}{row['margin_bits']:>12.1f}  "
                   f"{row['text'].replace(chr(10), ' ')[:50]}")  # fmt: skip
    typer.echo("documents won: " + ", ".join(f"{n} {c}" for n, c in report["documents_won"].items()) + "\n")
    typer.echo(f"{'model':<{width}}{'bits/char':>11}{'log-lik (nats)':>17}{'posterior':>12}")
    for label, row in report["models"].items():
        typer.echo(f"{label:<{width}}{row['bits_per_char']:>11.4f}{row['log_likelihood_nats']:>17.1f}"
                   f"{row['posterior']:>12.4g}")  # fmt: skip
    excluded = ", ".join(f"{describe_char(c)} x{n}" for c, n in sorted(result.excluded.items()))
    typer.echo(f"verdict over all {len(texts):,} documents: {report['best']}"
               + (f" (excluded as unknown to some model: {excluded})" if excluded else ""))  # fmt: skip


