"""Verified HTTP downloads (standard library only), written through `atomic.atomic_writer`.

Nothing here ever leaves a partial or unverified file under its final name: data goes to a temporary
file in the destination's directory (so the final `os.replace` is an atomic rename on the same file
system), is flushed and fsync'ed, checked, and only then renamed. On any failure, including Ctrl-C, the
temporary file is removed.
"""

from __future__ import annotations

import hashlib
import http.client
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .atomic import atomic_writer
from .errors import CharrnnError

CHUNK_BYTES = 1 << 16
TIMEOUT_SECONDS = 60


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Downloaded:
    """What a finished download was: its size in bytes and hex sha256."""

    size: int
    sha256: str


def download(
    url: str,
    path: Path,
    *,
    label: str,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    sha256_origin: str = "",
    progress: bool = True,
) -> Downloaded:
    """Download `url` to `path`, verifying size and sha256 when given, atomically.

    `label` names the download in error messages and on the progress bar (e.g. "corpus 'enwik8'");
    `sha256_origin` says where the expected hash came from, for the mismatch message.
    Raises `CharrnnError` (one line: label, URL, problem) on an HTTP error, a refused or dropped
    connection, a body shorter than its Content-Length, or a wrong size or checksum; nothing is then
    left under `path` or as a temporary file.
    """

    def fail(problem: str) -> CharrnnError:
        return CharrnnError(f"{label}: download of {url} failed: {problem}")

    digest = hashlib.sha256()
    received = 0
    try:
        with (
            atomic_writer(path, make_parents=True) as out,
            urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response,
        ):
            announced = response.headers.get("Content-Length")
            announced = int(announced) if announced and announced.isdigit() else None
            if expected_size is not None and announced is not None and announced != expected_size:
                raise fail(f"server announces {announced:,} bytes, expected {expected_size:,}")
            bar = tqdm(
                total=announced or expected_size,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=label,
                file=sys.stderr,
                disable=not progress,
                leave=False,
            )
            with bar:
                for chunk in iter(lambda: response.read(CHUNK_BYTES), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            # http.client returns b"" rather than raising when the peer closes early, so count bytes
            if announced is not None and received != announced:
                raise fail(f"connection dropped after {received:,} of {announced:,} bytes")
            if expected_size is not None and received != expected_size:
                raise fail(f"got {received:,} bytes, expected {expected_size:,}")
            actual = digest.hexdigest()
            if expected_sha256 is not None and actual != expected_sha256.lower():
                raise fail(f"sha256 mismatch: expected {expected_sha256}{sha256_origin}, got {actual}")
    except CharrnnError:
        raise
    except urllib.error.HTTPError as error:
        raise fail(f"HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise fail(f"cannot connect ({error.reason})") from None
    except (http.client.HTTPException, ConnectionError, TimeoutError) as error:
        detail = str(error) or type(error).__name__
        raise fail(f"connection dropped after {received:,} bytes ({detail})") from None
    except OSError as error:
        raise fail(f"cannot write {path}: {error.strerror or error}") from None
    return Downloaded(size=received, sha256=digest.hexdigest())
