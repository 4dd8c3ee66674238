"""Documents: a corpus of independent sequences (names, titles, lines, poems) instead of one long text.

`charrnn train FILE --documents lines|blank-lines|SEP` (`prepare_documents`, then `train.train(...,
documents=...)`):

  - Splitting: `lines` makes every line a document, `blank-lines` every block between blank lines, and any
    other value is a literal separator string (`\\n` and `\\t` escapes understood, e.g. '\\n%\\n' for
    fortune files). Each document is stripped of surrounding whitespace, as makemore does; empty ones are
    skipped and counted.
  - The end-of-document symbol is one more id of the vocabulary (vocab.py: code point 0x110000 in the
    checkpoint, outside Unicode, so it can never collide with a character). A document d is read as
    inputs [END, d1 .. dn] and targets [d1 .. dn, END] from a zero state: the first character is predicted
    from the start (END as input, as makemore's '.'), and the model learns where a document ends.
  - Validation holds out whole documents: a random sample seeded by --seed, `val_docs` of them or
    `val_frac` of the documents, never part of one. Its loss is reported per character (the end symbol
    counted: n + 1 predictions for a document of n characters, as makemore counts) and per document.
  - Batches (`DocumentBatches`): each epoch shuffles the training documents (seeded by (seed, epoch))
    and lays them one after another into B rows of C·T positions, a row's documents contiguous in the
    shuffled order, the rest of a row padding (weight 0). Rows end at document boundaries, so a
    document is never cut between rows; it may run over a chunk boundary, where its state is carried
    (as in stream mode). In the kernels a document start is a reset of that row's state (no state or
    gradient crosses it) and padding has weight 0 in the loss: the stream kernels, not a second copy of
    the recurrence. C = ceil((ceil(N/B) + longest)/T) for N positions in all: the same every epoch.
    Padding costs 0.3% of the positions on names.txt at the defaults (B = 32, T = 32).

The corpus is read into memory (documents are short; the stream mode's id cache is for big texts). The
checkpoint of a documents model also stores the split mode and the 64-bit hashes of its training and
validation documents (`checkpoint_extras`), so `charrnn sample --novel/--json` can tell a new document
from a remembered one without the corpus.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from .errors import CharrnnError
from .model import Model
from .vocab import Vocab, describe_char

SPLIT_MODES = ("lines", "blank-lines")
BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")  # a blank (or whitespace-only) line ends a document
VAL_SEED = 0x0D0C5  # mixed with --seed: the validation sample
EPOCH_SEED = 0xE90C  # mixed with --seed and the epoch: the order of the training documents


def parse_split(mode: str) -> str:
    """'lines', 'blank-lines', or a separator string with \\n, \\t and \\\\ escapes understood."""
    if mode in SPLIT_MODES:
        return mode
    separator = re.sub(r"\\([nt\\])", lambda m: {"n": "\n", "t": "\t", "\\": "\\"}[m.group(1)], mode)
    if not separator:
        raise CharrnnError("--documents must be lines, blank-lines or a non-empty separator string")
    return separator


def split_documents(text: str, split: str) -> tuple[list[str], int]:
    """(documents, number of empty ones skipped) of `text` under `split` (see `parse_split`); each document
    is stripped of surrounding whitespace."""
    split = parse_split(split)
    if split == "lines":
        pieces = text.split("\n")
    elif split == "blank-lines":
        pieces = BLANK_LINES.split(text)
    else:
        pieces = text.split(split)
    stripped = [piece.strip() for piece in pieces]
    kept = [piece for piece in stripped if piece]
    trailing = 1 if stripped and not stripped[-1] else 0  # a final separator is not an empty document
    return kept, len(stripped) - len(kept) - trailing


def document_hashes(texts: list[str]) -> np.ndarray:
    """Sorted distinct 64-bit hashes (blake2b of the UTF-8 text) of documents: what a checkpoint keeps
    to recognise them. A false match needs a 64-bit collision (~1e-10 for a million pairs)."""
    digests = [hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=8).digest() for t in texts]
    return np.unique(np.frombuffer(b"".join(digests), dtype="<u8")) if texts else np.zeros(0, np.uint64)


def separator_text(split: str) -> str:
    """What goes between documents when writing them in the corpus's own format."""
    split = parse_split(split)
    return {"lines": "\n", "blank-lines": "\n\n"}.get(split, split)


def with_end(ids: np.ndarray, end: int) -> np.ndarray:
    """[END, d1 .. dn, END] int64: a document as a sequence to score from a zero state (the first END only
    conditions; the n + 1 ids after it are scored)."""
    return np.concatenate(([end], np.asarray(ids, dtype=np.int64), [end]))


