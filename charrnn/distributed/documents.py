"""Documents to process: files, directories and JSON-lines inputs, read lazily in a fixed order, cut into tasks.

Inputs, in the order given:

    FILE            one document; its id is the path as given
    DIRECTORY       every non-hidden file below it, in sorted path order, one document each (id: its path);
                    a *.jsonl / *.ndjson file found there is read as JSON lines
    FILE.jsonl      one document per non-blank line, {"id": <string or integer>, "text": <string>}
    (also .ndjson)

A file's bytes are decoded (strict UTF-8, "\\r\\n" -> "\\n", as for training) inside the task that scores
it, so a file with a bad byte fails there, alone: it becomes an error row in the output and the run goes
on. A JSON line that cannot be parsed, or lacks its id or text, is such an error row too, keyed
"<path>:<line>". Two documents with the same id are refused before any work starts (`scan_inputs`): results
are keyed by id, and `--resume-output` skips an id that is already in the output.

Tasks (`form_tasks`) are consecutive runs of documents holding about `task_chars` characters. They depend
on the input order and the model only — never on the number of workers — so every engine scores the same
documents together and writes bit-identical results (batch.py: a score depends on which sequences share
its batch).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import CharrnnError

JSONL_SUFFIXES = (".jsonl", ".ndjson")
MAX_DOCS_PER_TASK = 4096  # many tiny documents: per-document work (encoding, one output row) adds up too


@dataclass(frozen=True)
class Document:
    """One document: its id (a string, or an integer from JSON lines) and either its raw bytes (a file, decoded
    by `text()` in the task), its text (a JSON line), or the reason it cannot be read."""

    id: str | int
    raw: bytes | None = None
    body: str | None = None
    error: str | None = None

    @property
    def size(self) -> int:
        """Characters (bytes, for a file not yet decoded): what a task's size is measured in."""
        return len(self.raw) if self.raw is not None else len(self.body or "")

    def text(self) -> str:
        """The decoded, newline-normalised text; CharrnnError (the row's error) when it cannot be had."""
        if self.error is not None:
            raise CharrnnError(self.error)
        if self.body is not None:
            return self.body
        assert self.raw is not None
        try:
            return self.raw.decode("utf-8").replace("\r\n", "\n")
        except UnicodeDecodeError as error:
            raise CharrnnError(
                f"invalid utf-8 at byte offset {error.start} (byte 0x{self.raw[error.start]:02x})"
            ) from None


def input_files(inputs: Iterable[str | Path]) -> list[Path]:
    """Inputs expanded into files, in the order documents are read (module docstring)."""
    files: list[Path] = []
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise CharrnnError(f"input {path} does not exist")
        if path.is_dir():
            found = [f for f in sorted(path.rglob("*")) if f.is_file() and not _hidden(f, path)]
            if not found:
                raise CharrnnError(f"input directory {path} holds no files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise CharrnnError(f"input {path} is not a regular file or a directory")
    if not files:
        raise CharrnnError("no input documents given")
    return files


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def is_jsonl(path: Path) -> bool:
    return path.suffix.lower() in JSONL_SUFFIXES


def iter_documents(inputs: Iterable[str | Path]) -> Iterator[Document]:
    """Every document of the inputs, lazily, in input order (one file or one line in memory at a time)."""
    for path in input_files(inputs):
        if is_jsonl(path):
            yield from (document for _, document in _numbered(path))
            continue
        try:
            yield Document(str(path), raw=path.read_bytes())
        except OSError as error:
            yield Document(str(path), error=f"cannot read {path}: {error.strerror or error}")


def _parse_line(path: Path, number: int, line: bytes) -> Document:
    where = f"{path}:{number}"
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as error:
        return Document(where, error=f"{where}: invalid utf-8 at byte {error.start} of the line")
    except (json.JSONDecodeError, RecursionError) as error:
        return Document(where, error=f"{where}: not valid JSON ({getattr(error, 'msg', 'too deeply nested')})")
    if not isinstance(record, dict):
        return Document(where, error=f'{where}: a line must be a JSON object {{"id": ..., "text": ...}}')
    doc_id = record.get("id")
    if isinstance(doc_id, bool) or not isinstance(doc_id, str | int):
        return Document(where, error=f'{where}: "id" must be a string or an integer, got {_kind(doc_id)}')
    text = record.get("text")
    if not isinstance(text, str):
        return Document(doc_id, error=f'{where}: "text" must be a string, got {_kind(text)}')
    return Document(doc_id, body=text.replace("\r\n", "\n"))


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__.replace("dict", "an object").replace("list", "a list")


@dataclass(frozen=True)
class InputScan:
    documents: int
    characters: int  # bytes of files, characters of JSON texts


def scan_inputs(inputs: Iterable[str | Path]) -> InputScan:
    """One pass before the run: how many documents (for the progress bar), and no id used twice (else one
    CharrnnError naming both places)."""
    seen: dict[str | int, str] = {}
    documents = characters = 0
    for path in input_files(inputs):
        entries = ((d.id, f"{path}:{n}", d.size) for n, d in _numbered(path)) if is_jsonl(path) else \
            [(str(path), str(path), _file_size(path))]  # fmt: skip
        for doc_id, where, size in entries:
            if doc_id in seen:
                raise CharrnnError(f"{where}: duplicate document id {doc_id!r} (first at {seen[doc_id]})")
            seen[doc_id] = where
            documents += 1
            characters += size
    return InputScan(documents, characters)


def _numbered(path: Path) -> Iterator[tuple[int, Document]]:
    """(line number, document) of each non-blank line of a JSON-lines file."""
    try:
        handle = open(path, "rb")  # binary: each line is decoded on its own, so one bad line stays one error row
    except OSError as error:
        raise CharrnnError(f"cannot read {path}: {error.strerror or error}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, _parse_line(path, number, line)


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def form_tasks(documents: Iterable[Document], task_chars: int,
               max_docs: int = MAX_DOCS_PER_TASK) -> Iterator[list[Document]]:  # fmt: skip
    """Consecutive documents, a task closing once it holds `task_chars` characters or `max_docs` documents."""
    if task_chars < 1 or max_docs < 1:
        raise CharrnnError(f"task size must be >= 1 character and document, got {task_chars} and {max_docs}")
    task: list[Document] = []
    size = 0
    for document in documents:
        task.append(document)
        size += document.size
        if size >= task_chars or len(task) >= max_docs:
            yield task
            task, size = [], 0
    if task:
        yield task
