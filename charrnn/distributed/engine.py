"""Engines: where tasks run. `LocalEngine` runs them one after another in this process; `DaskEngine` on a Dask
cluster — a `LocalCluster` it starts (one worker process per core, one thread each, bound to 127.0.0.1, no
dashboard) or an existing scheduler's address.

Both offer the same two calls:

    start_job(spec, shipped) -> spec   make the job's models resident where tasks run (the Dask engine
                                       registers the worker plugin of worker.py: env pinned, models loaded
                                       and hash checked, kernels compiled, once per worker)
    map(function, payloads)            -> (sequence number, result) pairs as tasks complete

`map` pulls payloads lazily and keeps at most `max_in_flight` tasks submitted (2 per worker thread: one
running, one queued so a worker never waits for the driver), and never runs further than `window` tasks
ahead of the oldest unfinished one, so the caller's reordering buffer (results are written in input
order) stays bounded even behind a slow task. A worker that dies mid-task (kill -9) loses nothing: the
scheduler reruns its tasks, and results it held but had not handed over, on the others.

Dask is imported only here and in worker.py, and only when a Dask engine is started: without the
`charrnn[dask]` extra, `--engine dask` fails in one line.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..errors import CharrnnError
from .jobs import JobSpec
from .models import install, release

DASK_MISSING = "--engine dask needs Dask: pip install 'charrnn[dask]'"
CONNECT_TIMEOUT = "20s"


def local_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_engine(value: str | None) -> tuple[str, str | None]:
    """'local' -> ("local", None); 'dask' -> ("dask", None); 'dask=ADDRESS' -> ("dask", ADDRESS)."""
    text = (value or "local").strip()
    name, _, address = text.partition("=")
    if name not in ("local", "dask") or (name == "local" and address) or (name == "dask" and _ and not address):
        raise CharrnnError(f"--engine must be local, dask or dask=SCHEDULER_ADDRESS, got {value!r}")
    return name, address or None


def make_engine(value: str | None, workers: int | None = None, threads: int = 0) -> LocalEngine | DaskEngine:
    """The engine an `--engine` value names; `workers` only for a local Dask cluster, `threads` only for local."""
    name, address = parse_engine(value)
    if workers is not None and (name != "dask" or address):
        raise CharrnnError("--workers sizes the local Dask cluster: use it with --engine dask (no address)")
    return LocalEngine(threads) if name == "local" else DaskEngine(address, workers)


def ordered_window(submit: Callable[[int, Any], Any], wait: Callable[[], tuple[Any, Any]], payloads: Iterable,
                   max_in_flight: int, window: int) -> Iterator[tuple[int, Any]]:  # fmt: skip
    """Bounded submission shared by the engines: `submit(seq, payload)` returns a handle, `wait()` the next
    (handle, result) to complete."""
    source = enumerate(payloads)
    seq_of: dict[Any, int] = {}
    finished: set[int] = set()
    oldest, next_seq, exhausted = 0, 0, False
    while True:
        while not exhausted and len(seq_of) < max_in_flight and next_seq < oldest + window:
            item = next(source, None)
            if item is None:
                exhausted = True
                break
            seq_of[submit(*item)] = item[0]
            next_seq += 1
        if not seq_of:
            return
        handle, result = wait()
        seq = seq_of.pop(handle)
        finished.add(seq)
        while oldest in finished:
            finished.remove(oldest)
            oldest += 1
        yield seq, result


class LocalEngine:
    """Tasks in this process, in order, each batch on `threads` threads (0: all cores)."""

    name = "local"

    def __init__(self, threads: int = 0):
        self.threads = threads
        self.workers = 1

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc) -> None:
        release(f"local-{id(self)}")

    def describe(self) -> str:
        return "one process"

    def start_job(self, spec: JobSpec, shipped: dict | None = None) -> JobSpec:
        install(spec.models, shipped, owner=f"local-{id(self)}")
        return JobSpec(spec.kind, spec.models, spec.options, self.threads)

    def map(self, function: Callable, payloads: Iterable) -> Iterator[tuple[int, Any]]:
        for seq, payload in enumerate(payloads):
            yield seq, function(payload)


class DaskEngine:
    """A Dask cluster: `address` None starts a LocalCluster of `workers` processes (default: one per core)."""

    name = "dask"

    def __init__(self, address: str | None = None, workers: int | None = None, ship: str = "auto",
                 numba_cache_dir: str | None = None):  # fmt: skip
        if workers is not None and workers < 1:
            raise CharrnnError(f"--workers must be >= 1, got {workers}")
        if ship not in ("auto", "path", "model"):
            raise CharrnnError(f"ship must be auto, path or model, got {ship!r}")
        self.address, self.requested, self.ship = address, workers, ship
        # a LocalCluster shares this node's numba cache (next to charrnn's sources, or NUMBA_CACHE_DIR if set);
        # remote workers get one on their own local disk (worker.py)
        self.numba_cache_dir = numba_cache_dir if numba_cache_dir or not address else "node-local"
        self.cluster = self.client = None
        self.workers = 0
        self.plugins: list[str] = []

    def __enter__(self) -> DaskEngine:
        try:
            from distributed import Client, LocalCluster
        except ImportError as error:  # not installed; or installed and broken, which the message must not hide
            missing = isinstance(error, ModuleNotFoundError) and error.name in (None, "distributed", "dask")
            raise CharrnnError(DASK_MISSING if missing else f"cannot import Dask distributed: {error}") from None
        from .worker import WORKER_ENV

        if self.address is None:
            self.cluster = LocalCluster(
                n_workers=self.requested or local_cores(), threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None, worker_dashboard_address=None, silence_logs=logging.ERROR, env=WORKER_ENV,
            )  # fmt: skip
        try:
            self.client = Client(self.cluster or self.address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as error:
            self.close()
            raise CharrnnError(f"cannot reach the Dask scheduler at {self.address}: {error}") from None
        self.workers = max(1, sum(self.client.nthreads().values()))
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.client is not None:
            for name in self.plugins:  # the workers drop this run's models; a shared cluster keeps serving others
                with contextlib.suppress(Exception):
                    self.client.unregister_worker_plugin(name)
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        self.client = self.cluster = None

    def describe(self) -> str:
        where = "a local cluster" if self.cluster is not None else f"the scheduler at {self.address}"
        return f"dask, {where}: {self.workers} worker thread(s)"

    def start_job(self, spec: JobSpec, shipped: dict | None = None) -> JobSpec:
        """Register the worker plugin: every worker (and any that joins later) loads the models and compiles
        the kernels before its first task. Raises the first worker's failure (a hash mismatch) as is."""
        from .worker import CharrnnWorkerPlugin

        ship = self.ship if self.ship != "auto" else ("path" if self.cluster is not None else "model")
        if ship == "model" and not shipped:
            raise CharrnnError("shipping models to workers needs the loaded models")
        name = f"charrnn-{spec.kind}-{os.urandom(6).hex()}"
        self.plugins.append(name)
        plugin = CharrnnWorkerPlugin(name, spec, shipped if ship == "model" else None, self.numba_cache_dir)
        self.client.register_plugin(plugin, name=name)
        return JobSpec(spec.kind, spec.models, spec.options, 1)

    def worker_reports(self) -> dict:
        """What the plugin found on each worker: pid, numba threads, cache directory, warm-up seconds."""
        from .worker import plugin_report

        return self.client.run(plugin_report)

    def map(self, function: Callable, payloads: Iterable) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        completed = as_completed()

        def submit(seq: int, payload: Any) -> str:
            future = self.client.submit(function, payload, pure=False, key=f"charrnn-task-{seq}-{os.urandom(4).hex()}")
            completed.add(future)
            return future.key

        def wait() -> tuple[str, Any]:
            future = next(completed)
            result = future.result()  # a task's own exception is raised here, as is
            future.release()
            return future.key, result

        return ordered_window(submit, wait, payloads, max_in_flight=2 * self.workers, window=8 * self.workers)
