"""Job kinds: what one task does with its documents, the same code on a Dask worker and in one process.

A job kind is two functions and a cost:

    prepare(models, text, options) -> item    one document, alone: encode it, check it. A CharrnnError here
                                              fails that document only (it becomes {"id": ..., "error": ...})
    run(models, items, options) -> [dict]     all the task's prepared documents at once (batched: this is
                                              where the time goes), one JSON-able result per item, in order
    flops_per_char(models) -> float           the work per character, to size tasks (runner.py)

`run_task` is the task every engine executes: decode and prepare each document, run the batch under a
thread limit, and return one row per document, in the task's order, keyed by id.

Built-in kinds: "score" (one model: the totals of `charrnn score --json`) and "attribute" (several models:
`charrnn attribute --json`, optionally per paragraph). REGISTRATION POINT: a new kind — `charrnn rerank`'s,
once rerank.py is merged — is `register_job(JobKind("rerank", prepare, run, flops_per_char))` at the bottom of
this module (or in a module imported here): workers look kinds up by name in `JOBS`, so the registration
must run whenever this module is imported, on the workers as on the driver.

Models arrive as name -> Model (models.py). Library imports that bring in numba (batch, score) happen inside
the functions: a worker sets its thread and cache environment before numba is first imported (worker.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import CharrnnError
from ..model import Model
from .documents import Document
from .models import ModelRef, models_for


@dataclass(frozen=True)
class JobKind:
    name: str
    prepare: Callable[[dict[str, Model], str, dict], Any]
    run: Callable[[dict[str, Model], list[Any], dict], list[dict]]
    flops_per_char: Callable[[dict[str, Model]], float]
    models: tuple[int, int | None] = (1, 1)  # how many models the kind takes: (at least, at most or None)


JOBS: dict[str, JobKind] = {}


def register_job(kind: JobKind) -> None:
    JOBS[kind.name] = kind


@dataclass(frozen=True)
class JobSpec:
    """What every task of a run does: the kind, its models (refs, not weights), its options, and the threads
    the batch may use (1 on a Dask worker: one process per core)."""

    kind: str
    models: tuple[ModelRef, ...]
    options: dict = field(default_factory=dict)
    threads: int = 1

    def describe(self) -> dict:
        """What must match for `--resume-output` to continue an output: kind, models by content, options."""
        return {"kind": self.kind, "models": [{"name": r.name, "sha256": r.sha256} for r in self.models],
                "options": self.options}  # fmt: skip


def job_kind(name: str) -> JobKind:
    if name not in JOBS:
        raise CharrnnError(f"unknown job kind {name!r}; known: {', '.join(sorted(JOBS))}")
    return JOBS[name]


@dataclass(frozen=True)
class TaskResult:
    rows: list[dict]  # one per document, in the task's order
    seconds: float  # time inside the task function (decode, prepare, batch), for the overhead measurement
    cpu_seconds: float = 0.0  # CPU time of the task's thread in that time: on a shared machine, wall - cpu is
    # time the worker waited for a core (benchmarks/distributed.py)


def run_task(spec: JobSpec, documents: Sequence[Document]) -> TaskResult:
    """The task: one row per document, {"id": ..., <result>} or {"id": ..., "error": "..."}."""
    from ..kernels import blas

    start, cpu_start = time.perf_counter(), time.thread_time()
    kind = job_kind(spec.kind)
    models = models_for(spec.models)
    rows: list[dict | None] = [None] * len(documents)
    prepared, positions = [], []
    for position, document in enumerate(documents):
        try:
            prepared.append(kind.prepare(models, document.text(), spec.options))
            positions.append(position)
        except CharrnnError as error:
            rows[position] = {"id": document.id, "error": str(error)}
    if prepared:
        with blas.thread_limit(spec.threads):
            results = kind.run(models, prepared, spec.options)
        for position, result in zip(positions, results, strict=True):
            rows[position] = {"id": documents[position].id, **result}
    return TaskResult(rows, time.perf_counter() - start, time.thread_time() - cpu_start)  # type: ignore[arg-type]


def model_flops_per_char(model: Model) -> float:
    """Multiply-adds x 2 per scored character: the recurrence and upper layers' inputs (H x H each), the head."""
    c = model.config
    return 2.0 * ((2 * c.num_layers - 1) * c.hidden_size**2 + c.hidden_size * c.vocab_size)


