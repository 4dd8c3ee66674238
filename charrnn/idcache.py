"""Streaming corpus encoding into a memory-mapped id file, cached by content hash.

A corpus may be far bigger than memory, so it is never held as one string. Two passes over the files,
each reading blocks of `block_size` bytes (4 MiB by default):

  1. `scan_corpus`: hash the raw bytes (sha256, together with the encoding and errors options and the
     file list) and collect the set of characters, decoding incrementally;
  2. `encode_corpus`: decode again and write each character's id, in the smallest dtype that holds the
     vocabulary (uint8 up to 256 characters), to `<cache_dir>/<key>.ids`, with `<key>.json` beside it.

Decoding is exactly `read_text`'s, block by block: an incremental decoder keeps multi-byte characters
that straddle a block boundary whole and reports an invalid byte at its true offset in the file, and a
"\\r" at the end of a block is held back until the next block shows whether a "\\n" follows, so "\\r\\n"
becomes "\\n" across boundaries too. Each file is normalised on its own, as `read_text` does.

The cache key covers the content hash, the vocabulary and (only when the text has characters outside
the vocabulary) the unknown-character policy, so an entry is reused exactly when the text and its
encoding are unchanged — a file edited in place with the same size and mtime gets a new key, because
the key is computed from the bytes, never from file metadata. Entries are written to a temporary file
and renamed, so an interrupted encoding never leaves a half-written entry that looks complete.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .atomic import atomic_writer, write_bytes_atomic
from .errors import CharrnnError
from .vocab import UnknownReport, Vocab, check_unk_policy

DEFAULT_BLOCK_SIZE = 4 << 20
CACHE_FORMAT = "charrnn-ids"
CACHE_VERSION = 1
MAX_CODEPOINT = 0x10FFFF
BINARY_SNIFF_BYTES = 8192


def corpus_files(paths: list[str | Path]) -> list[Path]:
    """Expand files and directories into the list of files to read, in a stable order."""
    if not paths:
        raise CharrnnError("no corpus given")
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise CharrnnError(f"corpus {path} does not exist")
        if path.is_dir():
            found = [
                f
                for f in sorted(path.rglob("*"))
                if f.is_file()
                and not any(part.startswith(".") for part in f.relative_to(path).parts)
                and not _looks_binary(f)
            ]
            if not found:
                raise CharrnnError(f"directory {path} contains no text files")
            files.extend(found)
        else:
            files.append(path)
    return files


def _looks_binary(path: Path) -> bool:
    with open(path, "rb") as handle:
        return b"\0" in handle.read(BINARY_SNIFF_BYTES)


def default_cache_dir(environ: dict[str, str]) -> Path:
    """`$XDG_CACHE_HOME/charrnn/ids`, else `~/.cache/charrnn/ids` (the CLI passes `os.environ`)."""
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "charrnn" / "ids"


@dataclass(frozen=True)
class CorpusScan:
    """What the first pass learns: which files, their content key, characters and length."""

    files: tuple[Path, ...]
    encoding: str
    errors: str
    content_key: str  # sha256 hex of options, file list and raw bytes
    chars: str  # sorted distinct characters (after newline normalisation)
    num_chars: int
    num_bytes: int


def _decoded_blocks(files: tuple[Path, ...], encoding: str, errors: str, block_size: int,
                    on_bytes=lambda raw: None) -> Iterator[str]:  # fmt: skip
    """Decoded, newline-normalised text of `files`, block by block (see the module docstring)."""
    for path in files:
        try:
            decoder = codecs.getincrementaldecoder(encoding)(errors=errors)
        except LookupError:
            raise CharrnnError(f"unknown encoding {encoding!r}") from None
        offset, held_cr = 0, ""
        try:
            handle = open(path, "rb")  # noqa: SIM115 — closed in the finally below
        except OSError as error:
            raise CharrnnError(f"cannot read {path}: {error.strerror}") from None
        try:
            while True:
                raw = handle.read(block_size)
                on_bytes(raw)
                pending = len(decoder.getstate()[0])
                try:
                    text = decoder.decode(raw, final=not raw)
                except UnicodeDecodeError as error:
                    bad = error.object[error.start]
                    raise CharrnnError(
                        f"{path}: invalid {encoding} at byte offset {offset - pending + error.start} "
                        f"(byte 0x{bad:02x}); use --errors replace to accept it or --encoding to change"
                    ) from None
                offset += len(raw)
                text = held_cr + text
                held_cr = ""
                if raw and text.endswith("\r"):  # a "\n" may start the next block
                    text, held_cr = text[:-1], "\r"
                if "\r" in text:
                    text = text.replace("\r\n", "\n")
                if text:
                    yield text
                if not raw:
                    break
        except OSError as error:
            raise CharrnnError(f"cannot read {path}: {error.strerror}") from None
        finally:
            handle.close()


def _codes(text: str) -> np.ndarray:
    """(n,) uint32 code points of `text` (no copy beyond the UTF-32 encoding)."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def scan_corpus(
    paths: list[str | Path],
    encoding: str = "utf-8",
    errors: str = "strict",
    block_size: int = DEFAULT_BLOCK_SIZE,
    progress: bool = False,
) -> CorpusScan:
    """Pass 1: content key, character set and length of the corpus (files and directories)."""
    if errors not in ("strict", "replace"):
        raise CharrnnError(f"--errors must be strict or replace, got {errors!r}")
    files = tuple(corpus_files(paths))
    digest = hashlib.sha256(json.dumps([CACHE_VERSION, encoding, errors, [str(f.resolve()) for f in files]]).encode())
    seen = _CharSet()
    total_bytes = sum(_size(f) for f in files)
    num_chars = 0
    with tqdm(total=total_bytes, unit="B", unit_scale=True, desc="reading corpus", disable=not progress,
              leave=False) as bar:  # fmt: skip

        def on_bytes(raw: bytes) -> None:
            digest.update(raw)
            bar.update(len(raw))

        for path in files:  # the file boundaries are part of the hash: moving bytes between files changes it
            digest.update(f"\0{path.name}\0{_size(path)}\0".encode())
            for text in _decoded_blocks((path,), encoding, errors, block_size, on_bytes):
                seen.add(text)
                num_chars += len(text)
    if num_chars == 0:
        raise CharrnnError(f"corpus {', '.join(str(p) for p in paths)} is empty")
    chars = seen.chars()
    return CorpusScan(files, encoding, errors, digest.hexdigest(), chars, num_chars, total_bytes)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as error:
        raise CharrnnError(f"cannot read {path}: {error.strerror}") from None


