"""Reading corpora, the train/validation split, and the one batching path (parallel streams).

Reading: which files a corpus is made of is sources.py's business, how their bytes become text is
decode.py's (one decoder for the whole package: strict UTF-8 by default, "\\r\\n" -> "\\n").

Batching (as in char-rnn): the training ids are cut into B contiguous streams of equal length; step k
takes characters [k·T, (k+1)·T) of every stream as inputs and the same window shifted by one as
targets. The hidden state is carried from one chunk to the next (truncated BPTT) and reset when an
epoch starts. The tail that does not fill a whole chunk is dropped: targets never wrap around, so no
transition appears that the corpus does not contain.

Training data is prepared by `prepare_data` through the id cache (`idcache.py`): the corpus is encoded
once, streaming, into a memory-mapped id file, so a corpus far bigger than memory trains with only the
touched pages read. `decode.read_text` (whole text in memory) serves small inputs such as a text to score.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cachedir import ids_cache_dir
from .decode import DEFAULT_BLOCK_SIZE
from .errors import CharrnnError
from .idcache import DamagedEntry, EncodedCorpus, encode_corpus, scan_corpus, verified_hashes
from .sources import STDIN, spooled_stdin
from .vocab import UnknownReport, Vocab, check_unk_policy


def split_tail(ids: np.ndarray, val_frac: float) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation): validation is the contiguous last `val_frac` of the text."""
    if not 0.0 <= val_frac < 1.0:
        raise CharrnnError(f"--val-frac must be in [0, 1), got {val_frac}")
    n_val = int(round(len(ids) * val_frac))
    return ids[: len(ids) - n_val], ids[len(ids) - n_val :]


