"""Where the bytes of a text come from: files, directories and standard input.

`corpus_sources(paths)` turns what the user named into the list of `Source`s to read, in a stable order:
a file is itself, "-" is standard input, and a directory is every file below it in sorted path order,
skipping hidden entries (a name starting with ".") and binary files (a NUL byte in the first 8 KiB).
`Source.open()` gives the bytes; decode.py turns them into text, the same way for every caller.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import CharrnnError

STDIN = "-"
STDIN_NAME = "<stdin>"
BINARY_SNIFF_BYTES = 8192


@dataclass(frozen=True)
class Source:
    """One input of a text. `path` None is standard input; `name` is how messages call it."""

    path: Path | None
    name: str

    @property
    def key(self) -> str:
        """What identifies the source in a cache key: the resolved path, or "<stdin>"."""
        return STDIN_NAME if self.path is None else str(self.path.resolve())

    def size(self) -> int:
        """Bytes on disk (0 for standard input, whose size is not known in advance)."""
        if self.path is None:
            return 0
        try:
            return self.path.stat().st_size
        except OSError as error:
            raise CharrnnError(f"cannot read {self.name}: {error.strerror}") from None

    @contextlib.contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """The raw bytes, as a binary stream (standard input is not closed afterwards)."""
        if self.path is None:
            yield sys.stdin.buffer
            return
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 — closed below
        except OSError as error:
            raise CharrnnError(f"cannot read {self.name}: {error.strerror}") from None
        with handle:
            yield handle


def corpus_sources(paths: list[str | Path]) -> list[Source]:
    """Expand files, directories and "-" into the sources to read, in a stable order."""
    if not paths:
        raise CharrnnError("no corpus given")
    sources: list[Source] = []
    for raw in paths:
        if str(raw) == STDIN:
            sources.append(Source(None, STDIN_NAME))
            continue
        path = Path(raw)
        if not path.exists():
            raise CharrnnError(f"corpus {path} does not exist")
        if path.is_dir():
            found = [
                Source(f, str(f))
                for f in sorted(path.rglob("*"))
                if f.is_file()
                and not any(part.startswith(".") for part in f.relative_to(path).parts)
                and not _looks_binary(f)
            ]
            if not found:
                raise CharrnnError(f"directory {path} contains no text files")
            sources.extend(found)
        else:
            sources.append(Source(path, str(path)))
    if sum(source.path is None for source in sources) > 1:
        raise CharrnnError("standard input (-) can be read only once")
    return sources


def _looks_binary(path: Path) -> bool:
    with open(path, "rb") as handle:
        return b"\0" in handle.read(BINARY_SNIFF_BYTES)
