"""Models on the workers: loaded once per worker process, each checked against the content hash the driver saw.

The driver loads every checkpoint itself first (so a bad file fails at once, in one line) and records the
sha256 of its bytes in a `ModelRef`. Tasks carry only refs — a name, a path, a hash — never weights. A
worker gets the weights once, before its first task (worker.py), in one of two ways:

    "path"   it reads the checkpoint from the same path (a local cluster, or a file system every node
             mounts), and refuses it when the bytes' sha256 differs from the driver's: a checkpoint
             rewritten while a run is going must not give some documents another model's scores;
    "model"  the driver ships the loaded Model itself (config + vocabulary + weights, cheap to pickle)
             in the worker plugin, for workers that cannot read the driver's files.

`models_for` is the one lookup a task makes: the worker's cache, else (a worker that joined after the
plugin ran, or the single-process engine) a load from the path, hash checked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import CharrnnError
from ..model import Model, load_model

HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class ModelRef:
    """A model as tasks name it. `name` labels it in results (attribution's per-model scores)."""

    name: str
    path: str
    sha256: str


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while block := handle.read(HASH_BLOCK):
                digest.update(block)
    except OSError as error:
        raise CharrnnError(f"cannot read model file {path}: {error.strerror or error}") from None
    return digest.hexdigest()


def prepare_models(paths: Sequence[str | Path], names: Sequence[str] | None = None) -> tuple[list[ModelRef], dict]:
    """On the driver: load and validate each checkpoint, hash it. Returns (refs, {sha256: Model})."""
    names = list(names) if names is not None else [Path(p).stem for p in paths]
    if len(names) != len(paths):
        raise CharrnnError(f"{len(paths)} models but {len(names)} names")
    refs, models = [], {}
    for name, path in zip(names, paths, strict=True):
        digest = file_sha256(path)
        models[digest] = load_model(path)
        refs.append(ModelRef(name, str(Path(path).resolve()), digest))
    return refs, models


_CACHE: dict[str, Model] = {}  # sha256 -> model, in this process (a worker, or the driver for the local engine)
_OWNERS: dict[str, set[str]] = {}  # sha256 -> the jobs (worker plugins) that installed it


def install(refs: Iterable[ModelRef], shipped: dict[str, Model] | None = None, owner: str = "") -> None:
    """Make these models resident in this process for job `owner`: shipped ones as given, the rest loaded from
    their paths with the hash checked. Other jobs' models stay (two runs may share a cluster) until `release`."""
    for ref in refs:
        if ref.sha256 not in _CACHE:
            _CACHE[ref.sha256] = shipped[ref.sha256] if shipped and ref.sha256 in shipped else _load_checked(ref)
        _OWNERS.setdefault(ref.sha256, set()).add(owner)


def release(owner: str) -> None:
    """Job `owner` is over: drop the models no other job installed."""
    for digest in [d for d, owners in _OWNERS.items() if owner in owners]:
        _OWNERS[digest].discard(owner)
        if not _OWNERS[digest]:
            del _OWNERS[digest]
            _CACHE.pop(digest, None)


def models_for(refs: Sequence[ModelRef]) -> dict[str, Model]:
    """name -> Model for a task, from this process's cache (loading, hash checked, on a miss)."""
    out = {}
    for ref in refs:
        if ref.sha256 not in _CACHE:
            _CACHE[ref.sha256] = _load_checked(ref)
        out[ref.name] = _CACHE[ref.sha256]
    return out


def _load_checked(ref: ModelRef) -> Model:
    if not Path(ref.path).is_file():
        raise CharrnnError(f"model {ref.name}: {ref.path} cannot be read on this machine (host {_host()}); "
                           "ship the model instead of its path")  # fmt: skip
    digest = file_sha256(ref.path)
    if digest != ref.sha256:
        raise CharrnnError(f"model {ref.name}: {ref.path} on host {_host()} has sha256 {digest[:12]}..., not "
                           f"{ref.sha256[:12]}... as when the run started (changed or a different file)")  # fmt: skip
    return load_model(ref.path)


def _host() -> str:
    import socket

    return socket.gethostname()