# ---- score: one model, the totals of `charrnn score --json` per document ----


def _score_prepare(models: dict[str, Model], text: str, options: dict) -> tuple[np.ndarray, Any]:
    (model,) = models.values()
    if not text:
        raise CharrnnError("document is empty: nothing to score")
    ids, unknown = model.vocab.encode_with_report(text, unk=options.get("unk", "error"), where="document")
    if ids.size < 2:
        raise CharrnnError(f"document has {ids.size} character(s) the model knows; scoring needs at least 2 "
                           "(the first only conditions the second)")  # fmt: skip
    return ids, unknown


def _score_run(models: dict[str, Model], items: list, options: dict) -> list[dict]:  # noqa: ARG001
    from ..batch import score_sequences
    from ..score import ScoreResult

    (model,) = models.values()
    log_probs = score_sequences(model, [ids for ids, _ in items])
    none_i, none_f = np.empty((0, 0), np.int64), np.empty((0, 0), np.float64)
    return [ScoreResult(ids.astype(np.int64), lp, unknown, none_i, none_f).summary()
            for (ids, unknown), lp in zip(items, log_probs, strict=True)]  # fmt: skip


register_job(JobKind("score", _score_prepare, _score_run, lambda models: sum(map(model_flops_per_char,
                                                                                   models.values()))))  # fmt: skip


# ---- attribute: several models, `charrnn attribute --json` per document ----


def _attribute_prepare(models: dict[str, Model], text: str, options: dict) -> tuple:
    from ..score import keep_only, shared_vocabulary, split_paragraphs

    shared = shared_vocabulary(list(models.values()))
    kept, excluded = keep_only(text, shared)
    if len(kept) < 2:
        raise CharrnnError(f"the document has {len(kept)} character(s) every model knows; attribution needs at "
                           f"least 2" + (f" ({sum(excluded.values())} excluded as unknown to some model)"
                                         if excluded else ""))  # fmt: skip
    paragraphs = None
    if options.get("by_paragraph"):
        paragraphs = [(line, block, keep_only(block, shared)[0]) for line, block in split_paragraphs(text)]
    return kept, excluded, paragraphs


def _attribute_run(models: dict[str, Model], items: list, options: dict) -> list[dict]:  # noqa: ARG001
    """Every model scores every document (and paragraph) of the task in one batch of its own."""
    from ..batch import score_sequences
    from ..score import Attribution, Paragraph, Verdict

    pieces = []  # (item index, paragraph index or -1, text as scored)
    for index, (kept, _, paragraphs) in enumerate(items):
        pieces.append((index, -1, kept))
        pieces.extend((index, p, scored) for p, (_, _, scored) in enumerate(paragraphs or []) if len(scored) >= 2)
    totals = np.empty((len(pieces), len(models)))
    for column, model in enumerate(models.values()):
        scores = score_sequences(model, [model.vocab.encode(text) for _, _, text in pieces])
        totals[:, column] = [float(s.sum()) for s in scores]
    verdicts = {(i, p): Verdict(len(text) - 1, totals[row]) for row, (i, p, text) in enumerate(pieces)}
    names = list(models)
    out = []
    for index, (_, excluded, paragraphs) in enumerate(items):
        paras = None if paragraphs is None else [
            Paragraph(p, line, block, verdicts.get((index, p))) for p, (line, block, _) in enumerate(paragraphs)
        ]  # fmt: skip
        out.append(Attribution(names, verdicts[(index, -1)], excluded, paras).to_dict())
    return out


register_job(JobKind("attribute", _attribute_prepare, _attribute_run,
                     lambda models: sum(map(model_flops_per_char, models.values())), models=(1, None)))  # fmt: skip
