"""Well-known corpora by name: the registry, the download cache, and `get_corpus`.

The registry is the package file `charrnn/data/registry.json` (see `corpora/README.md` for its fields
and how to add an entry). `get_corpus(name)` returns the path of a ready plain-text file in the cache
directory, downloading, verifying and extracting it the first time and reusing it afterwards with no
network access:

    from charrnn.corpora import get_corpus
    text = get_corpus("tinyshakespeare").read_text(encoding="utf-8")

Cache layout, under `$XDG_CACHE_HOME/charrnn` (default `~/.cache/charrnn`; the rule is cachedir.py's):
    <name>/<name>.txt     the ready corpus text
    <name>/<archive>      the verified download, when the text is extracted from an archive
    checksums.json        sha256 and size recorded on first download of corpora the registry has
                          no hash for, so later downloads are checked against them
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from .assemble import concatenate_tar_sources, extract_zip_member, python_stdlib_text
from .atomic import write_bytes_atomic
from .cachedir import cache_home
from .errors import CharrnnError
from .fetch import download

BUILTINS = ("python-stdlib",)
CHECKSUMS_FILE = "checksums.json"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Corpus:
    """One registry entry. `size` and `sha256` describe the downloaded file (None: not known)."""

    name: str
    url: str | None
    sha256: str | None
    size: int | None
    license: str
    description: str
    extract: dict[str, Any] | None = None
    builtin: str | None = None

    @property
    def archive_name(self) -> str:
        """File name of the download: the last part of the URL's path."""
        return PurePosixPath(urlparse(self.url or "").path).name or f"{self.name}.download"


def _check_entry(raw: Any, source: str) -> Corpus:
    """Validate one raw registry entry; every problem is a one-line `CharrnnError`."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise CharrnnError(f"registry {source}: every entry must be an object with a 'name'")
    name = raw["name"]

    def bad(problem: str) -> CharrnnError:
        return CharrnnError(f"registry {source}: corpus {name!r}: {problem}")

    if not _NAME.match(name):
        raise bad("names use lowercase letters, digits, '.', '_' and '-'")
    for key in ("url", "sha256", "size", "license", "description"):
        if key not in raw:
            raise bad(f"missing field {key!r}")
    url, sha256, size, builtin = raw["url"], raw["sha256"], raw["size"], raw.get("builtin")
    if builtin is not None and builtin not in BUILTINS:
        raise bad(f"unknown builtin {builtin!r} (known: {', '.join(BUILTINS)})")
    if builtin is None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise bad("url must be an http(s) URL")
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256.match(sha256)):
        raise bad("sha256 must be 64 lowercase hex digits or null")
    if size is not None and not (isinstance(size, int) and size > 0):
        raise bad("size must be a positive integer or null")
    extract = raw.get("extract")
    if extract is not None:
        kind = extract.get("format") if isinstance(extract, dict) else None
        if kind == "zip" and not isinstance(extract.get("member"), str):
            raise bad("a zip extract needs a 'member'")
        if kind == "tar" and not (
            isinstance(extract.get("include"), list) and "{path}" in extract.get("header", "{path}")
        ):
            raise bad("a tar extract needs 'include' (a list of patterns) and a header with {path}")
        if kind not in ("zip", "tar"):
            raise bad("extract format must be 'zip' or 'tar'")
    return Corpus(name, url, sha256, size, str(raw["license"]), str(raw["description"]), extract, builtin)


def load_registry(path: Path | str | None = None) -> dict[str, Corpus]:
    """Read a registry file (default: the packaged `charrnn/data/registry.json`), name -> Corpus."""
    try:
        if path is None:
            source = "charrnn/data/registry.json"
            text = resources.files("charrnn").joinpath("data/registry.json").read_text(encoding="utf-8")
        else:
            source = str(path)
            text = Path(path).read_text(encoding="utf-8")
        raw = json.loads(text)
    except OSError as error:
        raise CharrnnError(f"cannot read registry {path}: {error.strerror or error}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CharrnnError(f"registry {source} is not valid JSON: {error}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("corpora"), list):
        raise CharrnnError(f"registry {source}: expected an object with a 'corpora' list")
    registry: dict[str, Corpus] = {}
    for entry in raw["corpora"]:
        corpus = _check_entry(entry, source)
        if corpus.name in registry:
            raise CharrnnError(f"registry {source}: corpus {corpus.name!r} appears twice")
        registry[corpus.name] = corpus
    return registry


def list_corpora(registry: dict[str, Corpus] | None = None) -> list[Corpus]:
    """The registry's corpora, in file order."""
    return list((load_registry() if registry is None else registry).values())