@dataclass
class DocumentCorpus:
    """Training and validation documents under a vocabulary with the end symbol. `train` and `val` hold
    each document's ids (no end symbol); `*_texts` the documents themselves."""

    vocab: Vocab
    split: str
    train: list[np.ndarray]
    val: list[np.ndarray]
    train_texts: list[str] = field(repr=False)
    val_texts: list[str] = field(repr=False)
    empty: int = 0  # empty documents skipped

    @property
    def end(self) -> int:
        assert self.vocab.end_id is not None
        return self.vocab.end_id

    def stream(self, which: str) -> np.ndarray:
        """The documents of `which` ("train" or "val") as one id stream [END d1 END d2 .. END]: what the
        n-gram baselines are fitted on and scored with, and what --resume's fingerprint hashes."""
        docs = self.train if which == "train" else self.val
        if not docs:
            return np.zeros(0, self.vocab.dtype)
        parts = [np.array([self.end], self.vocab.dtype)]
        for ids in docs:
            parts += [ids, parts[0]]
        return np.concatenate(parts).astype(self.vocab.dtype)

    def batches(self, batch_size: int, seq_len: int, seed: int) -> DocumentBatches:
        return DocumentBatches(self.train, self.end, batch_size, seq_len, seed)

    def evaluate(self, model: Model, max_chars: int | None = None) -> tuple[float, float] | None:
        """(nats per character, nats per document) of the validation documents, each from a zero state
        (the end symbol counted); at most `max_chars` characters' worth of them (whole documents, at least
        one). None without validation documents. Wraps `batch.score_sequences`."""
        return score_documents_loss(model, self.val, max_chars)

    def describe(self, batches: DocumentBatches) -> str:
        chars = sum(ids.size for ids in self.train)
        val_chars = sum(ids.size for ids in self.val)
        return (f"data: {len(self.train):,} training documents ({chars:,} characters), {len(self.val):,} "
                f"validation documents ({val_chars:,} characters), split by {_split_name(self.split)}"
                + (f", {self.empty:,} empty skipped" if self.empty else "")
                + f"; {batches.chunks_per_epoch} steps per epoch of {batches.batch_size} x {batches.seq_len} "
                f"({batches.padding:.1%} padding)")  # fmt: skip

    @cached_property
    def _extras(self) -> tuple[dict, dict[str, np.ndarray]]:
        meta = {"split": self.split, "train_documents": len(self.train), "validation_documents": len(self.val),
                "longest": max(len(t) for t in self.train_texts), "hashes": "blake2b-64 of UTF-8, sorted"}  # fmt: skip
        arrays = {"documents.train": document_hashes(self.train_texts),
                  "documents.val": document_hashes(self.val_texts)}  # fmt: skip
        return {"documents": meta}, arrays

    def checkpoint_extras(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(meta, arrays) that every checkpoint of the run carries: meta["documents"] (the split, counts) and
        the sorted 64-bit hashes of the training and validation documents."""
        return self._extras


def score_documents_loss(model: Model, documents: list[np.ndarray], max_chars: int | None = None
                         ) -> tuple[float, float] | None:  # fmt: skip
    """(nats/char, nats/document) of documents (ids without the end symbol) under a documents model."""
    from .batch import score_sequences

    if not documents:
        return None
    end = model.vocab.end_id
    if end is None:
        raise CharrnnError("the model has no end-of-document symbol (it was not trained with --documents)")
    if max_chars is not None:
        budget = np.cumsum([ids.size + 1 for ids in documents])
        documents = documents[: max(1, int(np.searchsorted(budget, max_chars, side="right")))]
    log_probs = score_sequences(model, [with_end(ids, end) for ids in documents])
    total = -sum(float(lp.sum()) for lp in log_probs)
    return total / sum(lp.size for lp in log_probs), total / len(documents)


def _split_name(split: str) -> str:
    return split if split in SPLIT_MODES else f"separator {split!r}"


def prepare_documents(
    paths: list[str | Path],
    split: str,
    val_frac: float = 0.1,
    val_docs: int | None = None,
    val_file: str | Path | None = None,
    seed: int = 1234,
    encoding: str = "utf-8",
    errors: str = "strict",
    vocab: Vocab | None = None,
) -> DocumentCorpus:
    """Read and split the corpus, hold out validation documents, build (or check) the vocabulary.

    With `val_file`, its documents are the validation set and all of `paths` trains; otherwise `val_docs`
    documents (or round(val_frac · count)) are drawn at random, seeded by `seed`. `vocab` (resuming) must
    have the end symbol and every character of the documents; otherwise it is built from the documents of
    both splits.
    """
    from .decode import read_text

    split = parse_split(split)
    if not 0.0 <= val_frac < 1.0:
        raise CharrnnError(f"--val-frac must be in [0, 1), got {val_frac}")
    names = ", ".join(str(p) for p in paths)
    texts, empty = split_documents(read_text(paths, encoding, errors), split)
    if not texts:
        raise CharrnnError(f"{names}: no documents (split by {_split_name(split)}); every one is empty")
    if val_file is not None:
        if val_docs is not None:
            raise CharrnnError("give --val-docs or --val-file, not both")
        train_texts = texts
        val_texts, val_empty = split_documents(read_text([val_file], encoding, errors), split)
        empty += val_empty
    else:
        count = len(texts)
        n_val = int(round(count * val_frac)) if val_docs is None else val_docs
        if not 0 <= n_val < count:
            raise CharrnnError(f"--val-docs must be in [0, {count - 1}] ({names} has {count:,} documents), "
                               f"got {n_val}")  # fmt: skip
        held = np.zeros(count, dtype=bool)
        held[np.random.default_rng([seed, VAL_SEED]).choice(count, n_val, replace=False)] = True
        train_texts = [t for t, h in zip(texts, held, strict=True) if not h]
        val_texts = [t for t, h in zip(texts, held, strict=True) if h]
    if vocab is None:
        vocab = Vocab(sorted(set().union(*map(set, train_texts + val_texts))), end=True)
    elif not vocab.has_end:
        raise CharrnnError("the checkpoint's vocabulary has no end-of-document symbol (not a documents model)")
    train = _encode_all(vocab, train_texts, "training documents")
    return DocumentCorpus(vocab, split, train, _encode_all(vocab, val_texts, "validation documents"), train_texts,
                          val_texts, empty)  # fmt: skip


def _encode_all(vocab: Vocab, texts: list[str], where: str) -> list[np.ndarray]:
    """Each text's ids, from one encoding of their concatenation."""
    if not texts:
        return []
    missing = sorted(set().union(*map(set, texts)) - set(vocab.chars))
    if missing:
        shown = ", ".join(describe_char(c) for c in missing[:10])
        first = next(t for t in texts if missing[0] in t)
        raise CharrnnError(f"{where}: {len(missing)} character(s) not in the model's vocabulary: {shown} "
                           f"({describe_char(missing[0])} first in the document {first[:40]!r})")  # fmt: skip
    ids = vocab.encode("".join(texts))
    return np.split(ids, np.cumsum([len(t) for t in texts])[:-1])


class DocumentBatches:
    """The training documents packed into B rows of C chunks of T positions, reshuffled every epoch
    (module docstring). `chunk(index, epoch)` gives (inputs, targets, weights, resets), each (B, T)."""

    def __init__(self, documents: list[np.ndarray], end: int, batch_size: int, seq_len: int, seed: int):
        if batch_size < 1 or seq_len < 1:
            raise CharrnnError(f"--batch-size and --seq-len must be >= 1, got {batch_size} and {seq_len}")
        if not documents:
            raise CharrnnError("no training documents")
        self.batch_size, self.seq_len, self.seed, self.end = batch_size, seq_len, seed, end
        self.lengths = np.array([ids.size for ids in documents], dtype=np.int64)  # characters
        self.flat = np.concatenate(documents).astype(np.int64) if self.lengths.sum() else np.zeros(0, np.int64)
        self.offsets = np.cumsum(self.lengths) - self.lengths
        self.positions = int(self.lengths.sum() + self.lengths.size)  # each document: n chars + its end
        longest = int(self.lengths.max()) + 1
        self.row_len = math.ceil((math.ceil(self.positions / batch_size) + longest) / seq_len) * seq_len
        self._cached: tuple[int, tuple[np.ndarray, ...]] | None = None

    @property
    def chunks_per_epoch(self) -> int:
        return self.row_len // self.seq_len

    @property
    def chars_per_chunk(self) -> int:
        """Positions of a chunk, padding included (the real ones: the weights' sum)."""
        return self.batch_size * self.seq_len

    @property
    def padding(self) -> float:
        """Fraction of an epoch's positions that are padding."""
        return 1.0 - self.positions / (self.batch_size * self.row_len)

    def layout(self, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(inputs, targets, weights, resets), each (B, C·T), of the whole epoch (the last one is cached)."""
        if self._cached is not None and self._cached[0] == epoch:
            return self._cached[1]
        B, R = self.batch_size, self.row_len
        order = np.random.default_rng([self.seed, EPOCH_SEED, epoch]).permutation(self.lengths.size)
        chars = self.lengths[order]
        size = chars + 1
        starts = np.cumsum(size) - size  # where each document would start in one long stream
        row = starts * B // self.positions  # rows take consecutive documents, cut at document boundaries
        first = np.searchsorted(row, np.arange(B))  # each row's first document (rows with none: unused)
        local = starts - starts[np.minimum(first[row], order.size - 1)]
        at = row * R + local  # flat position of each document's end-symbol input
        x = np.full(B * R, self.end, dtype=np.int64)
        y = np.full(B * R, self.end, dtype=np.int64)
        weights = np.zeros(B * R, dtype=np.float32)
        resets = np.ones(B * R, dtype=np.uint8)  # padding resets too: nothing is carried through it
        within = np.arange(int(chars.sum())) - np.repeat(np.cumsum(chars) - chars, chars)
        source = np.repeat(self.offsets[order], chars) + within
        target = np.repeat(at, chars) + within
        x[target + 1] = self.flat[source]
        y[target] = self.flat[source]
        resets[target + 1] = 0
        filled = np.repeat(at, size) + np.arange(int(size.sum())) - np.repeat(starts, size)
        weights[filled] = 1.0
        arrays = tuple(a.reshape(B, R) for a in (x, y, weights, resets))
        self._cached = (epoch, arrays)
        return arrays

    def chunk(self, index: int, epoch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(inputs, targets, weights, resets) (B, T) of chunk `index` of `epoch`."""
        if not 0 <= index < self.chunks_per_epoch:
            raise IndexError(index)
        window = slice(index * self.seq_len, (index + 1) * self.seq_len)
        return tuple(np.ascontiguousarray(a[:, window]) for a in self.layout(epoch))  # type: ignore[return-value]


# ---- the defaults of documents mode, and where a run starts ----

# What differs from stream mode's defaults when --documents is given and the option is not. Measured on
# names.txt (README "Documents", benchmarks/documents.py), test loss per character on makemore's 1,000-name
# test set: 2 x 256, batch 64 x 64, lr 2e-3, dropout 0.25, 30 epochs: 2.045 (158 CPU-seconds); batch
# 32 x 32, lr 3e-3, dropout 0.1, 20 epochs: 1.970 (95 CPU-seconds) — four times the updates per epoch
# learn faster per character seen; lr 5e-3 was worse at every epoch compared.
MODEL_DEFAULTS = {"hidden_size": 256, "num_layers": 2}
TRAIN_DEFAULTS = {"lr": 3e-3, "dropout": 0.1, "batch_size": 32, "seq_len": 32}
DEFAULT_EPOCHS = 20  # when none of --epochs, --steps, --time is given


def with_document_defaults(config, architecture: dict, given: set[str]):
    """(TrainConfig, architecture) with documents mode's defaults for every TrainConfig field not in
    `given` (the options the user gave) and every architecture field that is None (not given)."""
    import dataclasses

    changes = {name: value for name, value in TRAIN_DEFAULTS.items() if name not in given}
    if not given & {"epochs", "steps", "time_budget"}:
        changes["epochs"] = DEFAULT_EPOCHS
    architecture = {name: MODEL_DEFAULTS.get(name) if value is None else value for name, value in architecture.items()}
    return dataclasses.replace(config, **changes), architecture


def prepare_documents_run(corpus: list[str | Path], split: str, architecture: dict, resume: str | Path | None = None,
                          init_from: str | Path | None = None, **options):  # fmt: skip
    """(documents, finetune.RunStart) for `train.train(..., documents=documents)`: the RunStart's data holds
    the documents' id streams (`DocumentCorpus.stream`) and its model_config a fresh run's architecture
    (None when resuming). `options` go to `prepare_documents` (val_frac, val_docs, val_file, seed,
    encoding, errors)."""
    from .data import PreparedData
    from .fingerprint import ids_hash
    from .model import ModelConfig, load_checkpoint
    from .runstart import ARCHITECTURE_OPTIONS, RunStart
    from .vocab import UnknownReport

    def start(documents: DocumentCorpus, config, notes: list[str]):
        train_ids = documents.stream("train")
        data = PreparedData(documents.vocab, train_ids, documents.stream("val"), ids_hash(train_ids), False,
                            UnknownReport({}, "error"))  # fmt: skip
        return documents, RunStart(data, config, None, notes)

    if init_from is not None:
        raise CharrnnError("--init-from does not work with --documents yet: train from scratch or --resume")
    if resume is None:
        documents = prepare_documents(corpus, split, **options)
        given = {name: value for name, value in architecture.items() if value is not None}
        return start(documents, ModelConfig(len(documents.vocab), **given), [])
    base, meta, _ = load_checkpoint(resume)
    if not base.vocab.has_end:
        raise CharrnnError(f"{resume} is not a documents model: resume it without --documents")
    trained_split = (meta.get("documents") or {}).get("split")
    if trained_split is not None and trained_split != parse_split(split):
        raise CharrnnError(f"{resume} was trained with --documents {trained_split!r}; resume with the same")
    notes = [
        f"{ARCHITECTURE_OPTIONS[name]} {value} ignored: resuming keeps the model's {getattr(base.config, name)}"
        for name, value in architecture.items()
        if value is not None and value != getattr(base.config, name)
    ]
    return start(prepare_documents(corpus, split, vocab=base.vocab, **options), None, notes)
