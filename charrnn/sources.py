"""Where the bytes of a text come from: files, compressed files, directories and standard input.

`corpus_sources(paths)` turns what the user named into the `Source`s to read, in a stable order, and a
report of what was left out and why:

  - a file is read as it is, or decompressed on the fly when its first bytes are those of gzip, bzip2 or
    xz data (whatever its name), so `corpus.txt.gz` trains like `corpus.txt` without being unpacked;
    other archives (zip, tar, 7z, rar, zstd) are refused with a hint, since their bytes are not text;
  - "-" is standard input (for training, which reads a corpus twice, first copied to a temporary file
    by `spooled_stdin`); any other path that is not a regular file (a FIFO, a device) is refused, since
    reading it could block forever or never end;
  - a directory is every file below it in sorted path order, except hidden entries (a name starting
    with "."), anything that is not a regular file, archives, unreadable files and binary files (a NUL
    byte in the first 8 KiB, after decompression); each of those is reported with its reason.

`Source.open()` gives the (decompressed) bytes; decode.py turns them into text, the same way for every
caller. Decompression streams: memory does not grow with the size of the file.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import os
import shutil
import stat
import sys
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import CharrnnError

STDIN = "-"
STDIN_NAME = "<stdin>"
SNIFF_BYTES = 8192
REPORT_NAMES = 10  # files named per line of a directory report; the rest are counted

COMPRESSIONS = {  # name -> a reader of the decompressed stream over an open binary file
    "gzip": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    "bzip2": lambda raw: bz2.BZ2File(raw, mode="rb"),
    "xz": lambda raw: lzma.LZMAFile(raw, mode="rb"),
}
_DECOMPRESSION_ERRORS = (OSError, EOFError, zlib.error, lzma.LZMAError)


@dataclass(frozen=True)
class Source:
    """One input of a text. `path` None is standard input as a stream; `name` is how messages call it;
    `compression` is "gzip", "bzip2", "xz" or None; `from_stdin` marks a copy of standard input."""

    path: Path | None
    name: str
    compression: str | None = None
    from_stdin: bool = False

    @property
    def key(self) -> str:
        """What identifies the source in a cache key: the resolved path, or "<stdin>" (the same text piped
        in twice finds the same cache entry)."""
        return STDIN_NAME if self.path is None or self.from_stdin else str(self.path.resolve())

    def size(self) -> int:
        """Bytes on disk (0 for standard input, whose size is not known in advance)."""
        if self.path is None:
            return 0
        try:
            return self.path.stat().st_size
        except OSError as error:
            raise CharrnnError(f"cannot read {self.name}: {error.strerror}") from None

    @contextlib.contextmanager
    def open(self) -> Iterator[Reader]:
        """The bytes, decompressed if need be (standard input is not closed afterwards)."""
        if self.path is None:
            yield Reader(sys.stdin.buffer, None, self)
            return
        try:
            raw = open(self.path, "rb")  # noqa: SIM115 — closed below
        except OSError as error:
            raise CharrnnError(f"cannot read {self.name}: {error.strerror}") from None
        with raw:
            if self.compression is None:
                yield Reader(raw, raw, self)
            else:
                with COMPRESSIONS[self.compression](raw) as stream:
                    yield Reader(stream, raw, self)


class Reader:
    """`read(n)` of a source's bytes, with read and decompression failures as one-line CharrnnErrors,
    and `consumed`: how many bytes of the file on disk have been read (for a progress bar)."""

    def __init__(self, stream: BinaryIO, raw: BinaryIO | None, source: Source) -> None:
        self.stream, self.raw, self.source, self.produced = stream, raw, source, 0

    def read(self, size: int) -> bytes:
        try:
            data = self.stream.read(size)
        except _DECOMPRESSION_ERRORS as error:
            if self.source.compression is None:
                raise CharrnnError(f"cannot read {self.source.name}: {error.strerror or error}") from None
            after = f" after {self.produced:,} decompressed bytes" if self.produced else ""
            raise CharrnnError(f"{self.source.name}: {self.source.compression} data is corrupt or truncated{after} "
                               f"({error})") from None  # fmt: skip
        self.produced += len(data)
        return data

    @property
    def consumed(self) -> int:
        return self.produced if self.raw is None else self.raw.tell()


@dataclass(frozen=True)
class Skipped:
    """A file of a directory that is not part of the corpus, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class CorpusSources:
    """What a corpus is made of: the sources in reading order, and what directories left out."""

    sources: tuple[Source, ...]
    skipped: tuple[Skipped, ...]
    directories: tuple[str, ...]  # the directories given, for the report

    def report(self) -> list[str]:
        """One-line notes on the directories: files used (decompressed ones marked), files skipped and why."""
        if not self.directories:
            return []
        where = ", ".join(self.directories)
        used = [s.name + (f" ({s.compression})" if s.compression else "") for s in self.sources if s.path]
        lines = [f"corpus {where}: using {len(used)} file(s): {_some(used)}"]
        if self.skipped:
            lines.append(f"corpus {where}: skipped {len(self.skipped)}: "
                         + _some([f"{s.name} ({s.reason})" for s in self.skipped]))  # fmt: skip
        return lines


def _some(names: list[str]) -> str:
    more = len(names) - REPORT_NAMES
    return ", ".join(names[:REPORT_NAMES]) + (f", ... and {more} more" if more > 0 else "")


