"""Vocabulary: characters <-> integer ids, and the policy for characters the model never saw.

The vocabulary is the sorted set of Unicode code points of the training text, so it is identical
across runs and machines (unlike `list(set(text))`, whose order depends on string hashing). It is
stored in the checkpoint as an int32 array of code points.

Unknown-character policy (`unk`), used wherever text meets a trained model (sampling primes, scoring,
fine-tuning):
  - "error" (default): raise, naming each unknown character and the position where it first occurs;
  - "skip": drop unknown characters (the positions of the remaining ones shift);
  - a single character that is in the vocabulary: map every unknown character to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import CharrnnError, OptionError

UNK_POLICIES = ("error", "skip")


def id_dtype(vocab_size: int) -> np.dtype:
    """Smallest unsigned integer dtype that holds ids 0..vocab_size-1."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise CharrnnError(f"vocabulary of {vocab_size} characters is too large")


def describe_char(char: str) -> str:
    """A printable name for a character: 'a', '\\n', 'U+00A0'."""
    if char.isprintable() and not char.isspace() or char == " ":
        return repr(char)
    escaped = repr(char)[1:-1]
    if escaped.startswith("\\x") or escaped == char:
        return f"U+{ord(char):04X}"
    return f"'{escaped}'"


@dataclass(frozen=True)
class UnknownReport:
    """Which characters were not in the vocabulary: char -> (count, first position)."""

    counts: dict[str, tuple[int, int]]
    policy: str

    @property
    def total(self) -> int:
        return sum(count for count, _ in self.counts.values())

    def summary(self) -> str:
        parts = [
            f"{describe_char(char)} x{count} (first at {first})"
            for char, (count, first) in sorted(self.counts.items(), key=lambda item: item[1][1])
        ]
        return ", ".join(parts)


class Vocab:
    """Sorted characters of a corpus, with encode/decode.

    `chars[i]` is the character of id `i`; ids are stored in the smallest unsigned dtype that fits.
    """

    def __init__(self, chars: str | list[str]):
        chars = "".join(chars)
        if len(chars) == 0:
            raise CharrnnError("vocabulary is empty: the text has no characters")
        if len(set(chars)) != len(chars) or list(chars) != sorted(chars):
            raise CharrnnError("vocabulary must be sorted, distinct characters")
        self.chars = chars
        self.index = {char: i for i, char in enumerate(chars)}
        self.dtype = id_dtype(len(chars))
        # code point -> id lookup table for fast vectorised encoding of large texts
        self._table = np.full(ord(chars[-1]) + 1, -1, dtype=np.int64)
        self._table[[ord(c) for c in chars]] = np.arange(len(chars))

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        return cls(sorted(set(text)))

    @classmethod
    def from_codepoints(cls, codepoints: np.ndarray) -> Vocab:
        return cls("".join(chr(int(c)) for c in codepoints))

    def codepoints(self) -> np.ndarray:
        """(V,) int32: the checkpoint form of the vocabulary."""
        return np.array([ord(c) for c in self.chars], dtype=np.int32)

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: str) -> bool:
        return char in self.index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and other.chars == self.chars

    def __hash__(self) -> int:
        return hash(self.chars)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} chars: {self.chars[:40]!r}{'...' if len(self) > 40 else ''})"

    def encode(self, text: str, unk: str = "error", where: str = "text") -> np.ndarray:
        """Text -> (N,) ids in `self.dtype`, applying the unknown-character policy.

        `where` names the source in error messages (a file name, "prime", ...).
        """
        ids, report = self.encode_with_report(text, unk=unk, where=where)
        return ids

    def encode_with_report(
        self, text: str, unk: str = "error", where: str = "text"
    ) -> tuple[np.ndarray, UnknownReport]:
        """Like `encode`, also returning which unknown characters were skipped or mapped."""
        check_unk_policy(unk, self)
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        in_table = codes < len(self._table)
        ids = np.full(codes.shape, -1, dtype=np.int64)
        ids[in_table] = self._table[codes[in_table]]
        unknown = ids < 0
        counts: dict[str, tuple[int, int]] = {}
        if unknown.any():
            positions = np.flatnonzero(unknown)
            values, first, count = np.unique(codes[positions], return_index=True, return_counts=True)
            counts = {chr(int(v)): (int(c), int(positions[f])) for v, f, c in zip(values, first, count, strict=True)}
            report = UnknownReport(counts, unk)
            if unk == "error":
                raise CharrnnError(
                    f"{where}: {len(counts)} character(s) not in the model's vocabulary: {report.summary()}"
                    " (use --unk skip or --unk map:<char>)"
                )
            if unk == "skip":
                ids = ids[~unknown]
            else:
                ids[unknown] = self.index[unk]
        return ids.astype(self.dtype), UnknownReport(counts, unk)

    def decode(self, ids: np.ndarray | list[int]) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def one_hot(self, ids: np.ndarray, dtype: np.dtype | str = np.float32) -> np.ndarray:
        """(..., V) one-hot rows for an API user. The model itself never builds these: a one-hot row
        times Wx is a row lookup `Wx[id]`."""
        ids = np.asarray(ids)
        out = np.zeros(ids.shape + (len(self),), dtype=dtype)
        np.put_along_axis(out, ids[..., None].astype(np.intp), 1, axis=-1)
        return out


def check_unk_policy(unk: str, vocab: Vocab | None = None) -> None:
    """`unk` is "error", "skip" or a single character (which must be in `vocab` when given)."""
    if unk in UNK_POLICIES:
        return
    if len(unk) != 1:
        raise CharrnnError(f"unknown-character policy must be error, skip or map:<char>, got {unk!r}")
    if vocab is not None and unk not in vocab:
        raise CharrnnError(f"--unk map character {describe_char(unk)} is not in the model's vocabulary")


def parse_unk_option(value: str) -> str:
    """CLI form -> policy: 'error', 'skip', 'map:X' (or a bare single character X) -> 'X'."""
    if value in UNK_POLICIES:
        return value
    if value.startswith("map:") and len(value) == 5:
        return value[4]
    if value == "map:\\n":
        return "\n"
    if len(value) == 1:
        return value
    raise OptionError(f"--unk must be error, skip or map:<char>, got {value!r}")
