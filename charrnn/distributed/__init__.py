"""Beyond one process: scoring and attributing many documents, and hyper-parameter sweeps, on Dask distributed.

Read in this order:

    documents.py  inputs (files, directories, JSON lines) -> documents -> tasks of ~1 s of work
    models.py     models by content hash: loaded once per process, checked, or shipped
    jobs.py       job kinds (score, attribute; the registration point for more) and `run_task`, the task
    output.py     JSON lines in input order, keyed by id, resumable
    engine.py     where tasks run: this process (`LocalEngine`) or a Dask cluster (`DaskEngine`)
    worker.py     a Dask worker made ready before its first task (threads, numba cache, models, kernels)
    runner.py     `run_documents`: one run, end to end
    sweep.py      `run_sweep`: grid or random search, each trial a `charrnn train` process

Results never depend on the engine or the number of workers: tasks are cut from the input order alone, and a
task's scores depend only on its documents (batch.py). Dask is optional (`pip install 'charrnn[dask]'`) and
imported only when a Dask engine starts; nothing here imports numba before a worker has pinned its threads.
"""

from .documents import Document, form_tasks, iter_documents, scan_inputs
from .engine import DaskEngine, LocalEngine, make_engine, parse_engine
from .jobs import JOBS, JobKind, JobSpec, register_job, run_task
from .models import ModelRef, prepare_models
from .runner import RunSummary, default_task_chars, run_documents

__all__ = [
    "JOBS", "DaskEngine", "Document", "JobKind", "JobSpec", "LocalEngine", "ModelRef", "RunSummary",
    "default_task_chars", "form_tasks", "iter_documents", "make_engine", "parse_engine", "prepare_models",
    "register_job", "run_documents", "run_task", "scan_inputs",
]  # fmt: skip