@dataclass(frozen=True)
class StreamBatches:
    """B parallel contiguous streams over `ids`, cut into chunks of T characters.

    ids (N,) unsigned ints (an np.memmap works: only the touched pages are read).
    """

    ids: np.ndarray
    batch_size: int
    seq_len: int

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise CharrnnError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.seq_len < 1:
            raise CharrnnError(f"--seq-len must be >= 1, got {self.seq_len}")
        needed = self.batch_size * self.seq_len + 1
        if len(self.ids) < needed:
            raise CharrnnError(
                f"training text has {len(self.ids)} characters; --batch-size {self.batch_size} x --seq-len "
                f"{self.seq_len} needs at least {needed} (use a longer corpus or smaller batches)"
            )

    @property
    def stream_len(self) -> int:
        """Characters per stream that can serve as inputs (each needs a following target)."""
        return (len(self.ids) - 1) // self.batch_size

    @property
    def chunks_per_epoch(self) -> int:
        return self.stream_len // self.seq_len

    @property
    def chars_per_chunk(self) -> int:
        return self.batch_size * self.seq_len

    def chunk(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and targets (B, T) of chunk `index` (0 <= index < chunks_per_epoch)."""
        if not 0 <= index < self.chunks_per_epoch:
            raise IndexError(index)
        starts = np.arange(self.batch_size) * self.stream_len + index * self.seq_len
        window = starts[:, None] + np.arange(self.seq_len + 1)
        block = np.asarray(self.ids[window.ravel()]).reshape(self.batch_size, self.seq_len + 1)
        return block[:, :-1], block[:, 1:]


def eval_streams(ids: np.ndarray, max_streams: int, seq_len: int) -> StreamBatches | None:
    """Stream layout for evaluating a whole text: as many streams as fit (<= max_streams), every chunk
    used once. None when the text has fewer than 2 characters (nothing to predict)."""
    if len(ids) < 2:
        return None
    streams = max(1, min(max_streams, (len(ids) - 1) // seq_len))
    seq_len = min(seq_len, (len(ids) - 1) // streams)
    return StreamBatches(ids, streams, seq_len)


@dataclass(frozen=True)
class PreparedData:
    """A corpus ready for training: vocabulary, id arrays of both splits (memory-mapped views of the id
    cache, never the whole text in memory), and how the ids were obtained."""

    vocab: Vocab
    train_ids: np.ndarray  # (N_train,) ids, a view of the cached memmap
    val_ids: np.ndarray  # (N_val,) ids, possibly empty
    train_hash: str  # fingerprint.ids_hash of train_ids, guards --resume
    reused_cache: bool  # every id file came from the cache
    unknown: UnknownReport  # characters skipped or mapped under the unknown-character policy
    notes: tuple[str, ...] = ()  # for the user: which files of a directory were used and skipped, and why


def prepare_data(
    paths: list[str | Path],
    val_frac: float = 0.1,
    val_file: str | Path | None = None,
    encoding: str = "utf-8",
    errors: str = "strict",
    cache_dir: str | Path | None = None,
    vocab: Vocab | Callable[[str], Vocab] | None = None,
    unk: str = "error",
    progress: bool = False,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> PreparedData:
    """Scan, choose the vocabulary, encode (or reuse the cached encoding) and split.

    `vocab`: None builds it from the characters of training and validation text together; a Vocab is
    used as is (resuming, fine-tuning), with unknown characters under `unk`; a callable receives those
    sorted characters and returns the Vocab (fine-tuning with an extended vocabulary). With `val_file`,
    validation is that file and all of `paths` is training text; otherwise the validation split is the
    last `val_frac` of the ids (a view, no copy). `cache_dir` defaults to `cachedir.ids_cache_dir()`
    ($XDG_CACHE_HOME/charrnn/ids, else ~/.cache/charrnn/ids). "-" (in `paths` or as `val_file`) is
    standard input, copied to a temporary file in `cache_dir` for the two passes and removed after.
    Every entry is verified before its ids are returned (fingerprint and range); a damaged one is
    rebuilt and a note says so.
    """
    if not 0.0 <= val_frac < 1.0:
        raise CharrnnError(f"--val-frac must be in [0, 1), got {val_frac}")
    cache_dir = Path(cache_dir) if cache_dir is not None else ids_cache_dir()
    named = [str(p) for p in [*paths, *([] if val_file is None else [val_file])]]
    if named.count(STDIN) > 1:
        raise CharrnnError("standard input (-) can be read only once")
    with spooled_stdin(cache_dir) if STDIN in named else contextlib.nullcontext() as stdin_copy:
        scans = [scan_corpus(paths, encoding, errors, block_size, progress, stdin_copy)]
        if val_file is not None:
            scans.append(scan_corpus([val_file], encoding, errors, block_size, progress, stdin_copy))
        if vocab is None or callable(vocab):
            chars = "".join(sorted(set().union(*(scan.chars for scan in scans))))
            vocab = Vocab(chars) if vocab is None else vocab(chars)
        check_unk_policy(unk, vocab)
        notes = [note for scan in scans for note in scan.notes]
        options = (vocab, cache_dir, unk, block_size, progress)
        train, train_hash = _encode_verified(scans[0], *options, val_frac if val_file is None else 0.0, notes)
        val = _encode_verified(scans[1], *options, 0.0, notes)[0] if val_file is not None else None
    encoded = [train] if val is None else [train, val]
    unknown = UnknownReport({k: v for e in encoded for k, v in e.unknown.counts.items()}, unk)
    reused = all(e.reused for e in encoded)
    train_ids, val_ids = split_tail(train.ids, val_frac) if val is None else (train.ids, val.ids)
    return PreparedData(vocab, train_ids, val_ids, train_hash, reused, unknown, tuple(notes))


def _encode_verified(scan, vocab, cache_dir, unk, block_size, progress, val_frac, notes) -> tuple[EncodedCorpus, str]:
    """The entry of `scan` (encoded or reused) and the fingerprint of its part before the `val_frac` tail,
    verified in the same read (idcache.verified_hashes); a damaged entry is rebuilt, with a note."""
    damage = None
    for _ in range(2):
        entry = encode_corpus(scan, vocab, cache_dir, unk, block_size, progress, damage=damage)
        if entry.damage is not None:
            notes.append(f"id cache entry {entry.path} was damaged ({entry.damage}); rebuilt it")
        try:
            return entry, verified_hashes(entry, len(vocab), [len(split_tail(entry.ids, val_frac)[0])])[0]
        except DamagedEntry as error:
            damage = str(error)
    raise CharrnnError(f"id cache entry {entry.path} does not verify even after rebuilding it ({damage})")
