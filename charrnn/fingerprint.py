"""The one fingerprint of a sequence of character ids: sha256 of the ids' bytes, first 16 hex digits.

A checkpoint records the fingerprint of its training ids, so `--resume` refuses a different text; the id
cache records the fingerprint of every entry it writes and checks it before the ids reach a kernel. Both
go through `IdsDigest`, so they are the same number by construction, whether the ids are an array in
memory (`ids_hash`) or a cache file read with plain reads (`file_hashes`: its pages are never mapped
into the process, so hashing a corpus bigger than memory does not grow the resident set).

The bytes are the ids in their own dtype (uint8 up to 256 characters, see vocab.id_dtype) and native
byte order, as the id cache stores them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

HEX_DIGITS = 16
SLICE_BYTES = 1 << 24  # arrays are hashed in slices, so a memmap is never copied whole
READ_BYTES = 4 << 20  # files are read in blocks of this size


class IdsDigest:
    """An incremental fingerprint: `update` with ids (arrays or their raw bytes) in order, then `hexdigest`."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()

    def update(self, ids: np.ndarray | bytes | memoryview) -> None:
        if isinstance(ids, np.ndarray):
            flat = ids.reshape(-1)
            step = max(1, SLICE_BYTES // max(flat.itemsize, 1))
            for start in range(0, flat.size, step):
                self._sha.update(np.ascontiguousarray(flat[start : start + step]))  # no copy when contiguous
        else:
            self._sha.update(ids)

    def copy(self) -> IdsDigest:
        other = IdsDigest()
        other._sha = self._sha.copy()
        return other

    def hexdigest(self) -> str:
        return self._sha.hexdigest()[:HEX_DIGITS]


def ids_hash(ids: np.ndarray) -> str:
    """The fingerprint of `ids` (an array or a memmap)."""
    digest = IdsDigest()
    digest.update(ids)
    return digest.hexdigest()


def file_hashes(path: Path, dtype: np.dtype, ends: Sequence[int],
                check: Callable[[np.ndarray], None] | None = None) -> list[str] | None:  # fmt: skip
    """Fingerprints of the first `end` ids of an id file, for each of `ends` (ascending), in one read.
    `check` sees every block of ids as read (the id cache range-checks them). None when the file holds
    fewer ids than the largest end. OSError passes through."""
    dtype = np.dtype(dtype)
    digest, hashes, done = IdsDigest(), [], 0
    pending = sorted(ends)
    with open(path, "rb") as handle:
        for end in pending:
            while done < end:
                block = handle.read(min(READ_BYTES, (end - done) * dtype.itemsize))
                if not block or len(block) % dtype.itemsize:
                    return None
                if check is not None:
                    check(np.frombuffer(block, dtype=dtype))
                digest.update(block)
                done += len(block) // dtype.itemsize
            hashes.append(digest.copy().hexdigest())
    return [hashes[pending.index(end)] for end in ends]