def _read_checksums(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CharrnnError(f"cannot read recorded checksums {path}: {error} (delete it to start over)") from None
    return records if isinstance(records, dict) else {}


def _fetch(corpus: Corpus, target: Path, cache: Path, progress: bool, log: Callable[[str], None]) -> None:
    """Download `corpus` to `target`, checked against the registry hash or the one recorded earlier."""
    checksums_path = cache / CHECKSUMS_FILE
    records = _read_checksums(checksums_path)
    recorded = records.get(corpus.name)
    if not (isinstance(recorded, dict) and recorded.get("url") == corpus.url):
        recorded = None
    expected_sha256, origin = corpus.sha256, " (registry)"
    if expected_sha256 is None and recorded is not None:
        expected_sha256 = recorded.get("sha256")
        origin = f" (recorded on first download in {checksums_path})"
    expected_size = corpus.size if corpus.size is not None else (recorded or {}).get("size")
    result = download(
        corpus.url or "",
        target,
        label=f"corpus {corpus.name!r}",
        expected_sha256=expected_sha256,
        expected_size=expected_size,
        sha256_origin=origin,
        progress=progress,
    )
    if corpus.sha256 is None and recorded is None:
        records[corpus.name] = {"url": corpus.url, "sha256": result.sha256, "size": result.size}
        write_bytes_atomic(checksums_path, (json.dumps(records, indent=2, sort_keys=True) + "\n").encode(), True)
        log(
            f"corpus {corpus.name!r}: the registry pins no sha256; first download has sha256 {result.sha256}"
            f" ({result.size:,} bytes), recorded in {checksums_path} to check later downloads"
        )


def _is_ready(corpus: Corpus, ready: Path) -> bool:
    """A ready file exists and has the expected size (it is only ever renamed into place verified)."""
    if not ready.is_file():
        return False
    extract = corpus.extract or {}
    expected = extract.get("size") if corpus.extract else corpus.size
    return expected is None or ready.stat().st_size == expected


def get_corpus(
    name: str,
    cache_dir: Path | str | None = None,
    progress: bool = True,
    registry: dict[str, Corpus] | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Path of the ready plain-text corpus `name`, downloading and extracting it if needed.

    `cache_dir` defaults to `cachedir.cache_home()`; `progress` shows a tqdm bar on stderr; `registry`
    replaces the packaged one; `log` receives one-line notices (such as a first-download hash).
    A corpus already in the cache is returned without touching the network. Raises `CharrnnError`
    for an unknown name or any failed download, check or extraction, leaving no partial file behind.
    """
    registry = load_registry() if registry is None else registry
    if name not in registry:
        raise CharrnnError(f"unknown corpus {name!r} (known: {', '.join(registry)})")
    corpus = registry[name]
    log = log or (lambda message: None)
    cache = Path(cache_dir) if cache_dir is not None else cache_home()
    folder = cache / corpus.name
    ready = folder / f"{corpus.name}.txt"
    try:
        if corpus.builtin is not None:
            return _build_builtin(corpus, ready)
        if _is_ready(corpus, ready):
            return ready
        if corpus.extract is None:
            _fetch(corpus, ready, cache, progress, log)
            return ready
        archive = folder / corpus.archive_name
        if not archive.is_file() or (corpus.size is not None and archive.stat().st_size != corpus.size):
            _fetch(corpus, archive, cache, progress, log)
        _extract(corpus, archive, ready, log)
    except OSError as error:  # a read-only or full cache; download errors are already CharrnnErrors
        problem = error.strerror or str(error)
        raise CharrnnError(f"corpus {name!r}: cannot write to cache {cache}: {problem}") from None
    return ready


def _extract(corpus: Corpus, archive: Path, ready: Path, log: Callable[[str], None]) -> None:
    extract = corpus.extract or {}
    label = f"corpus {corpus.name!r}"
    if extract["format"] == "zip":
        extract_zip_member(archive, extract["member"], ready, extract.get("size"), label)
        return
    header = extract.get("header", "/* ==== {path} ==== */")
    written, skipped = concatenate_tar_sources(archive, extract["include"], header, ready, label)
    log(f"{label}: concatenated {written:,} files, skipped {skipped:,} that are not UTF-8")


def _build_builtin(corpus: Corpus, ready: Path) -> Path:
    """Assemble a built-in corpus; rewrite the cached file only when the content changed."""
    data = python_stdlib_text().encode("utf-8")
    if not (ready.is_file() and ready.read_bytes() == data):
        write_bytes_atomic(ready, data, make_parents=True)
    return ready