def entry_key(scan: CorpusScan, vocab: Vocab, unk: str) -> str:
    """Cache key of the ids of `scan` under `vocab`; the policy matters only if some character is unknown."""
    covered = set(scan.chars) <= set(vocab.chars)
    material = json.dumps([scan.content_key, vocab.chars, None if covered else unk])
    return hashlib.sha256(material.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class EncodedCorpus:
    """The ids of a corpus, memory-mapped read-only, and how they were obtained."""

    ids: np.ndarray  # (N,) np.memmap in vocab.dtype
    path: Path
    key: str
    reused: bool  # True when the cache entry already existed
    unknown: UnknownReport  # characters skipped or mapped by the unknown-character policy


def encode_corpus(
    scan: CorpusScan,
    vocab: Vocab,
    cache_dir: str | Path,
    unk: str = "error",
    block_size: int = DEFAULT_BLOCK_SIZE,
    progress: bool = False,
) -> EncodedCorpus:
    """Pass 2 (skipped when cached): the ids of the scanned corpus under `vocab`, memory-mapped.

    Characters outside `vocab` follow `unk` ("error": CharrnnError naming each such character and its
    first position in the text; "skip"; or a single character to map them to).
    """
    cache_dir = Path(cache_dir)
    check_unk_policy(unk, vocab)
    key = entry_key(scan, vocab, unk)
    ids_path, meta_path = cache_dir / f"{key}.ids", cache_dir / f"{key}.json"
    cached = _open_entry(ids_path, meta_path, vocab)
    if cached is not None:
        ids, report = cached
        return EncodedCorpus(ids, ids_path, key, True, report)
    try:
        with atomic_writer(ids_path, make_parents=True) as handle:
            count, report = _write_ids(scan, vocab, unk, block_size, progress, handle)
    except OSError as error:  # from writing the ids (disk full); atomic_writer translates its own failures
        raise CharrnnError(f"cannot write the id cache in {cache_dir}: {error.strerror or error}") from None
    meta = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "dtype": vocab.dtype.name, "length": count,
            "vocab": vocab.chars, "unknown": {c: list(v) for c, v in report.counts.items()},
            "unk": unk, "files": [str(f) for f in scan.files], "content_key": scan.content_key}  # fmt: skip
    write_bytes_atomic(meta_path, json.dumps(meta).encode("utf-8"))  # after the ids: an entry is whole once it has meta
    return EncodedCorpus(_memmap(ids_path, vocab.dtype, count), ids_path, key, False, report)