def corpus_sources(paths: list[str | Path], stdin_copy: Path | None = None) -> CorpusSources:
    """Expand files, directories and "-" into the sources to read (see the module docstring). "-" is
    read from `stdin_copy` when given (see `spooled_stdin`), else as a stream."""
    if not paths:
        raise CharrnnError("no corpus given")
    sources: list[Source] = []
    skipped: list[Skipped] = []
    directories: list[str] = []
    for raw in paths:
        if str(raw) == STDIN:
            if stdin_copy is None:
                sources.append(Source(None, STDIN_NAME))
            else:
                sources.append(Source(stdin_copy, STDIN_NAME, _sniff(stdin_copy).compression, from_stdin=True))
            continue
        path = Path(raw)
        if not path.exists():
            raise CharrnnError(f"corpus {path} does not exist")
        if not path.is_dir() and not path.is_file():
            kind = _kind(path)
            hint = "; to read a pipe, give - and pipe it into standard input" if "FIFO" in kind else ""
            raise CharrnnError(f"corpus {path} is {kind}, not a regular file{hint}")
        if path.is_dir():
            found, left_out = _directory(path)
            if not found:
                reasons = f" ({len(left_out)} skipped: {_some([f'{s.name} ({s.reason})' for s in left_out])})"
                raise CharrnnError(f"directory {path} contains no text files" + (reasons if left_out else ""))
            sources.extend(found)
            skipped.extend(left_out)
            directories.append(str(path))
        else:
            sniff = _sniff(path)
            if sniff.refusal is not None:
                raise CharrnnError(
                    f"{path}: {sniff.refusal}; charrnn reads text files, plain or compressed with gzip, bzip2 or "
                    "xz (extract the archive and give its files or directory)"
                )
            sources.append(Source(path, str(path), sniff.compression))
    if sum(source.path is None for source in sources) > 1:
        raise CharrnnError("standard input (-) can be read only once")
    return CorpusSources(tuple(sources), tuple(skipped), tuple(directories))


def _directory(root: Path) -> tuple[list[Source], list[Skipped]]:
    found: list[Source] = []
    skipped: list[Skipped] = []
    hidden_seen: set[Path] = set()
    for path in sorted(root.rglob("*")):  # sorted by path components: the same order on every machine
        parts = path.relative_to(root).parts
        hidden = next((i for i, part in enumerate(parts) if part.startswith(".")), None)
        if hidden is not None:
            top = root.joinpath(*parts[: hidden + 1])
            if top not in hidden_seen:
                hidden_seen.add(top)
                skipped.append(Skipped(str(top) + ("/" if top.is_dir() else ""), "hidden"))
            continue
        if path.is_symlink() and path.is_dir():
            skipped.append(Skipped(str(path), "a link to a directory, not followed"))
        elif path.is_dir():
            continue
        elif not path.is_file():
            skipped.append(Skipped(str(path), f"{_kind(path)}, not a regular file"))
        else:
            try:
                sniff = _sniff(path)
            except CharrnnError as error:
                skipped.append(Skipped(str(path), str(error).removeprefix(f"{path}: ")))
                continue
            reason = sniff.refusal or ("binary: a NUL byte in its first 8 KiB" if sniff.binary else None)
            if reason is not None:
                skipped.append(Skipped(str(path), reason))
            else:
                found.append(Source(path, str(path), sniff.compression))
    return found, skipped


@dataclass(frozen=True)
class _Sniff:
    compression: str | None
    refusal: str | None  # why the file cannot be a corpus (an archive), or None
    binary: bool  # a NUL byte in the first SNIFF_BYTES (after decompression)


# Signatures at offset 0 (tar's is at offset 257). bzip2 needs more than "BZh": a text may start so.
_COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"))
_ARCHIVES = (
    (b"PK\x03\x04", "a zip archive"),
    (b"PK\x05\x06", "a zip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7z archive"),
    (b"Rar!\x1a\x07", "a rar archive"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed (not supported)"),
)


def _compression(head: bytes) -> str | None:
    for magic, name in _COMPRESSED:
        if head.startswith(magic):
            return name
    block_start = head[4:10] in (b"1AY&SY", b"\x17rE8P\x90")  # a first block, or the end of an empty stream
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[3:4] != b"0" and block_start:
        return "bzip2"
    return None


def _sniff(path: Path) -> _Sniff:
    """What the first bytes of a file say it is. CharrnnError if it cannot be read or decompressed."""
    source = Source(path, str(path))
    with source.open() as reader:
        head = reader.read(SNIFF_BYTES)
    compression = _compression(head)
    if compression is not None:
        with Source(path, str(path), compression).open() as reader:
            head = reader.read(SNIFF_BYTES)
    refusal = next((what for magic, what in _ARCHIVES if head.startswith(magic)), None)
    if head[257:262] == b"ustar":
        refusal = "a tar archive"
    if refusal and compression:
        refusal = f"{refusal}, {compression}-compressed"
    return _Sniff(compression, refusal, b"\0" in head)


def _kind(path: Path) -> str:
    """What a path that is neither a regular file nor a directory is, for messages."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return "a broken link"
    kinds = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))  # fmt: skip
    return next((name for test, name in kinds if test(mode)), "not a file")


@contextlib.contextmanager
def spooled_stdin(directory: Path) -> Iterator[Path]:
    """Standard input copied to a temporary file in `directory`, removed afterwards. Training reads a
    corpus twice (characters, then ids); a pipe can be read once, so it is copied as it is read."""
    if sys.stdin is None or sys.stdin.isatty():
        raise CharrnnError("standard input (-) is a terminal: pipe a corpus into it (charrnn train - < corpus.txt)")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=directory, prefix=".stdin-", suffix=".part", delete=False)  # noqa: SIM115
    except OSError as error:
        raise CharrnnError(f"cannot store standard input in {directory}: {error.strerror or error}") from None
    try:
        with handle:
            shutil.copyfileobj(sys.stdin.buffer, handle, 1 << 20)
        yield Path(handle.name)
    except OSError as error:
        raise CharrnnError(f"cannot store standard input in {directory}: {error.strerror or error}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(handle.name)
