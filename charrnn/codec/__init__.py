"""Lossless compression with a character model: arithmetic coding of each character with the model's
next-character distribution, bit-identical on every machine (see charrnn/kernels/strict.py and
charrnn/kernels/coding.py for how; fileformat.py for the file).

    api         compress / decompress bytes (the library behind `charrnn compress` / `decompress`)
    coder       the typed wrappers around the compiled coder (kernels/coding.py), a block at a time
    text        bytes <-> the coder's symbols: any bytes round-trip (surrogateescape), CRLF as LF
    fileformat  the header: version, model fingerprint, lengths, checksum
    files       the command line's file rules: '-' for stdin/stdout, never overwrite the input, atomic output
"""

from .api import CodingStats, compress, decompress, read_header
from .fileformat import DEFAULT_ADAPTATION, FORMAT_VERSION, Adaptation, Header, fingerprint

__all__ = [
    "compress",
    "decompress",
    "read_header",
    "fingerprint",
    "CodingStats",
    "Header",
    "Adaptation",
    "FORMAT_VERSION",
    "DEFAULT_ADAPTATION",
]
