"""Streaming corpus encoding into a memory-mapped id file, cached by content hash.

A corpus may be far bigger than memory, so it is never held as one string. Two passes over the sources
(sources.py), each decoded block by block by the one decoder (decode.py), `block_size` bytes at a time
(4 MiB by default):

  1. `scan_corpus`: hash the raw bytes (sha256, together with the encoding and errors options and the
     file list) and collect the set of characters;
  2. `encode_corpus`: decode again and write each character's id, in the smallest dtype that holds the
     vocabulary (uint8 up to 256 characters), to `<cache_dir>/<key>.ids`, with `<key>.json` beside it.

The cache key covers the content hash, the vocabulary and (only when the text has characters outside
the vocabulary) the unknown-character policy, so an entry is reused exactly when the text and its
encoding are unchanged — a file edited in place with the same size and mtime gets a new key, because
the key is computed from the bytes, never from file metadata. Entries are written to a temporary file
and renamed, so an interrupted encoding never leaves a half-written entry that looks complete. The
default cache directory is `cachedir.ids_cache_dir()`.

Verification: an entry records the fingerprint of its ids (fingerprint.py, computed as they are written).
`verified_hashes` re-reads the file with plain reads before the ids are used, checks that fingerprint
and that every id is below the vocabulary size, and in the same pass fingerprints the training split
(which --resume compares). A mismatch raises DamagedEntry; data.prepare_data then rebuilds the entry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .atomic import atomic_writer, write_bytes_atomic
from .decode import DEFAULT_BLOCK_SIZE, check_decoding, decoded_blocks
from .errors import CharrnnError
from .fingerprint import IdsDigest, file_hashes
from .sources import STDIN, Source, corpus_sources
from .vocab import UnknownReport, Vocab, check_unk_policy

CACHE_FORMAT = "charrnn-ids"
CACHE_VERSION = 2  # 2: the key hashes decompressed bytes; entries record and check their ids' fingerprint
MAX_CODEPOINT = 0x10FFFF


@dataclass(frozen=True)
class CorpusScan:
    """What the first pass learns: which sources, their content key, characters and length."""

    files: tuple[Source, ...]
    encoding: str
    errors: str
    content_key: str  # sha256 hex of options, file list and raw bytes
    chars: str  # sorted distinct characters (after newline normalisation)
    num_chars: int
    num_bytes: int  # of the text as decoded (after decompression)
    notes: tuple[str, ...] = ()  # which files of the directories were used and skipped (sources.py)


def _codes(text: str) -> np.ndarray:
    """(n,) uint32 code points of `text` (no copy beyond the UTF-32 encoding)."""
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def scan_corpus(
    paths: list[str | Path],
    encoding: str = "utf-8",
    errors: str = "strict",
    block_size: int = DEFAULT_BLOCK_SIZE,
    progress: bool = False,
    stdin_copy: Path | None = None,
) -> CorpusScan:
    """Pass 1: content key, character set and length of the corpus (files, directories, compressed files;
    "-" from `stdin_copy`, see sources.spooled_stdin: a stream could not be read a second time)."""
    check_decoding(encoding, errors)
    found = corpus_sources(paths, stdin_copy)
    if any(source.path is None for source in found.sources):
        raise CharrnnError("a corpus read from standard input (-) must be copied first (sources.spooled_stdin)")
    files = found.sources
    digest = hashlib.sha256(json.dumps([CACHE_VERSION, encoding, errors, [f.key for f in files]]).encode())
    seen = _CharSet()
    num_chars = num_bytes = 0
    with tqdm(total=sum(f.size() for f in files), unit="B", unit_scale=True, desc="reading corpus",
              disable=not progress, leave=False) as bar:  # fmt: skip
        for source in files:  # the file boundaries are part of the hash: moving bytes between files changes it
            digest.update(f"\0{source.key}\0".encode())
            feed = _Feed(digest, bar)
            for text in decoded_blocks(source, encoding, errors, block_size, feed):
                seen.add(text)
                num_chars += len(text)
            digest.update(f"\0{feed.length}\0".encode())
            num_bytes += feed.length
    if num_chars == 0:
        names = ", ".join("standard input (-)" if str(p) == STDIN else str(p) for p in paths)
        raise CharrnnError(f"corpus {names} is empty")
    chars = seen.chars()
    return CorpusScan(files, encoding, errors, digest.hexdigest(), chars, num_chars, num_bytes, tuple(found.report()))


class _Feed:
    """Pass 1's view of one source's bytes: hash them (decompressed: what the text is, however it is
    stored), count them, and move the progress bar by the bytes consumed on disk."""

    def __init__(self, digest, bar) -> None:
        self.digest, self.bar, self.start, self.length = digest, bar, bar.n, 0

    def __call__(self, data: bytes, consumed: int) -> None:
        self.digest.update(data)
        self.length += len(data)
        self.bar.update(self.start + consumed - self.bar.n)


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
    fingerprint: str  # fingerprint.ids_hash of all the ids, recorded when the entry was written
    damage: str | None = None  # why an existing entry for this key was found damaged and rebuilt


class DamagedEntry(Exception):
    """A cache entry whose ids are not the ones it recorded; the message says how."""


def encode_corpus(
    scan: CorpusScan,
    vocab: Vocab,
    cache_dir: str | Path,
    unk: str = "error",
    block_size: int = DEFAULT_BLOCK_SIZE,
    progress: bool = False,
    damage: str | None = None,
) -> EncodedCorpus:
    """Pass 2 (skipped when cached): the ids of the scanned corpus under `vocab`, memory-mapped.

    Characters outside `vocab` follow `unk` ("error": CharrnnError naming each such character and its
    first position in the text; "skip"; or a single character to map them to). `damage` (why the
    existing entry failed `verified_hashes`) rewrites the entry instead of reusing it. An existing entry
    whose files are inconsistent (truncated, unreadable metadata) is rewritten, and says why in `.damage`.
    """
    cache_dir = Path(cache_dir)
    check_unk_policy(unk, vocab)
    key = entry_key(scan, vocab, unk)
    ids_path, meta_path = cache_dir / f"{key}.ids", cache_dir / f"{key}.json"
    if damage is None:
        cached = _open_entry(ids_path, meta_path, vocab)
        if isinstance(cached, tuple):
            ids, report, fingerprint = cached
            return EncodedCorpus(ids, ids_path, key, True, report, fingerprint)
        damage = cached
    digest = IdsDigest()
    try:
        with atomic_writer(ids_path, make_parents=True) as handle:
            count, report = _write_ids(scan, vocab, unk, block_size, progress, _Hashing(handle, digest))
    except OSError as error:  # from writing the ids (disk full); atomic_writer translates its own failures
        raise CharrnnError(f"cannot write the id cache in {cache_dir}: {error.strerror or error}") from None
    meta = {"format": CACHE_FORMAT, "version": CACHE_VERSION, "dtype": vocab.dtype.name, "length": count,
            "fingerprint": digest.hexdigest(), "vocab": vocab.chars, "unknown": {c: list(v) for c, v in
            report.counts.items()}, "unk": unk, "files": [f.name for f in scan.files],
            "content_key": scan.content_key}  # fmt: skip
    write_bytes_atomic(meta_path, json.dumps(meta).encode("utf-8"))  # after the ids: an entry is whole once it has meta
    ids = _memmap(ids_path, vocab.dtype, count)
    return EncodedCorpus(ids, ids_path, key, False, report, digest.hexdigest(), damage)


class _Hashing:
    """A file being written whose bytes also go to an IdsDigest (the entry's fingerprint, no second read)."""

    def __init__(self, handle, digest: IdsDigest) -> None:
        self.handle, self.digest = handle, digest

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.digest.update(data)


def verified_hashes(encoded: EncodedCorpus, vocab_size: int, ends: list[int]) -> list[str]:
    """Fingerprints of `encoded.ids[:end]` for each end, from one plain read of the entry that also checks
    that the file still holds the ids it recorded (their fingerprint) and that every id is below
    `vocab_size` — so a damaged cache never reaches a kernel, which would index past its arrays.
    Raises DamagedEntry saying what is wrong."""
    itemsize, length = encoded.ids.dtype.itemsize, len(encoded.ids)

    def in_range(block: np.ndarray) -> None:
        if block.size and int(block.max()) >= vocab_size:
            raise DamagedEntry(f"an id of {int(block.max())} in a vocabulary of {vocab_size} characters")

    if length == 0:
        return [IdsDigest().hexdigest() for _ in ends]
    try:
        hashes = file_hashes(encoded.path, encoded.ids.dtype, [*ends, length], in_range)
        size = encoded.path.stat().st_size
    except OSError as error:
        raise DamagedEntry(f"unreadable: {error.strerror or error}") from None
    if hashes is None or size != length * itemsize:
        raise DamagedEntry(f"{size:,} bytes where {length * itemsize:,} were recorded")
    if hashes[-1] != encoded.fingerprint:
        raise DamagedEntry("its ids differ from the fingerprint recorded when it was written")
    return hashes[:-1]


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
        for text in (t for f in scan.files for t in decoded_blocks(f, scan.encoding, scan.errors, block_size)):
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
        names = ", ".join(f.name for f in scan.files[:3]) + (", ..." if len(scan.files) > 3 else "")
        raise CharrnnError(
            f"{names}: {len(unknown)} character(s) not in the model's vocabulary: {report.summary()}"
            " (use --unk skip, --unk map:<char> or --extend-vocab)"
        )
    return written, report


def _memmap(path: Path, dtype: np.dtype, length: int) -> np.ndarray:
    if length == 0:  # np.memmap cannot map an empty file
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(length,))


def _open_entry(ids_path: Path, meta_path: Path, vocab: Vocab) -> tuple[np.ndarray, UnknownReport, str] | str | None:
    """(ids, unknown report, fingerprint) of a complete, consistent cache entry; None when there is no
    entry; else why the entry is damaged (it is then rebuilt). The ids themselves are checked later, by
    `verified_hashes`, in the read that fingerprints the training split anyway."""
    if not meta_path.exists() and not ids_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        length, dtype, fingerprint = int(meta["length"]), np.dtype(meta["dtype"]), str(meta["fingerprint"])
        size = ids_path.stat().st_size
        unknown = {char: (int(v[0]), int(v[1])) for char, v in meta.get("unknown", {}).items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
        return f"unreadable: {error.strerror if isinstance(error, OSError) else 'metadata ' + type(error).__name__}"
    if meta.get("format") != CACHE_FORMAT or meta.get("version") != CACHE_VERSION or meta.get("vocab") != vocab.chars:
        return "its metadata does not match its key"
    if dtype != vocab.dtype or size != length * dtype.itemsize:
        return f"{size:,} bytes where {length * dtype.itemsize:,} were recorded"
    return _memmap(ids_path, dtype, length), UnknownReport(unknown, meta.get("unk", "error")), fingerprint
