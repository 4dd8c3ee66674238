"""The command line's file rules for compress / decompress.

'-' is standard input or output. The output name defaults to the input's plus SUFFIX (compress) or minus
it (decompress), and to standard output when the input is standard input. An output is never the input
or the model, an existing file is replaced only with --force, compressed data is not written to a
terminal, and a file is written atomically (charrnn/atomic.py): a failure leaves no partial output.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..atomic import write_bytes_atomic
from ..errors import CharrnnError

SUFFIX = ".crz"
STREAM = "-"


def read_input(source: str) -> bytes:
    """The bytes of a file, or of standard input for '-'."""
    if source == STREAM:
        return sys.stdin.buffer.read()
    path = Path(source)
    if not path.exists():
        raise CharrnnError(f"{source} does not exist")
    if not path.is_file():
        raise CharrnnError(f"{source} is not a file")
    try:
        return path.read_bytes()
    except OSError as error:
        raise CharrnnError(f"cannot read {source}: {error.strerror or error}") from None


def output_name(source: str, output: str | None, compressing: bool) -> str:
    """Where the result goes (module docstring)."""
    if output is not None:
        return output
    if source == STREAM:
        return STREAM
    if compressing:
        return source + SUFFIX
    if source.endswith(SUFFIX) and len(source) > len(SUFFIX):
        return source[: -len(SUFFIX)]
    raise CharrnnError(f"{source} does not end in {SUFFIX}: name the output with -o (or -o - for standard output)")


def check_output(output: str, inputs: list[str], force: bool, binary: bool) -> None:
    """Refuse an output that is one of `inputs` (the text or compressed file, and the model), an
    existing file without `force`, or (binary data) a terminal."""
    if output == STREAM:
        if binary and stdout_is_terminal():
            raise CharrnnError("compressed data is not written to a terminal: use -o FILE or redirect standard output")
        return
    target = Path(output)
    for name in inputs:
        if name != STREAM and _same_file(Path(name), target):
            raise CharrnnError(f"the output {output} is an input of this command: refusing to overwrite it")
    if target.is_dir():
        raise CharrnnError(f"the output {output} is a directory")
    if target.exists() and not force:
        raise CharrnnError(f"{output} already exists (use --force to replace it)")


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def write_output(output: str, data: bytes) -> None:
    if output == STREAM:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    write_bytes_atomic(output, data)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return a.resolve() == b.resolve()
