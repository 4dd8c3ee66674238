"""Where a checkpoint came from: the model card stored in its metadata and shown by `charrnn info`.

    charrnn_version   the release that wrote it
    created_at        when its training started (UTC, ISO 8601; kept through resumes)
    commands          the command line of every run that trained it, first to last
    description       free text (`charrnn train --description`; kept through resumes unless given again)
    corpora           every file trained (and validated) on: path, role, size_bytes, sha256
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


def file_record(path: Path, role: str) -> dict[str, Any]:
    """path, role ("train" or "validation"), size_bytes and sha256 of one corpus file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return {"path": str(path), "role": role, "size_bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def run_metadata(corpus: list[str | Path], val_file: str | Path | None, command: str, description: str | None,
                 previous: dict[str, Any] | None = None,
                 init_from: str | Path | None = None) -> dict[str, Any]:  # fmt: skip
    """The provenance fields for a run's checkpoints. `previous`: the resumed checkpoint's metadata."""
    from .idcache import corpus_files

    previous = previous or {}
    files = [file_record(path, "train") for path in corpus_files(list(corpus))]
    if val_file is not None:
        files.append(file_record(Path(val_file), "validation"))
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
