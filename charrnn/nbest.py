"""Reading n-best lists (the candidate readings of a line that OCR or speech recognisers produce).

Two formats, chosen by `fmt` ("auto": JSON lines when the first non-blank line starts with "{"):

  - JSON lines: one object per non-blank line,
        {"id": "p3-l17", "candidates": ["the cat", "tbe cat", ...], "scores": [-1.2, -3.4, ...]}
    `candidates` (required) is a list of strings; `id` (optional: a string, a number or null; default
    the list's number, 1-based) is echoed in the output; `scores` (optional) are the recogniser's
    log-scores, one finite number per candidate. Other keys are ignored.
  - plain text: one candidate per line, lists separated by blank lines (empty or only whitespace); a
    list's id is its number. Candidates keep their spaces, leading and trailing ones included.

A candidate is one line: a line break ("\\n" or "\\r") inside one is an error. A list needs at least
two candidates (nothing to rank otherwise) unless `allow_single`; an empty list is always an error.
Every problem names the input, its line and what is wrong. By default the first problem raises a
`CharrnnError` (the CLI prints it as one line and exits 1, before anything is scored); with
`keep_going` each bad list becomes a `BadList` in its place, so output stays aligned with the input.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CharrnnError

FORMATS = ("auto", "jsonl", "text")


@dataclass(frozen=True)
class NBest:
    """One list of candidate readings."""

    number: int  # 1-based position of the list in the input
    line: int  # 1-based input line where it starts
    id: Any  # from the input, or `number`
    candidates: list[str]
    scores: list[float] | None  # recogniser log-scores, one per candidate


@dataclass(frozen=True)
class BadList:
    """A list that could not be read (only with `keep_going`)."""

    number: int
    line: int
    id: Any  # None when the line could not be read as an object with an id
    error: str


class _Bad(ValueError):
    """A problem with a list, and the list's id when it was read before the problem."""

    def __init__(self, message: str, list_id: Any = None):
        super().__init__(message)
        self.list_id = list_id


def _type_name(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
             dict: "an object", type(None): "null"}  # fmt: skip
    return names.get(type(value), type(value).__name__)


def _check_candidates(candidates: list[str], allow_single: bool) -> None:
    if not candidates:
        raise ValueError("the list has no candidates")
    if len(candidates) == 1 and not allow_single:
        raise ValueError("the list has one candidate: nothing to rank (use --allow-single to pass such lists through)")
    for i, candidate in enumerate(candidates):
        if "\n" in candidate or "\r" in candidate:
            raise ValueError(f"candidate {i + 1} contains a line break (a candidate is one line)")


def _from_json(line_text: str, number: int, allow_single: bool) -> NBest:
    """One JSON line -> NBest, or ValueError naming the problem (JSONDecodeError is a ValueError)."""
    try:
        record = json.loads(line_text)
    except json.JSONDecodeError as error:
        raise _Bad(f"not valid JSON: {error.msg} (column {error.colno})") from None
    if not isinstance(record, dict):
        raise _Bad(f'expected a JSON object with "candidates", got {_type_name(record)}')
    list_id = record.get("id", number)
    if isinstance(list_id, (bool, list, dict)):
        raise _Bad(f'"id" must be a string, a number or null, got {_type_name(list_id)}')
    try:
        candidates, scores = _fields(record, allow_single)
    except ValueError as error:
        raise _Bad(str(error), list_id) from None
    return NBest(number, 0, list_id, candidates, scores)


def _fields(record: dict, allow_single: bool) -> tuple[list[str], list[float] | None]:
    if "candidates" not in record:
        raise ValueError('the object has no "candidates"')
    candidates = record["candidates"]
    if not isinstance(candidates, list):
        raise ValueError(f'"candidates" must be a list of strings, got {_type_name(candidates)}')
    for i, candidate in enumerate(candidates):
        if not isinstance(candidate, str):
            raise ValueError(f"candidate {i + 1} is {_type_name(candidate)}, not a string")
    _check_candidates(candidates, allow_single)
    scores = record.get("scores")
    if scores is None:
        return candidates, None
    if not isinstance(scores, list):
        raise ValueError(f'"scores" must be a list of numbers, got {_type_name(scores)}')
    if len(scores) != len(candidates):
        raise ValueError(f"{len(scores)} scores for {len(candidates)} candidates")
    for i, score in enumerate(scores):
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            shown = score if isinstance(score, (int, float)) and not isinstance(score, bool) else _type_name(score)
            raise ValueError(f"score {i + 1} must be a finite number, got {shown}")
    return candidates, [float(s) for s in scores]


def parse_nbest(text: str, where: str = "<stdin>", fmt: str = "auto", allow_single: bool = False,
                keep_going: bool = False) -> list[NBest | BadList]:  # fmt: skip
    """The n-best lists of `text` (formats and rules in the module docstring), in input order. `where`
    names the input in messages."""
    if fmt not in FORMATS:
        raise CharrnnError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start another
    if fmt == "auto":
        first = next((line for line in lines if line.strip()), "")
        fmt = "jsonl" if first.lstrip().startswith("{") else "text"
    out: list[NBest | BadList] = []

    def add(line_number: int, make) -> None:
        number = len(out) + 1
        try:
            nbest = make(number)
        except ValueError as error:
            if not keep_going:
                raise CharrnnError(f"{where} line {line_number}: {error}") from None
            list_id = getattr(error, "list_id", None) if fmt == "jsonl" else number
            out.append(BadList(number, line_number, list_id, str(error)))
            return
        out.append(NBest(number, line_number, nbest.id, nbest.candidates, nbest.scores))

    if fmt == "jsonl":
        for index, line in enumerate(lines):
            if line.strip():
                add(index + 1, lambda number, line=line: _from_json(line, number, allow_single))
    else:
        group: list[str] = []
        for index, line in enumerate([*lines, ""]):
            if line.strip():
                group.append(line)
                continue
            if group:
                candidates, group = group, []

                def make(number, candidates=candidates):
                    _check_candidates(candidates, allow_single)
                    return NBest(number, 0, number, candidates, None)

                add(index + 1 - len(candidates), make)
    if not out:
        raise CharrnnError(f"{where} has no n-best lists")
    return out


def read_input(source: str | Path) -> tuple[str, str]:
    """(text, display name) of a file or of standard input ("-"), strict UTF-8 with "\r\n" -> "\n" (as
    for training); an invalid byte is a one-line error naming its offset."""
    if str(source) != "-":
        from .score import read_source

        return read_source(source)
    raw = sys.stdin.buffer.read()
    try:
        return raw.decode("utf-8").replace("\r\n", "\n"), "<stdin>"
    except UnicodeDecodeError as error:
        byte = raw[error.start]
        raise CharrnnError(f"<stdin>: invalid UTF-8 at byte offset {error.start} (byte 0x{byte:02x})") from None
