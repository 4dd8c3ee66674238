"""Where a checkpoint came from: the model card stored in its metadata and shown by `charrnn info`.

    charrnn_version   the release that wrote it
    created_at        when its training started (UTC, ISO 8601; kept through resumes)
    commands          the command line of every run that trained it, first to last
    description       free text (`charrnn train --description`; kept through resumes unless given again)
    corpora           every file trained (and validated) on: path, role, compression, size_bytes and
                      sha256 of the file as stored (compressed files: of the compressed bytes; standard
                      input: null, it cannot be read again)
    fine_tuned_from   the --init-from checkpoint, if any

Hashing the corpus files costs one more read of them (sha256 runs at about 1 GB/s, and the files were
just read, so they are usually in the page cache).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

BLOCK = 4 << 20
PROVENANCE_KEYS = ("charrnn_version", "created_at", "commands", "description", "corpora", "fine_tuned_from")


def version() -> str:
    """The installed charrnn's version (the source tree's when it was never installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("charrnn")
    except PackageNotFoundError:
        from . import __version__

        return __version__


def file_record(source: Any, role: str) -> dict[str, Any]:
    """path, role ("train" or "validation"), compression, size_bytes and sha256 of one corpus file (a
    `sources.Source`)."""
    if source.path is None or source.from_stdin:
        return {"path": source.name, "role": role, "compression": source.compression, "size_bytes": None,
                "sha256": None}  # fmt: skip
    digest = hashlib.sha256()
    with open(source.path, "rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return {"path": str(source.path), "role": role, "compression": source.compression,
            "size_bytes": source.path.stat().st_size, "sha256": digest.hexdigest()}  # fmt: skip


def run_metadata(corpus: list[str | Path], val_file: str | Path | None, command: str, description: str | None,
                 previous: dict[str, Any] | None = None,
                 init_from: str | Path | None = None) -> dict[str, Any]:  # fmt: skip
    """The provenance fields for a run's checkpoints. `previous`: the resumed checkpoint's metadata."""
    from .sources import corpus_sources

    previous = previous or {}
    files = [file_record(source, "train") for source in corpus_sources(list(corpus)).sources]
    if val_file is not None:
        files += [file_record(source, "validation") for source in corpus_sources([val_file]).sources]
    out = {
        "charrnn_version": version(),
        "created_at": previous.get("created_at") or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commands": [*previous.get("commands", []), command],
        "description": description if description is not None else previous.get("description"),
        "corpora": files,
    }
    fine_tuned_from = str(init_from) if init_from is not None else previous.get("fine_tuned_from")
    if fine_tuned_from is not None:
        out["fine_tuned_from"] = fine_tuned_from
    return out
