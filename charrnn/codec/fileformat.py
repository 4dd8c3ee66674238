"""The compressed file: a header, then the range coder's bytes.

    offset  size  field
    0       4     magic b"CRZ\\x1a" (the \\x1a stops `type` on Windows from printing the binary part)
    4       1     format version (FORMAT_VERSION)
    5       1     flags: bit 0 the text had CRLF line ends, coded as LF; bit 1 adaptive (--adapt)
    6       8     model fingerprint: the first 8 bytes of the SHA-256 of configuration, vocabulary and weights
    14      var   characters coded (unsigned LEB128)
            var   bytes of the original (LEB128)
            8     checksum of the original: the first 8 bytes of its SHA-256
            [adaptive only: learning rate, float64 little-endian; update window, LEB128]
            4     CRC-32 of the header bytes above
            ...   payload

A file that is too short, has another magic, a version this charrnn does not read, or a header whose
CRC-32 fails is rejected before any decoding; the fingerprint tells "another model" apart from damage.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import CharrnnError
from ..model import Model

MAGIC = b"CRZ\x1a"
FORMAT_VERSION = 1
FLAG_CRLF = 1
FLAG_ADAPT = 2
DIGEST_BYTES = 8
MAX_WINDOW = 4096


@dataclass(frozen=True)
class Adaptation:
    """Online learning while coding (--adapt): after every `window` characters of the vocabulary, one
    step of plain SGD with learning rate `lr` on the last `window` of them (truncated BPTT)."""

    lr: float
    window: int

    def __post_init__(self) -> None:
        if not 0.0 < self.lr <= 10.0:
            raise CharrnnError(f"the adaptive learning rate (--adapt-lr) must be in (0, 10], got {self.lr}")
        if not 1 <= self.window <= MAX_WINDOW:
            raise CharrnnError(
                f"the adaptive window (--adapt-window) must be 1..{MAX_WINDOW} characters, got {self.window}"
            )


DEFAULT_ADAPTATION = (0.02, 32)  # (lr, window): SGD's sweet spot on the benchmark's texts (benchmarks/compression.py)


@dataclass(frozen=True)
class Header:
    crlf: bool
    model: bytes  # DIGEST_BYTES
    characters: int
    size: int  # bytes of the original
    checksum: bytes  # DIGEST_BYTES
    adapt: Adaptation | None = None

    def pack(self) -> bytes:
        flags = (FLAG_CRLF if self.crlf else 0) | (FLAG_ADAPT if self.adapt else 0)
        body = MAGIC + bytes([FORMAT_VERSION, flags]) + self.model + varint(self.characters) + varint(self.size)
        body += self.checksum
        if self.adapt:
            body += struct.pack("<d", self.adapt.lr) + varint(self.adapt.window)
        return body + struct.pack("<I", zlib.crc32(body))


def fingerprint(model: Model) -> bytes:
    """The model's content hash: everything that decides its predictions (configuration, vocabulary,
    weights in little-endian byte order)."""
    digest = hashlib.sha256(b"charrnn-model\0")
    digest.update(json.dumps(asdict(model.config), sort_keys=True).encode())
    digest.update(model.vocab.codepoints().astype("<i4").tobytes())
    digest.update(np.ascontiguousarray(model.flat, dtype=model.flat.dtype.newbyteorder("<")).tobytes())
    return digest.digest()[:DIGEST_BYTES]


def checksum(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()[:DIGEST_BYTES]


def varint(value: int) -> bytes:
    """Unsigned LEB128."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def parse(blob: bytes, name: str) -> tuple[Header, int]:
    """(header, offset of the payload) of a compressed file; CharrnnError naming `name` if it is not one."""
    if not blob:
        raise CharrnnError(f"{name} is empty: not a charrnn compressed file")
    if len(blob) < len(MAGIC) and MAGIC.startswith(blob):
        raise CharrnnError(f"{name} is truncated: it ends inside the header")
    if blob[:4] != MAGIC:
        raise CharrnnError(f"{name} is not a charrnn compressed file (no CRZ header)")
    if len(blob) < 6:
        raise CharrnnError(f"{name} is truncated: it ends inside the header")
    if blob[4] != FORMAT_VERSION:
        raise CharrnnError(f"{name}: compressed format version {blob[4]} is not supported "
                           f"(this charrnn reads version {FORMAT_VERSION})")  # fmt: skip
    reader = _Reader(blob, 5, name)
    flags = reader.take(1)[0]
    model = reader.take(DIGEST_BYTES)
    characters, size = reader.varint(), reader.varint()
    digest = reader.take(DIGEST_BYTES)
    adapt = None
    if flags & FLAG_ADAPT:
        adapt = Adaptation(struct.unpack("<d", reader.take(8))[0], reader.varint())
    if characters > size:  # every character is at least one byte of the original
        raise CharrnnError(f"{name} is corrupt: its header counts more characters than bytes")
    end = reader.position
    (stored,) = struct.unpack("<I", reader.take(4))
    if zlib.crc32(blob[:end]) != stored or flags & ~(FLAG_CRLF | FLAG_ADAPT):
        raise CharrnnError(f"{name} is corrupt: its header fails its CRC-32 check")
    return Header(bool(flags & FLAG_CRLF), model, characters, size, digest, adapt), reader.position


class _Reader:
    def __init__(self, blob: bytes, position: int, name: str) -> None:
        self.blob, self.position, self.name = blob, position, name

    def take(self, count: int) -> bytes:
        if self.position + count > len(self.blob):
            raise CharrnnError(f"{self.name} is truncated: it ends inside the header")
        piece = self.blob[self.position : self.position + count]
        self.position += count
        return piece

    def varint(self) -> int:
        value, shift = 0, 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value
            if shift > 63:
                raise CharrnnError(f"{self.name} is corrupt: a length in its header does not end")
