"""Bytes <-> the coder's symbols, so that any file round-trips byte for byte.

The input is decoded as UTF-8 with Python's 'surrogateescape': each byte of an invalid sequence becomes one
of U+DC80..U+DCFF and encoding back restores the very same bytes, so broken UTF-8 and binary files compress
too (those bytes are outside every vocabulary and escape). Line ends: models are trained on text read with
CRLF turned into LF, so when the model has no '\\r' and every line of the text ends in CRLF, the text is
coded with LF and the header's flag puts the CRs back.

Symbols ("codes", int64): a vocabulary id (>= 0), or -1 - code point for a character outside the vocabulary.
"""

from __future__ import annotations

import numpy as np

from ..vocab import Vocab
from .coder import Damaged


def decode_input(data: bytes, vocab: Vocab) -> tuple[str, bool]:
    """(the text to code, whether its CRLF line ends are coded as LF)."""
    text = data.decode("utf-8", "surrogateescape")
    if "\r\n" in text and "\r" not in vocab:
        lf = text.replace("\r\n", "\n")
        if lf.replace("\n", "\r\n") == text:
            return lf, True
    return text, False


def encode_output(text: str, crlf: bool) -> bytes:
    """The inverse of `decode_input`."""
    return (text.replace("\n", "\r\n") if crlf else text).encode("utf-8", "surrogateescape")


def code_points(text: str) -> np.ndarray:
    """(N,) uint32 code points of a text (escaped bytes included)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


class Alphabet:
    """Code points <-> codes (module docstring) for one vocabulary."""

    def __init__(self, vocab: Vocab) -> None:
        self.chars = vocab.codepoints().astype(np.int64)
        self.table = np.full(int(self.chars.max()) + 1, -1, dtype=np.int64)
        self.table[self.chars] = np.arange(self.chars.size)

    def codes(self, points: np.ndarray) -> np.ndarray:
        """Code points (N,) -> codes (N,) int64."""
        points = points.astype(np.int64)
        ids = np.full(points.shape, -1, dtype=np.int64)
        known = points < self.table.size
        ids[known] = self.table[points[known]]
        return np.where(ids >= 0, ids, -1 - points)

    def points(self, codes: np.ndarray) -> np.ndarray:
        """Codes (N,) -> code points (N,) uint32; Damaged if one is not a code point (a corrupt stream)."""
        inside = codes >= 0
        points = np.where(inside, self.chars[np.where(inside, codes, 0)], -1 - codes)
        if points.size and (points.min() < 0 or points.max() > 0x10FFFF):
            raise Damaged("is corrupt: it decodes to a value that is not a Unicode code point")
        return points.astype(np.uint32)


def to_text(points: np.ndarray) -> str:
    try:
        return points.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")
    except UnicodeDecodeError:
        raise Damaged("is corrupt: it decodes to a value that is not a Unicode code point") from None
