"""The one text decoder: the bytes of a source -> text, block by block.

Everything charrnn reads as text goes through `decoded_blocks` — training corpora (pass by pass, through
the id cache), texts to score or attribute, primes, baseline texts — so they agree by construction:

  - Strict decoding (UTF-8 by default; `encoding` is any Python text codec): an invalid byte is an error
    naming the source, its byte offset, the byte, and the line and column where it sits, unless
    errors="replace", which turns it into U+FFFD.
  - Incremental: a multi-byte character that straddles two blocks stays whole, and the offset of an
    invalid byte is its true offset in the source (in the decompressed data of a compressed file,
    sources.py), whatever the block size.
  - Newlines: "\\r\\n" becomes "\\n", so "\\r" does not become a character of the model. A "\\r" that ends
    a block is held back until the next block shows whether a "\\n" follows, so pairs split across blocks
    are normalised too. Each source is normalised on its own; a lone "\\r" is kept.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import CharrnnError
from .sources import Source, corpus_sources

DEFAULT_BLOCK_SIZE = 4 << 20
ERRORS = ("strict", "replace")
SURROGATE = re.compile("[\ud800-\udfff]")
NO_SURROGATES = ("utf-8", "ascii", "latin-1", "iso8859-1")  # codecs that never decode to a lone surrogate


def check_decoding(encoding: str, errors: str) -> None:
    """CharrnnError unless `encoding` is a text codec and `errors` is strict or replace."""
    if errors not in ERRORS:
        raise CharrnnError(f"--errors must be strict or replace, got {errors!r}")
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        raise CharrnnError(f"unknown encoding {encoding!r}") from None
    if not getattr(info, "_is_text_encoding", True):  # base64, zlib, rot13...: bytes to bytes, or str to str
        raise CharrnnError(f"--encoding {encoding!r} is not a text encoding")


def decoded_blocks(
    source: Source,
    encoding: str = "utf-8",
    errors: str = "strict",
    block_size: int = DEFAULT_BLOCK_SIZE,
    on_bytes: Callable[[bytes, int], None] | None = None,
) -> Iterator[str]:
    """Decoded, newline-normalised text of `source`, block by block (see the module docstring).
    `on_bytes(data, consumed)` sees every block of (decompressed) bytes as read, and how many bytes of
    the file on disk that took so far (the id cache hashes the former and shows the latter)."""
    check_decoding(encoding, errors)
    decoder = codecs.getincrementaldecoder(encoding)(errors=errors)
    # some codecs (unicode_escape, utf-7, ...) can produce lone surrogates, which are not characters: no
    # text may hold them (they cannot be written back as UTF-8 or stored in a vocabulary)
    check_surrogates = codecs.lookup(encoding).name not in NO_SURROGATES
    offset, held_cr, lines, column = 0, "", 0, 0  # lines/column: of the text yielded so far (for messages)
    with source.open() as reader:
        while True:
            raw = reader.read(block_size)
            if on_bytes is not None:
                on_bytes(raw, reader.consumed)
            pending = len(decoder.getstate()[0])  # bytes of an unfinished character from the last block
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as error:
                where = _invalid(error, source, encoding, offset - pending, held_cr, lines, column)
                raise CharrnnError(where) from None
            except (UnicodeError, ValueError) as error:  # a codec that fails another way
                raise CharrnnError(f"{source.name}: cannot decode as {encoding}: {error}") from None
            offset += len(raw)
            text, held_cr = held_cr + text, ""
            if raw and text.endswith("\r"):  # a "\n" may start the next block
                text, held_cr = text[:-1], "\r"
            if "\r" in text:
                text = text.replace("\r\n", "\n")
            if check_surrogates and (found := SURROGATE.search(text)):
                at_line, at_column = _advance(lines, column, text[: found.start()])
                raise CharrnnError(f"{source.name}: decoding as {encoding} gives a lone surrogate "
                                   f"U+{ord(found.group()):04X} at line {at_line + 1}, column {at_column + 1}, "
                                   "which is not a character; use another --encoding")  # fmt: skip
            if text:
                lines, column = _advance(lines, column, text)
                yield text
            if not raw:
                return


def _advance(lines: int, column: int, text: str) -> tuple[int, int]:
    """(newlines, characters after the last newline) once `text` follows a text that had (lines, column)."""
    newlines = text.count("\n")
    if newlines:
        return lines + newlines, len(text) - 1 - text.rindex("\n")
    return lines, column + len(text)


def _invalid(error: UnicodeDecodeError, source: Source, encoding: str, start: int, held_cr: str, lines: int,
             column: int) -> str:  # fmt: skip
    """The message for an invalid byte: where it is, as byte offset and as line and column."""
    before = codecs.decode(error.object[: error.start], encoding, "replace")  # valid up to the bad byte
    lines, column = _advance(lines, column, (held_cr + before).replace("\r\n", "\n"))
    of = " of the decompressed data" if source.compression else ""
    return (
        f"{source.name}: invalid {encoding} at byte offset {start + error.start}{of} (byte "
        f"0x{error.object[error.start]:02x}), line {lines + 1}, column {column + 1}; use --errors replace to "
        "accept it or --encoding to change"
    )


def read_text(paths: list[str | Path], encoding: str = "utf-8", errors: str = "strict") -> str:
    """The whole decoded text of the given files, directories or "-" (standard input), concatenated.
    For inputs that fit in memory (a text to score); training corpora are streamed by idcache.py."""
    check_decoding(encoding, errors)
    sources = corpus_sources(paths).sources
    text = "".join(block for source in sources for block in decoded_blocks(source, encoding, errors))
    if not text:
        raise CharrnnError(f"corpus {', '.join(str(p) for p in paths)} is empty")
    return text
