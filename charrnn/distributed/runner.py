"""A whole run over many documents: inputs -> tasks -> an engine -> JSON lines, with progress and resumption.

    from charrnn.distributed import DaskEngine, JobSpec, prepare_models, run_documents
    refs, models = prepare_models(["model.npz"])
    with DaskEngine(workers=2) as engine:
        run_documents(JobSpec("score", tuple(refs), {"unk": "skip"}), ["docs/"], engine, Path("out.jsonl"),
                      shipped=models)

Task size: about `TASK_SECONDS` of work, estimated from the job's floating-point operations per character and
`FLOPS_PER_SECOND`, one core's measured scoring rate (benchmarks/distributed.py); a fixed estimate, not a
timing, so tasks — and therefore results — never depend on the machine's speed at the time. A task costs the
scheduler and the wire a few milliseconds whatever its size (benchmarks/distributed.py measures it), so a
second of work keeps that under 1%, and a task is small enough that a killed worker's retried tasks and the
last tasks of a run (when some workers already idle) cost little.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from ..errors import CharrnnError
from .documents import Document, InputScan, form_tasks, iter_documents, scan_inputs
from .jobs import JobSpec, job_kind, run_task
from .models import models_for
from .output import OrderedWriter

TASK_SECONDS = 1.0
FLOPS_PER_SECOND = 2e10  # one free core scoring documents, H=128 float32: 24 GFLOP a CPU-second (benchmarks/)
MIN_TASK_CHARS, MAX_TASK_CHARS = 16_000, 4_000_000


def default_task_chars(spec: JobSpec, models: dict | None = None) -> int:
    """Characters per task for about TASK_SECONDS of work on one core (module docstring)."""
    kind = job_kind(spec.kind)
    flops = kind.flops_per_char(models if models is not None else models_for(spec.models))
    return int(min(MAX_TASK_CHARS, max(MIN_TASK_CHARS, TASK_SECONDS * FLOPS_PER_SECOND / max(flops, 1.0))))


@dataclass(frozen=True)
class RunSummary:
    documents: int  # in the inputs
    written: int  # rows written by this run
    failed: int  # of those, error rows
    skipped: int  # already in the output (--resume-output)
    tasks: int  # tasks run
    task_chars: int
    seconds: float  # wall time of the run, from the first task submitted
    busy_seconds: float  # summed time inside the task function, over all tasks
    cpu_seconds: float  # summed CPU time of those (less than busy_seconds when workers wait for a core)
    engine: str

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def check_models(spec: JobSpec) -> None:
    low, high = job_kind(spec.kind).models
    count = len(spec.models)
    if count < low or (high is not None and count > high):
        wanted = f"{low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
        raise CharrnnError(f"{spec.kind} takes {wanted} model(s), got {count}")
    names = [ref.name for ref in spec.models]
    if len(set(names)) != len(names):
        raise CharrnnError(f"model names must differ, got {', '.join(names)}")


def preflight(spec: JobSpec, inputs: Sequence[str | Path], output: Path | None, resume: bool) -> InputScan:
    """Every check that needs no engine (models, inputs, duplicate ids, the output), so a mistake is reported
    before a cluster is started. Returns the inputs' scan."""
    check_models(spec)
    scan = scan_inputs(inputs)
    if output is not None:
        OrderedWriter.check(output, resume, spec.describe())
    elif resume:
        raise CharrnnError("--resume-output needs an output file (-o/--output)")
    return scan


def run_documents(spec: JobSpec, inputs: Sequence[str | Path], engine, output: Path | None = None,
                  resume: bool = False, progress: bool = True, task_chars: int | None = None,
                  shipped: dict | None = None, stream: TextIO | None = None,
                  scan: InputScan | None = None) -> RunSummary:  # fmt: skip
    """Run job `spec` over every document of `inputs` on `engine` (entered), writing one JSON line per
    document to `output` (or `stream`/stdout) in input order. `shipped` is {sha256: Model} from
    `prepare_models`, for engines that ship models instead of paths; `scan` is `preflight`'s, when the
    caller ran it. Returns the run's figures."""
    scan = scan or preflight(spec, inputs, output, resume)
    task_chars = task_chars or default_task_chars(spec, _by_name(spec, shipped))
    if task_chars < 1:
        raise CharrnnError(f"--task-chars must be >= 1, got {task_chars}")
    writer = OrderedWriter(output, resume, spec.describe(), stream)
    counts = {"skipped": 0, "tasks": 0, "busy": 0.0, "cpu": 0.0}
    try:
        with tqdm(total=scan.documents, unit="doc", disable=not progress, dynamic_ncols=True, leave=False) as bar:
            spec = engine.start_job(spec, shipped)
            start = time.perf_counter()

            def pending() -> Iterator[list[Document]]:
                for task in form_tasks(iter_documents(inputs), task_chars):
                    if all(document.id in writer.done for document in task):
                        counts["skipped"] += len(task)
                        bar.update(len(task))
                        continue
                    counts["skipped"] += sum(document.id in writer.done for document in task)
                    yield task

            for seq, result in engine.map(partial(run_task, spec), pending()):
                bar.update(sum(row["id"] not in writer.done for row in result.rows))
                writer.add(seq, result.rows)
                counts["tasks"] += 1
                counts["busy"] += result.seconds
                counts["cpu"] += result.cpu_seconds
            seconds = time.perf_counter() - start
    finally:
        writer.close()
    return RunSummary(scan.documents, writer.written, writer.failed, counts["skipped"], counts["tasks"], task_chars,
                      seconds, counts["busy"], counts["cpu"], engine.describe())  # fmt: skip


def _by_name(spec: JobSpec, shipped: dict | None) -> dict | None:
    if not shipped:
        return None
    return {ref.name: shipped[ref.sha256] for ref in spec.models if ref.sha256 in shipped} or None


def iter_rows(path: Path) -> Iterable[dict]:
    """The rows of an output file (for tests and callers that post-process)."""
    import json

    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
