"""The worker side of a Dask run: one process per core, one thread, everything ready before the first task.

What a worker needs, and who provides it:

    BLAS threads = 1        Dask's nanny sets OMP/OPENBLAS/MKL_NUM_THREADS=1 before it spawns a worker
    numba threads = 1       the nanny does NOT set NUMBA_NUM_THREADS; a LocalCluster gets it through the
                            nanny's `env` (WORKER_ENV, applied before the worker imports anything), a remote
                            worker from `pin_environment` below, which runs before charrnn first imports
                            numba (it is imported lazily); every task also limits itself to one thread
                            (jobs.run_task), so a worker that imported numba earlier still runs one
    numba cache             on a disk local to the node: a LocalCluster shares the driver's (same node);
                            a remote worker whose NUMBA_CACHE_DIR is unset gets <tmp>/charrnn-numba-<user>,
                            so nodes never share (or fight over) one cache on a network file system
    models                  loaded once, before the first task, hash checked or shipped (models.py)
    compiled kernels        compiled (or loaded from the cache) by scoring one tiny document per model
                            before the first task, in the plugin's setup, off the event loop so the
                            worker keeps answering heartbeats while it compiles

The plugin is registered with the scheduler, which also runs it on a worker that joins later (the one a
nanny restarts after a crash included).
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
import tempfile
import time

from distributed import WorkerPlugin

from ..errors import CharrnnError
from .documents import Document
from .jobs import JobSpec, run_task
from .models import install, models_for, release

WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

_REPORT: dict = {}  # what the last setup in this process found (plugin_report)


def node_local_cache_dir() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return os.path.join(tempfile.gettempdir(), f"charrnn-numba-{user}")


def pin_environment(numba_cache_dir: str | None) -> dict:
    """Thread and cache settings for this worker process, applied only while numba is not yet imported
    (numba reads them once, at import)."""
    notes = {"numba_imported_before_setup": "numba" in sys.modules}
    if "numba" not in sys.modules:
        os.environ.update(WORKER_ENV)
        if numba_cache_dir and "NUMBA_CACHE_DIR" not in os.environ:
            local = numba_cache_dir == "node-local"
            os.environ["NUMBA_CACHE_DIR"] = node_local_cache_dir() if local else numba_cache_dir
    notes["numba_cache_dir"] = os.environ.get("NUMBA_CACHE_DIR", "(numba default: beside charrnn's sources)")
    return notes


def warm_up(spec: JobSpec) -> float:
    """Compile (or load from the cache) the job's kernels: one tiny document through the whole task path.
    Seconds taken. A kind whose documents need a special form (its prepare refuses plain text) is skipped."""
    models = models_for(spec.models)
    shared = set.intersection(*(set(m.vocab.chars) for m in models.values()))
    letters = sorted(c for c in shared if c.isalpha()) or sorted(shared)
    start = time.perf_counter()
    run_task(spec, [Document("warm-up", body=(letters[0] * 8) if letters else "")])
    return time.perf_counter() - start


class CharrnnWorkerPlugin(WorkerPlugin):
    """Prepares a worker for one job: environment, models, compiled kernels (module docstring)."""

    idempotent = False

    def __init__(self, name: str, spec: JobSpec, shipped: dict | None, numba_cache_dir: str | None):
        self.name = name  # one per run: two runs sharing a cluster keep their own models
        self.spec = JobSpec(spec.kind, spec.models, spec.options, 1)
        self.shipped = shipped
        self.numba_cache_dir = numba_cache_dir

    async def setup(self, worker) -> None:  # noqa: ARG002
        await asyncio.get_running_loop().run_in_executor(None, self.prepare)

    def teardown(self, worker) -> None:  # noqa: ARG002
        release(self.name)

    def prepare(self) -> None:
        report = pin_environment(self.numba_cache_dir)
        from ..kernels import blas  # numba's first import in this process, after the pinning

        start = time.perf_counter()
        try:
            install(self.spec.models, self.shipped, owner=self.name)
        except CharrnnError as error:
            raise CharrnnError(f"worker {os.getpid()}: {error}") from None
        report["load_seconds"] = time.perf_counter() - start
        report["warm_up_seconds"] = warm_up(self.spec)
        report["numba_threads"] = blas.available_threads()
        report["pid"] = os.getpid()
        _REPORT.clear()
        _REPORT.update(report)


def plugin_report() -> dict:
    """Run on each worker by `DaskEngine.worker_reports`."""
    return dict(_REPORT)
