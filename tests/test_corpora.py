"""Corpus registry, verified downloads, extraction, the offline corpus, and the `corpus` CLI.

Every download goes to a local HTTP server on 127.0.0.1 (a fixture), so the tests need no network.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from charrnn.assemble import python_stdlib_text
from charrnn.cachedir import cache_home
from charrnn.cli import app
from charrnn.corpora import Corpus, get_corpus, list_corpora, load_registry
from charrnn.errors import CharrnnError

PROJECT = Path(__file__).resolve().parents[1]
SHARED_CORPORA = PROJECT.parent / "shared" / "corpora"
BODY = b"First Citizen:\nBefore we proceed any further, hear me speak.\n" * 50


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Never touch the real ~/.cache, and never send 127.0.0.1 through a proxy."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def server():
    """A local HTTP server. `routes[path] = (body, extra)`: with extra > 0 the response announces `extra`
    more bytes than it sends and closes the connection (a dropped download). Unknown paths are 404."""
    routes: dict[str, tuple[bytes, int]] = {}
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            if self.path not in routes:
                self.send_error(404, "Not Found")
                return
            body, extra = routes[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + extra))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{httpd.server_address[1]}", routes=routes, hits=hits)
    httpd.shutdown()
    httpd.server_close()


def entry(name: str, url: str, data: bytes | None = None, **overrides) -> Corpus:
    """A test registry entry whose hash and size are those of `data` unless overridden."""
    fields = dict(
        name=name,
        url=url,
        sha256=hashlib.sha256(data).hexdigest() if data is not None else None,
        size=len(data) if data is not None else None,
        license="test",
        description="test corpus",
    )
    fields.update(overrides)
    return Corpus(**fields)


def files_under(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# ---- downloads ----


def test_download_verifies_and_reuses_cache_without_network(server, tmp_path):
    server.routes["/small.txt"] = (BODY, 0)
    registry = {"small": entry("small", server.url + "/small.txt", BODY)}
    path = get_corpus("small", cache_dir=tmp_path, progress=False, registry=registry)
    assert path == tmp_path / "small" / "small.txt"
    assert path.read_bytes() == BODY
    assert len(server.hits) == 1
    assert get_corpus("small", cache_dir=tmp_path, progress=False, registry=registry) == path
    assert len(server.hits) == 1, "a cached corpus must not touch the network"
    assert files_under(tmp_path) == ["small.txt"]


def assert_clean_failure(error: pytest.ExceptionInfo, corpus: Corpus, folder: Path, phrase: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    assert repr(corpus.name) in message and corpus.url in message and phrase in message
    assert files_under(folder) == [], "no partial or temporary file may be left"


def test_wrong_checksum_leaves_nothing(server, tmp_path):
    server.routes["/small.txt"] = (BODY, 0)
    corpus = entry("small", server.url + "/small.txt", BODY, sha256="0" * 64)
    with pytest.raises(CharrnnError) as error:
        get_corpus("small", cache_dir=tmp_path, progress=False, registry={"small": corpus})
    assert_clean_failure(error, corpus, tmp_path / "small", "sha256 mismatch")


def test_wrong_size_leaves_nothing(server, tmp_path):
    server.routes["/small.txt"] = (BODY, 0)
    corpus = entry("small", server.url + "/small.txt", BODY, size=len(BODY) + 1)
    with pytest.raises(CharrnnError) as error:
        get_corpus("small", cache_dir=tmp_path, progress=False, registry={"small": corpus})
    assert_clean_failure(error, corpus, tmp_path / "small", f"expected {len(BODY) + 1:,}")


def test_dropped_connection_leaves_nothing(server, tmp_path):
    server.routes["/small.txt"] = (BODY, 1000)
    corpus = entry("small", server.url + "/small.txt", None)
    with pytest.raises(CharrnnError) as error:
        get_corpus("small", cache_dir=tmp_path, progress=False, registry={"small": corpus})
    assert_clean_failure(error, corpus, tmp_path / "small", "connection dropped")
    assert not (tmp_path / "checksums.json").exists()


def test_http_404(server, tmp_path):
    corpus = entry("gone", server.url + "/missing.txt", BODY)
    with pytest.raises(CharrnnError) as error:
        get_corpus("gone", cache_dir=tmp_path, progress=False, registry={"gone": corpus})
    assert_clean_failure(error, corpus, tmp_path / "gone", "HTTP 404")


def test_unpinned_hash_is_recorded_and_checked_later(server, tmp_path):
    server.routes["/small.txt"] = (BODY, 0)
    corpus = entry("small", server.url + "/small.txt", None)
    notices: list[str] = []
    path = get_corpus("small", cache_dir=tmp_path, progress=False, registry={"small": corpus}, log=notices.append)
    digest = hashlib.sha256(BODY).hexdigest()
    assert len(notices) == 1 and digest in notices[0]
    records = json.loads((tmp_path / "checksums.json").read_text())
    assert records["small"] == {"url": corpus.url, "sha256": digest, "size": len(BODY)}
    # the file at the URL changes: a fresh download is now rejected against the recorded hash
    path.unlink()
    server.routes["/small.txt"] = (BODY.upper(), 0)
    with pytest.raises(CharrnnError, match="recorded on first download"):
        get_corpus("small", cache_dir=tmp_path, progress=False, registry={"small": corpus})
    assert not path.exists()


def test_unknown_corpus_names_the_known_ones(tmp_path):
    with pytest.raises(CharrnnError, match="unknown corpus 'nope'.*tinyshakespeare"):
        get_corpus("nope", cache_dir=tmp_path)


# ---- extraction ----


def zip_bytes(member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, data)
    return buffer.getvalue()


def test_zip_member_is_extracted_and_size_checked(server, tmp_path):
    archive = zip_bytes("enwik-mini", BODY)
    server.routes["/mini.zip"] = (archive, 0)
    good = entry("mini", server.url + "/mini.zip", archive, extract={"format": "zip", "member": "enwik-mini"})
    path = get_corpus("mini", cache_dir=tmp_path, progress=False, registry={"mini": good})
    assert path.name == "mini.txt" and path.read_bytes() == BODY
    bad_extract = {"format": "zip", "member": "enwik-mini", "size": len(BODY) + 5}
    bad = entry("bad", server.url + "/mini.zip", archive, extract=bad_extract)
    with pytest.raises(CharrnnError, match="expected"):
        get_corpus("bad", cache_dir=tmp_path, progress=False, registry={"bad": bad})
    assert files_under(tmp_path / "bad") == ["mini.zip"], "the verified archive stays, no text file"


def test_tar_sources_are_concatenated_in_sorted_order(server, tmp_path):
    members = {
        "src/zeta.c": b"int zeta;\n",
        "src/alpha/beta.h": b"#define BETA 1",  # no final newline: one is added
        "src/README": b"not C\n",
        "src/latin1.c": "/* caf\xe9 */\n".encode("latin-1"),  # not UTF-8: skipped
        "src/alpha.c": b"int alpha;\n",
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        for name, data in members.items():  # deliberately not in sorted order
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive = buffer.getvalue()
    server.routes["/src.tar.xz"] = (archive, 0)
    extract = {"format": "tar", "include": ["*.c", "*.h"], "header": "/* ==== {path} ==== */"}
    corpus = entry("src", server.url + "/src.tar.xz", archive, extract=extract)
    notices: list[str] = []
    path = get_corpus("src", cache_dir=tmp_path, progress=False, registry={"src": corpus}, log=notices.append)
    assert path.read_text(encoding="utf-8") == (
        "/* ==== src/alpha.c ==== */\nint alpha;\n"
        "/* ==== src/alpha/beta.h ==== */\n#define BETA 1\n"
        "/* ==== src/zeta.c ==== */\nint zeta;\n"
    )
    assert "3 files" in notices[0] and "skipped 1" in notices[0]


# ---- registry ----


def test_packaged_registry_has_the_well_known_corpora():
    names = [corpus.name for corpus in list_corpora()]
    for name in ("python-stdlib", "tinyshakespeare", "warpeace", "anna", "enwik8", "text8", "linux"):
        assert name in names
    registry = load_registry()
    assert registry["warpeace"].sha256 == "fb66ba999dafe24017cdd59e04c56d385a9c8466993d374fd4c6f08b2142985e"
    assert registry["enwik8"].extract["size"] == 100_000_000
    assert registry["linux"].extract["format"] == "tar"


@pytest.mark.parametrize("name, filename", [("tinyshakespeare", "tinyshakespeare.txt"), ("anna", "anna.txt")])
def test_pinned_hashes_match_the_shared_copies(name, filename):
    local = SHARED_CORPORA / filename
    if not local.exists():
        pytest.skip(f"{local} is not on this machine")
    data = local.read_bytes()
    corpus = load_registry()[name]
    assert (corpus.sha256, corpus.size) == (hashlib.sha256(data).hexdigest(), len(data))


def test_top_level_registry_is_the_package_file():
    top_level = PROJECT / "corpora" / "registry.json"
    packaged = PROJECT / "charrnn" / "data" / "registry.json"
    assert top_level.read_bytes() == packaged.read_bytes()


@pytest.mark.parametrize(
    "change, phrase",
    [
        ({"sha256": "abc"}, "sha256 must be"),
        ({"url": "ftp://example.org/x"}, r"an http\(s\) URL"),
        ({"size": -3}, "size must be"),
        ({"extract": {"format": "rar"}}, "extract format"),
        ({"name": "Bad Name"}, "names use"),
    ],
)
def test_bad_registry_entries_are_reported(tmp_path, change, phrase):
    raw = {"name": "x", "url": "https://example.org/x.txt", "sha256": None, "size": None}
    raw.update(license="l", description="d", **change)
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"corpora": [raw]}))
    with pytest.raises(CharrnnError, match=phrase):
        load_registry(path)


def test_default_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_home() == tmp_path / "charrnn"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert cache_home() == Path.home() / ".cache" / "charrnn"


# ---- the offline corpus ----


def test_python_stdlib_corpus_builds_offline_and_is_deterministic(tmp_path):
    path = get_corpus("python-stdlib", cache_dir=tmp_path, progress=False)
    data = path.read_bytes()
    text = data.decode("utf-8")
    assert 1_000_000 < len(data) <= 1_500_000
    assert text.startswith("# ==== ")
    headers = [line for line in text.splitlines() if line.startswith("# ==== ")]
    paths = [line[len("# ==== ") : -len(" ====")] for line in headers]
    assert paths == sorted(paths) and all(p.endswith(".py") for p in paths)
    assert not any("test" in p.split("/")[:-1] or "site-packages" in p for p in paths)
    assert get_corpus("python-stdlib", cache_dir=tmp_path).read_bytes() == data


def test_python_stdlib_text_excludes_tests_and_stops_at_a_file_boundary(tmp_path):
    sources = {
        "a.py": "A = 1\n",
        "b/c.py": "C = 2",
        "tests/t.py": "T = 0\n",
        "site-packages/s.py": "S = 0\n",
        "test_x.py": "X = 0\n",
        "d.py": "D = 3\n" * 100,
    }
    for name, text in sources.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "bad.py").write_bytes(b"caf\xe9 = 1\n")
    expected = "# ==== a.py ====\nA = 1\n# ==== b/c.py ====\nC = 2\n"
    assert python_stdlib_text(tmp_path, max_bytes=len(expected) + 10) == expected
    assert "D = 3" in python_stdlib_text(tmp_path)


# ---- CLI ----


runner = CliRunner()


def test_cli_corpus_list():
    result = runner.invoke(app, ["corpus", "list"])
    assert result.exit_code == 0
    assert "tinyshakespeare" in result.stdout and "pinned" in result.stdout and "GPL-2.0" in result.stdout
    result = runner.invoke(app, ["corpus", "list", "--json"])
    records = [json.loads(line) for line in result.stdout.splitlines()]  # one record per corpus
    assert {"kind", "name", "url", "download_sha256", "download_size_bytes", "license"} <= set(records[0])
    assert len(records) == result.stdout.count("\n") and all(r["kind"] == "corpus" for r in records)


def test_cli_corpus_get_bad_name_is_one_line_error():
    result = runner.invoke(app, ["corpus", "get", "no-such-corpus"])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("Error: unknown corpus")
    assert "Traceback" not in result.output


def test_cli_corpus_get_downloads_and_copies(server, tmp_path):
    server.routes["/small.txt"] = (BODY, 0)
    registry = tmp_path / "registry.json"
    raw = {"name": "small", "url": server.url + "/small.txt", "sha256": hashlib.sha256(BODY).hexdigest()}
    raw.update(size=len(BODY), license="test", description="test")
    registry.write_text(json.dumps({"corpora": [raw]}))
    args = ["corpus", "get", "small", "--registry", str(registry), "--cache-dir", str(tmp_path / "cache")]
    result = runner.invoke(app, [*args, "-q"])
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip()).read_bytes() == BODY
    copy = tmp_path / "copy.txt"
    result = runner.invoke(app, [*args, "-q", "-o", str(copy)])
    assert result.stdout.strip() == str(copy) and copy.read_bytes() == BODY
    result = runner.invoke(app, [*args, "-q", "--json"])
    record = json.loads(result.stdout)
    assert record["kind"] == "corpus" and record["name"] == "small" and Path(record["path"]).read_bytes() == BODY
    assert record["size_bytes"] == len(BODY) and record["download_sha256"] == hashlib.sha256(BODY).hexdigest()


def test_cli_corpus_get_failed_download_is_one_line_error(server, tmp_path):
    registry = tmp_path / "registry.json"
    raw = {"name": "gone", "url": server.url + "/gone.txt", "sha256": None, "size": None}
    raw.update(license="test", description="test")
    registry.write_text(json.dumps({"corpora": [raw]}))
    result = runner.invoke(app, ["corpus", "get", "gone", "--registry", str(registry), "-q"])
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0 and "HTTP 404" in result.stderr
    assert "Traceback" not in result.output


def test_atomic_writer_removes_its_temporary_file_on_interrupt(tmp_path):
    from charrnn.atomic import atomic_writer

    target = tmp_path / "out.txt"
    with pytest.raises(KeyboardInterrupt), atomic_writer(target) as handle:
        handle.write(b"partial")
        raise KeyboardInterrupt
    assert files_under(tmp_path) == []


def test_unwritable_cache_is_a_one_line_error(tmp_path):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("x")
    with pytest.raises(CharrnnError, match="cannot write .*python-stdlib.txt: Not a directory"):
        get_corpus("python-stdlib", cache_dir=not_a_directory)
