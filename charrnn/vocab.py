"""Vocabulary: characters <-> integer ids, and the policy for characters the model never saw.

The vocabulary is the sorted set of Unicode code points of the training text, so it is identical
across runs and machines (unlike `list(set(text))`, whose order depends on string hashing). It is
stored in the checkpoint as an int32 array of code points.

A documents model (charrnn/documents.py) also has the end-of-document symbol: one more id, after every
character (`end_id` = the number of characters), stored in the checkpoint as the code point END_CODEPOINT
= 0x110000, one past the last Unicode code point, so no text can contain it and it never collides with a
character. It is not a character: `encode` never produces it and `decode` leaves it out.

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
END_CODEPOINT = 0x110000  # the end-of-document symbol in the checkpoint: one past the last Unicode code point
END_NAME = "<end>"  # how listings (score --per-char, info) show it


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
    With `end=True` the vocabulary also has the end-of-document symbol, id `end_id` = len(chars).
    """

    def __init__(self, chars: str | list[str], end: bool = False):
        chars = "".join(chars)
        if len(chars) == 0:
            raise CharrnnError("vocabulary is empty: the text has no characters")
        if len(set(chars)) != len(chars) or list(chars) != sorted(chars):
            raise CharrnnError("vocabulary must be sorted, distinct characters")
        self.chars = chars
        self.end_id: int | None = len(chars) if end else None
        self.index = {char: i for i, char in enumerate(chars)}
        self.dtype = id_dtype(len(chars) + (1 if end else 0))
        # code point -> id lookup table for fast vectorised encoding of large texts
        self._table = np.full(ord(chars[-1]) + 1, -1, dtype=np.int64)
        self._table[[ord(c) for c in chars]] = np.arange(len(chars))

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        return cls(sorted(set(text)))

    @classmethod
    def from_codepoints(cls, codepoints: np.ndarray) -> Vocab:
        """The vocabulary of a checkpoint's (V,) code points (END_CODEPOINT last: a documents model)."""
        codes = [int(c) for c in np.asarray(codepoints).ravel()]
        end = bool(codes) and codes[-1] == END_CODEPOINT
        codes = codes[:-1] if end else codes
        bad = [c for c in codes if not 0 <= c <= 0x10FFFF]
        if bad:
            raise CharrnnError(f"vocabulary holds {bad[0]:#x}, which is not a Unicode code point")
        return cls("".join(chr(c) for c in codes), end=end)

    def codepoints(self) -> np.ndarray:
        """(V,) int32: the checkpoint form of the vocabulary (END_CODEPOINT last for a documents model)."""
        codes = [ord(c) for c in self.chars] + ([END_CODEPOINT] if self.end_id is not None else [])
        return np.array(codes, dtype=np.int32)

    @property
    def has_end(self) -> bool:
        return self.end_id is not None

    def with_end(self) -> Vocab:
        """The same characters and the end-of-document symbol."""
        return Vocab(self.chars, end=True)

    def __len__(self) -> int:
        return len(self.chars) + (1 if self.end_id is not None else 0)

    def __contains__(self, char: str) -> bool:
        return char in self.index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and other.chars == self.chars and other.end_id == self.end_id

    def __hash__(self) -> int:
        return hash((self.chars, self.end_id))

    def __repr__(self) -> str:
        end = " + end symbol" if self.end_id is not None else ""
        return f"Vocab({len(self.chars)} chars{end}: {self.chars[:40]!r}{'...' if len(self.chars) > 40 else ''})"

    def name(self, i: int) -> str:
        """What id `i` is, for listings: its character, or END_NAME."""
        return END_NAME if i == self.end_id else self.chars[i]

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
        # surrogatepass: a lone surrogate (from undecodable bytes in an argument) is an unknown character
        # like any other, never an exception
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
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
        """The text of ids; the end-of-document symbol is not a character and is left out."""
        return "".join(self.chars[int(i)] for i in ids if int(i) != self.end_id)

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
