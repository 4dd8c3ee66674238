"""Compress and decompress bytes with a model: the library behind `charrnn compress` / `decompress`.

    from charrnn.codec import compress, decompress
    from charrnn.model import load_model
    model = load_model("model.npz")
    blob = compress(model, open("text.txt", "rb").read())
    assert decompress(model, blob) == open("text.txt", "rb").read()

Decompressing checks, in this order, that the blob is a compressed file of a version this charrnn reads
with an intact header, that it was made with this very model (fingerprint), that the coded data is intact
and ends exactly where the text does, and that the result has the original's length and SHA-256 checksum:
a damaged file or the wrong model raises CharrnnError (one line), never returns wrong bytes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..errors import CharrnnError
from ..model import Model
from . import coder, fileformat, text
from .coder import Damaged, Progress
from .fileformat import Adaptation, Header


@dataclass(frozen=True)
class CodingStats:
    """What one compression or decompression did (times are the coding thread's CPU seconds)."""

    original_bytes: int
    compressed_bytes: int
    header_bytes: int
    characters: int
    escaped: int  # characters outside the vocabulary
    seconds: float

    @property
    def bits_per_byte(self) -> float:
        return 8 * self.compressed_bytes / max(self.original_bytes, 1)

    @property
    def kilobytes_per_second(self) -> float:
        return self.original_bytes / 1000 / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict:
        return {"original_bytes": self.original_bytes, "compressed_bytes": self.compressed_bytes,
                "header_bytes": self.header_bytes, "characters": self.characters,
                "escaped_characters": self.escaped, "bits_per_byte": self.bits_per_byte,
                "cpu_seconds": self.seconds, "kilobytes_per_second": self.kilobytes_per_second}  # fmt: skip


def compress(model: Model, data: bytes, adapt: Adaptation | None = None,
             progress: Progress | None = None) -> tuple[bytes, CodingStats]:  # fmt: skip
    """(the compressed file, statistics) for `data`, any bytes. `progress` is called with the number of
    characters coded since its last call."""
    _check_subnormals()
    start = time.thread_time()
    body, crlf = text.decode_input(data, model.vocab)
    points = text.code_points(body)
    alphabet = text.Alphabet(model.vocab)
    blocks = (alphabet.codes(points[i : i + coder.BLOCK]) for i in range(0, points.size, coder.BLOCK))
    header = Header(crlf, fileformat.fingerprint(model), int(points.size), len(data), fileformat.checksum(data), adapt)
    payload, escaped = coder.encode(model, blocks, adapt, progress)
    packed = header.pack()
    blob = packed + payload
    return blob, CodingStats(len(data), len(blob), len(packed), int(points.size), escaped, time.thread_time() - start)


def read_header(blob: bytes, name: str = "input") -> Header:
    """The header of a compressed file (CharrnnError naming `name` if it is not one)."""
    return fileformat.parse(blob, name)[0]


def decompress(model: Model, blob: bytes, name: str = "input", progress: Progress | None = None,
               model_name: str = "the model") -> tuple[bytes, CodingStats]:  # fmt: skip
    """(the original bytes, statistics) of a compressed file; CharrnnError naming `name` (the file) and
    `model_name` if it is not one, was made with another model, or is damaged (module docstring)."""
    _check_subnormals()
    start = time.thread_time()
    header, offset = fileformat.parse(blob, name)
    if header.model != fileformat.fingerprint(model):
        raise CharrnnError(f"{name} was compressed with another model (fingerprint {header.model.hex()}; "
                           f"{model_name} has {fileformat.fingerprint(model).hex()})")  # fmt: skip
    alphabet = text.Alphabet(model.vocab)
    points = np.empty(header.characters, np.uint32)
    done = escaped = 0
    try:
        for codes in coder.decode(model, blob[offset:], header.characters, header.adapt, progress):
            points[done : done + codes.size] = alphabet.points(codes)
            done += codes.size
            escaped += int(np.count_nonzero(codes < 0))
        out = text.encode_output(text.to_text(points), header.crlf)
    except Damaged as error:
        raise CharrnnError(f"{name} {error}") from None
    except UnicodeEncodeError:
        raise CharrnnError(f"{name} is corrupt: it decodes to a character that is not valid UTF-8") from None
    if len(out) != header.size or fileformat.checksum(out) != header.checksum:
        raise CharrnnError(f"{name} is corrupt: the decompressed text fails its length or SHA-256 check")
    stats = CodingStats(len(out), len(blob), offset, header.characters, escaped, time.thread_time() - start)
    return out, stats


def _check_subnormals() -> None:
    """Refuse to code when this thread flushes subnormal numbers to zero (FTZ/DAZ: a shared library built
    with -ffast-math turns them on for the whole process when it loads), which other machines don't."""
    tiny = np.float32(1e-45)  # the smallest subnormal float32
    if tiny * np.float32(2.0) == 0.0 or np.float32(1e-38) * np.float32(1e-3) == 0.0:
        raise CharrnnError("this process flushes subnormal numbers to zero (a library loaded with -ffast-math "
                           "set the CPU's FTZ/DAZ flags): its compressed files would not decode elsewhere")  # fmt: skip
