"""Turn downloaded archives, or files already on this machine, into one plain-text corpus file.

  - `extract_zip_member`: one member of a zip archive (enwik8, text8), size-checked;
  - `concatenate_tar_sources`: every matching file of a tarball (the Linux kernel's *.c and *.h),
    in sorted path order, each under a header line, skipping files that are not UTF-8;
  - `python_stdlib_text`: the built-in offline corpus, this Python's own standard-library sources.

Every writer goes through `atomic.atomic_writer`, so a corpus file exists only when complete.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import sysconfig
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from .atomic import atomic_writer
from .errors import CharrnnError

# Directory names whose files never go into the stdlib corpus: test suites (large, repetitive, full of
# deliberately odd code) and third-party packages (they differ between machines).
STDLIB_EXCLUDED_DIRS = frozenset({"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"})
STDLIB_MAX_BYTES = 1_500_000


def extract_zip_member(archive: Path, member: str, out_path: Path, expected_size: int | None, label: str) -> None:
    """Write zip member `member` of `archive` to `out_path`, checking its size when known."""
    try:
        with zipfile.ZipFile(archive) as zipped, atomic_writer(out_path, make_parents=True) as out:
            with zipped.open(member) as source:
                shutil.copyfileobj(source, out, 1 << 20)
            written = out.tell()
            if expected_size is not None and written != expected_size:
                raise CharrnnError(
                    f"{label}: member {member!r} of {archive} has {written:,} bytes, expected {expected_size:,}"
                )
    except KeyError:
        raise CharrnnError(f"{label}: {archive} has no member {member!r}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
        raise CharrnnError(f"{label}: {archive} is not a readable zip archive ({error})") from None


def concatenate_tar_sources(
    archive: Path, include: list[str], header: str, out_path: Path, label: str
) -> tuple[int, int]:
    """Concatenate the regular files of `archive` whose base name matches a pattern in `include`.

    Files are written in sorted path order, each preceded by `header.format(path=...)` on its own line;
    files that are not valid UTF-8 are skipped. Returns (files written, files skipped).

    A compressed tarball can only be read front to back cheaply (seeking back in an .xz stream means
    decompressing again from the start), so one streaming pass copies the matching files into a scratch
    file, remembering where each landed, and a second pass writes them out in sorted order.
    """
    spans: dict[str, tuple[int, int]] = {}
    skipped = 0
    with tempfile.TemporaryFile(dir=out_path.parent) as scratch:
        try:
            with tarfile.open(archive, mode="r|*") as tar:
                for member in tar:
                    name = PurePosixPath(member.name).name
                    if not member.isfile() or not any(fnmatch.fnmatchcase(name, p) for p in include):
                        continue
                    data = tar.extractfile(member).read()
                    try:
                        data.decode("utf-8")
                    except UnicodeDecodeError:
                        skipped += 1
                        continue
                    spans[member.name] = (scratch.tell(), len(data))
                    scratch.write(data)
        except (tarfile.TarError, EOFError, OSError) as error:
            raise CharrnnError(f"{label}: cannot read tar archive {archive} ({error})") from None
        with atomic_writer(out_path, make_parents=True) as out:
            for path in sorted(spans):
                offset, size = spans[path]
                scratch.seek(offset)
                data = scratch.read(size)
                out.write(header.format(path=path).encode("utf-8") + b"\n")
                out.write(data if data.endswith(b"\n") else data + b"\n")
    return len(spans), skipped


def stdlib_source_files(root: Path) -> list[PurePosixPath]:
    """Relative paths of the .py files under `root`, sorted, without test and third-party directories."""
    paths = []
    for directory, subdirs, files in os.walk(root):
        # prune in place so os.walk never descends into site-packages or test suites
        subdirs[:] = [d for d in subdirs if d not in STDLIB_EXCLUDED_DIRS]
        relative_dir = PurePosixPath(Path(directory).relative_to(root).as_posix())
        paths += [relative_dir / f for f in files if f.endswith(".py") and not f.startswith("test_")]
    return sorted(paths, key=str)  # plain string order, the same on every Python version


def python_stdlib_text(root: Path | None = None, max_bytes: int = STDLIB_MAX_BYTES) -> str:
    """The offline corpus: standard-library sources concatenated, at most `max_bytes` of UTF-8.

    Each file is preceded by `# ==== relative/path.py ====`. Files are taken in sorted path order and the
    text stops before the first file that would pass `max_bytes` (so it ends at a file boundary). Files
    that are not UTF-8 are skipped. The result is the same on every run with the same Python.
    """
    root = Path(sysconfig.get_paths()["stdlib"]) if root is None else root
    parts: list[str] = []
    total = 0
    for relative in stdlib_source_files(root):
        try:
            source = (root / relative).read_bytes().decode("utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        source = source.replace("\r\n", "\n")
        if not source.endswith("\n"):
            source += "\n"
        piece = f"# ==== {relative} ====\n{source}"
        size = len(piece.encode("utf-8"))
        if total + size > max_bytes:
            break
        parts.append(piece)
        total += size
    if not parts:
        raise CharrnnError(f"no Python standard-library sources found under {root}")
    return "".join(parts)
