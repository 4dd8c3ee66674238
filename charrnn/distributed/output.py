"""Results as JSON lines, one per document, keyed by id, written in input order, resumable.

Rows arrive in completion order; `OrderedWriter` holds a finished task's rows until every earlier task's are
written, so the output is always a prefix of the input order and the same whatever the number of workers or
their speed. Each task's rows are flushed together, so an interrupted run (Ctrl-C, a crash, a lost driver)
leaves only whole tasks' rows behind — at most a last line cut short, which resuming removes.

`--resume-output` continues an existing output: its ids are skipped (a task whose documents are all there is
not run at all; one with some missing is run whole, so every document is scored in the same company as in
an uninterrupted run, and only the missing rows are written). Beside the output, `<output>.run.json`
records what produced it (job kind, models by sha256, options); resuming with anything else is refused.
An error row counts as done: its error (a bad byte, too short) would be the same again.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TextIO

from ..atomic import write_bytes_atomic
from ..errors import CharrnnError


def run_record_path(output: Path) -> Path:
    return output.with_name(output.name + ".run.json")


def read_done(path: Path) -> set:
    """Ids already in an output; a last line cut short by an interruption is removed from the file."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CharrnnError(f"cannot read {path}: {error.strerror or error}") from None
    complete = data.rfind(b"\n") + 1
    if complete < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(complete)
    done = set()
    for number, line in enumerate(data[:complete].splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            done.add(row["id"])
        except (ValueError, KeyError, TypeError):
            raise CharrnnError(f"{path}:{number}: not a result line of charrnn (JSON with an \"id\"); "
                               "fix or remove it before resuming") from None  # fmt: skip
    return done


class OrderedWriter:
    """Writes rows to `path` (or `stream`, standard output by default, when path is None) in task order."""

    def __init__(self, path: Path | None, resume: bool, run: dict, stream: TextIO | None = None):
        self.path, self.done = path, set()
        self.pending: dict[int, list[dict]] = {}
        self.next_seq = 0
        self.written = self.failed = 0
        if path is None:
            if resume:
                raise CharrnnError("--resume-output needs an output file (-o/--output)")
            self.handle = stream or sys.stdout
            return
        self.check(path, resume, run)
        record = run_record_path(path)
        if resume and path.exists():
            self.done = read_done(path)
        write_bytes_atomic(record, (json.dumps(run, indent=2) + "\n").encode())
        try:
            self.handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 -- closed in close()
        except OSError as error:
            raise CharrnnError(f"cannot write {path}: {error.strerror or error}") from None

    @staticmethod
    def check(path: Path, resume: bool, run: dict) -> None:
        """Refuse (one CharrnnError) an output that cannot be written or must not be: changes nothing."""
        if path.is_dir() or not path.parent.is_dir():
            raise CharrnnError(f"cannot write {path}: " + ("it is a directory" if path.is_dir() else
                                                          f"directory {path.parent} does not exist"))  # fmt: skip
        if not path.exists() or path.stat().st_size == 0:
            return
        if not resume:
            raise CharrnnError(f"{path} exists: pass --resume-output to continue it (its ids are skipped), "
                               "or choose another output")  # fmt: skip
        record = run_record_path(path)
        if not record.exists():
            return
        try:
            before = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise CharrnnError(f"{record} is unreadable; remove it to resume regardless") from None
        if before != run:
            differs = sorted(key for key in set(before) | set(run) if before.get(key) != run.get(key))
            raise CharrnnError(f"{record.name[:-9]} was written by a different run ({', '.join(differs)} "
                               f"differ: see {record}); resume with the same job, or write elsewhere")  # fmt: skip

    def add(self, seq: int, rows: list[dict]) -> None:
        """Task `seq`'s rows: written now if every earlier task's are, else held until they are."""
        self.pending[seq] = rows
        while self.next_seq in self.pending:
            self._write(self.pending.pop(self.next_seq))
            self.next_seq += 1

    def _write(self, rows: list[dict]) -> None:
        lines = []
        for row in rows:
            if row["id"] in self.done:
                continue
            lines.append(json.dumps(row, ensure_ascii=False) + "\n")
            self.written += 1
            self.failed += "error" in row
        self.handle.write("".join(lines))
        self.handle.flush()

    def close(self) -> None:
        self.handle.flush()
        if self.path is not None:
            os.fsync(self.handle.fileno())
            self.handle.close()
