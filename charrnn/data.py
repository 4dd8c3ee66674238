"""Reading corpora, the train/validation split, and the one batching path (parallel streams).

Reading: files are decoded strictly (UTF-8 by default); an invalid byte is an error naming the file
and byte offset, unless errors="replace". Directories are read recursively in sorted path order,
skipping hidden entries and binary files (a NUL byte in the first 8 KiB). Windows line endings are
normalised ("\\r\\n" -> "\\n") so "\\r" does not become a character of the model.

Batching (as in char-rnn): the training ids are cut into B contiguous streams of equal length; step k
takes characters [k·T, (k+1)·T) of every stream as inputs and the same window shifted by one as
targets. The hidden state is carried from one chunk to the next (truncated BPTT) and reset when an
epoch starts. The tail that does not fill a whole chunk is dropped: targets never wrap around, so no
transition appears that the corpus does not contain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CharrnnError
from .vocab import Vocab

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


def read_text(paths: list[str | Path], encoding: str = "utf-8", errors: str = "strict") -> str:
    """Concatenated, decoded, newline-normalised text of the given files and directories."""
    if errors not in ("strict", "replace"):
        raise CharrnnError(f"--errors must be strict or replace, got {errors!r}")
    parts = []
    for path in corpus_files(paths):
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise CharrnnError(f"cannot read {path}: {error.strerror}") from None
        try:
            text = raw.decode(encoding, errors=errors)
        except LookupError:
            raise CharrnnError(f"unknown encoding {encoding!r}") from None
        except UnicodeDecodeError as error:
            raise CharrnnError(
                f"{path}: invalid {encoding} at byte offset {error.start} "
                f"(byte 0x{raw[error.start]:02x}); use --errors replace to accept it or --encoding to change"
            ) from None
        parts.append(text.replace("\r\n", "\n"))
    text = "".join(parts)
    if not text:
        names = ", ".join(str(p) for p in paths)
        raise CharrnnError(f"corpus {names} is empty")
    return text


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
    """A corpus ready for training: vocabulary and id arrays of both splits."""

    vocab: Vocab
    train_ids: np.ndarray  # (N_train,) ids
    val_ids: np.ndarray  # (N_val,) ids, possibly empty


def prepare_data(
    paths: list[str | Path],
    val_frac: float = 0.1,
    val_file: str | Path | None = None,
    encoding: str = "utf-8",
    errors: str = "strict",
) -> PreparedData:
    """Read, build the vocabulary (from training and validation text together) and split.

    With `val_file`, validation is that file and all of `paths` is training text; otherwise the
    validation split is the last `val_frac` of the text.
    """
    text = read_text(paths, encoding, errors)
    val_text = read_text([val_file], encoding, errors) if val_file is not None else ""
    vocab = Vocab.from_text(text + val_text)
    ids = vocab.encode(text)
    if val_file is not None:
        return PreparedData(vocab, ids, vocab.encode(val_text))
    train_ids, val_ids = split_tail(ids, val_frac)
    return PreparedData(vocab, train_ids, val_ids)