class _CharSet:
    """The distinct characters of a text seen block by block. Most corpora are Latin-1 (often ASCII),
    where a block is one byte per character and `bytes.translate` deleting the bytes already seen
    leaves only the new ones (usually none): a few ms per MB instead of a scatter per character."""

    def __init__(self) -> None:
        self.known_bytes = b""
        self.wide = np.zeros(MAX_CODEPOINT + 1, dtype=bool)  # characters beyond Latin-1 (and the rest of a block)

    def add(self, text: str) -> None:
        try:
            data = text.encode("latin-1")
        except UnicodeEncodeError:
            self.wide[_codes(text)] = True
            return
        new = data.translate(None, self.known_bytes)
        if new:
            self.known_bytes += bytes(sorted(set(new)))

    def chars(self) -> str:
        codes = set(self.known_bytes) | set(np.flatnonzero(self.wide).tolist())
        return "".join(chr(c) for c in sorted(codes))


def _latin1_ids(text: str, byte_table: bytes | None) -> bytes | None:
    """Fast path: the uint8 ids of a Latin-1 block with no unknown character (255 marks unknown bytes in
    `byte_table`, which exists only when ids fit in 0..254), else None."""
    if byte_table is None:
        return None
    try:
        ids = text.encode("latin-1").translate(byte_table)
    except UnicodeEncodeError:
        return None
    return None if 255 in ids else ids


def _write_ids(scan, vocab, unk, block_size, progress, handle) -> tuple[int, UnknownReport]:
    table = np.full(ord(vocab.chars[-1]) + 1, -1, dtype=np.int32)
    table[[ord(c) for c in vocab.chars]] = np.arange(len(vocab), dtype=np.int32)
    byte_table = None
    if len(vocab) <= 255:
        byte_table = bytes(vocab.index.get(chr(b), 255) for b in range(256))
    position, written = 0, 0
    unknown: dict[str, tuple[int, int]] = {}
    with tqdm(total=scan.num_chars, unit="char", unit_scale=True, desc="encoding corpus", disable=not progress,
              leave=False) as bar:  # fmt: skip
        for text in _decoded_blocks(scan.files, scan.encoding, scan.errors, block_size):
            fast = _latin1_ids(text, byte_table)
            if fast is not None:
                handle.write(fast)
                written, position = written + len(fast), position + len(text)
                bar.update(len(text))
                continue
            codes = _codes(text)
            ids = table[np.minimum(codes, len(table) - 1)]
            ids[codes >= len(table)] = -1
            if (ids < 0).any():  # rare: let the vocabulary apply the policy and report what it did
                block_ids, report = vocab.encode_with_report(text, unk="skip" if unk == "error" else unk)
                for char, (count, first) in report.counts.items():
                    total, earlier = unknown.get(char, (0, position + first))
                    unknown[char] = (total + count, earlier)
            else:
                block_ids = ids.astype(vocab.dtype)
            if unk != "error" or not unknown:
                handle.write(block_ids.tobytes())
                written += len(block_ids)
            position += len(text)
            bar.update(len(text))
    report = UnknownReport(unknown, unk)
    if unk == "error" and unknown:
        names = ", ".join(str(f) for f in scan.files[:3]) + (", ..." if len(scan.files) > 3 else "")
        raise CharrnnError(
            f"{names}: {len(unknown)} character(s) not in the model's vocabulary: {report.summary()}"
            " (use --unk skip, --unk map:<char> or --extend-vocab)"
        )
    return written, report


def _memmap(path: Path, dtype: np.dtype, length: int) -> np.ndarray:
    if length == 0:  # np.memmap cannot map an empty file
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(length,))


def _open_entry(ids_path: Path, meta_path: Path, vocab: Vocab) -> tuple[np.ndarray, UnknownReport] | None:
    """A complete, consistent cache entry, or None (a damaged entry is simply rebuilt)."""
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        length, dtype = int(meta["length"]), np.dtype(meta["dtype"])
        consistent = (
            meta.get("format") == CACHE_FORMAT and meta.get("version") == CACHE_VERSION and meta["vocab"] == vocab.chars
            and dtype == vocab.dtype and ids_path.stat().st_size == length * dtype.itemsize
        )  # fmt: skip
        unknown = {char: (int(v[0]), int(v[1])) for char, v in meta.get("unknown", {}).items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not consistent:
        return None
    return _memmap(ids_path, dtype, length), UnknownReport(unknown, meta.get("unk", "error"))


def file_ids_hash(path: Path, dtype: np.dtype, count: int) -> str:
    """sha256 (16 hex digits) of the first `count` ids of an id file, read with plain reads so the pages
    are not mapped into this process; equals `train.ids_hash` of the same ids."""
    digest, remaining = hashlib.sha256(), count * np.dtype(dtype).itemsize
    with open(path, "rb") if count else contextlib.nullcontext() as handle:
        while remaining > 0:
            block = handle.read(min(remaining, DEFAULT_BLOCK_SIZE))
            if not block:
                raise CharrnnError(f"id cache file {path} is shorter than expected; delete it and retry")
            digest.update(block)
            remaining -= len(block)
    return digest.hexdigest()[:16]
