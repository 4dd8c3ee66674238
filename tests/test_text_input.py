"""The text input layer: one decoder, one ids fingerprint, one cache-directory rule."""

import bz2
import gzip
import io
import lzma
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import make_text
from typer.testing import CliRunner

from charrnn.cachedir import cache_home, ids_cache_dir
from charrnn.cli import app
from charrnn.data import prepare_data
from charrnn.decode import decoded_blocks, read_text
from charrnn.errors import CharrnnError
from charrnn.fingerprint import file_hashes, ids_hash
from charrnn.sources import Source
from charrnn.train import train  # noqa: F401 — loads the module whose ids_hash is checked
from charrnn.vocab import Vocab

runner = CliRunner()


# ---- one decoder ----


@pytest.mark.parametrize("block_size", [1, 2, 5, 4096])
def test_invalid_byte_names_offset_line_and_column(tmp_path, block_size):
    # "\r\n" counts as one line break, a multi-byte character as one column
    (tmp_path / "bad.txt").write_bytes("ab\r\ncd\nü€x".encode() + b"\xff rest")
    with pytest.raises(CharrnnError) as raised:
        list(decoded_blocks(Source(tmp_path / "bad.txt", "bad.txt"), block_size=block_size))
    message = str(raised.value)
    assert message.startswith("bad.txt: invalid utf-8 at byte offset 13 (byte 0xff), line 3, column 4;")
    assert "\n" not in message


def test_stdin_goes_through_the_same_decoder(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"one\r\ntwo\r\n")))
    assert read_text(["-"]) == "one\ntwo\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"ok\n\xc3(")))
    with pytest.raises(CharrnnError, match=r"<stdin>: invalid utf-8 at byte offset 3 .*line 2, column 1"):
        read_text(["-"])


def test_score_reports_invalid_stdin_in_one_line(tmp_path):
    from tiny_models import random_model, save

    model = save(random_model(), tmp_path / "m.npz")
    result = runner.invoke(app, ["score", str(model), "-"], input=b"abc\xffdef")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "<stdin>: invalid utf-8 at byte offset 3" in result.stderr


@pytest.mark.parametrize(
    "encoding, phrase",
    [
        ("no-such-codec", "unknown encoding"),
        ("base64", "not a text encoding"),
        ("rot13", "not a text encoding"),
    ],  # fmt: skip
)
def test_encodings_that_cannot_decode_text_are_one_line_errors(tmp_path, encoding, phrase):
    (tmp_path / "c.txt").write_text(make_text(200))
    with pytest.raises(CharrnnError, match=phrase):
        read_text([tmp_path / "c.txt"], encoding=encoding)
    result = runner.invoke(app, ["train", str(tmp_path / "c.txt"), "--encoding", encoding, "-q"])
    # the CLI checks --encoding before reading anything (config.py), in its own words
    assert result.exit_code in (1, 2) and "encoding" in result.stderr and "Traceback" not in result.output
    assert result.stderr.count("\n") == 1


def test_other_encodings_decode_the_same_text(tmp_path):
    text = "grüße — 日本\r\nzwei\n"
    (tmp_path / "c.txt").write_bytes(text.encode("utf-16"))
    assert read_text([tmp_path / "c.txt"], encoding="utf-16") == text.replace("\r\n", "\n")
    data = prepare_data([tmp_path / "c.txt"], val_frac=0.0, encoding="utf-16", block_size=3)
    assert data.vocab.decode(data.train_ids) == text.replace("\r\n", "\n")


# ---- one fingerprint ----


def test_one_ids_fingerprint_for_arrays_files_and_checkpoints(tmp_path):
    text = make_text(5000)
    (tmp_path / "c.txt").write_text(text)
    data = prepare_data([tmp_path / "c.txt"], val_frac=0.1)
    ids = Vocab.from_text(text).encode(text)
    n_train = len(data.train_ids)
    assert sys.modules["charrnn.train"].ids_hash is ids_hash  # what checkpoints record is the same function
    assert data.train_hash == ids_hash(ids[:n_train]) == ids_hash(data.train_ids)
    (cache_file,) = ids_cache_dir().glob("*.ids")
    assert file_hashes(cache_file, ids.dtype, [n_train, len(ids)]) == [ids_hash(ids[:n_train]), ids_hash(ids)]
    assert file_hashes(cache_file, ids.dtype, [len(ids) + 1]) is None  # fewer ids than asked for
    assert ids_hash(ids) != ids_hash(ids.astype(np.uint16))  # the dtype is part of what is hashed


# ---- one cache-directory rule ----


def test_library_and_cli_share_the_xdg_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ids_cache_dir() == cache_home() / "ids" == tmp_path / "xdg" / "charrnn" / "ids"
    (tmp_path / "c.txt").write_text(make_text(3000))
    data = prepare_data([tmp_path / "c.txt"])  # the library, no cache_dir given
    assert not data.reused_cache and len(list((tmp_path / "xdg" / "charrnn" / "ids").glob("*.ids"))) == 1
    args = ["train", str(tmp_path / "c.txt"), "-o", str(tmp_path / "m.npz"), "--hidden", "8", "--batch-size", "4",
            "--seq-len", "8", "--steps", "1", "--sample-every", "0", "-q"]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    assert len(list((tmp_path / "xdg" / "charrnn" / "ids").glob("*.ids"))) == 1  # the CLI reused the entry
    assert prepare_data([tmp_path / "c.txt"]).reused_cache


def test_relative_xdg_cache_home_is_ignored(monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")
    assert ids_cache_dir().parent == cache_home() == cache_home({}) and cache_home().is_absolute()
    assert cache_home({"XDG_CACHE_HOME": "/abs"}).as_posix() == "/abs/charrnn"


# ---- compressed corpora and directories ----

COMPRESSORS = {"gzip": (gzip.compress, ".gz"), "bzip2": (bz2.compress, ".bz2"), "xz": (lzma.compress, ".xz")}
SMALL = ["--hidden", "8", "--batch-size", "4", "--seq-len", "8", "--steps", "1", "--sample-every", "0", "-q", "--force"]


def train_cli(*args):
    return runner.invoke(app, ["train", *map(str, args), *SMALL])


@pytest.mark.parametrize("kind", COMPRESSORS)
def test_compressed_corpus_reads_as_its_text_and_caches(tmp_path, kind):
    compress, suffix = COMPRESSORS[kind]
    text = make_text(20_000, alphabet="abcdé€ \n") + "\r\nend"
    plain, packed = tmp_path / "c.txt", tmp_path / f"c.txt{suffix}"
    plain.write_bytes(text.encode())
    packed.write_bytes(compress(text.encode()))
    assert read_text([packed]) == read_text([plain])
    data = prepare_data([packed], val_frac=0.0, block_size=777)
    assert data.vocab.decode(data.train_ids) == text.replace("\r\n", "\n") and not data.reused_cache
    assert prepare_data([packed], val_frac=0.0).reused_cache  # the id cache works for compressed corpora
    packed.write_bytes(compress((text + "!").encode()))  # new content, same name: a new entry
    assert not prepare_data([packed], val_frac=0.0).reused_cache


@pytest.mark.parametrize("kind", COMPRESSORS)
def test_cli_trains_on_a_compressed_corpus(tmp_path, kind):
    compress, suffix = COMPRESSORS[kind]
    (tmp_path / f"corpus.txt{suffix}").write_bytes(compress(make_text(3000).encode()))
    result = train_cli(tmp_path / f"corpus.txt{suffix}", "-o", tmp_path / "m.npz")
    assert result.exit_code == 0, result.output
    assert "invalid utf-8" not in result.stderr and "2,700 train chars" in result.stderr


def test_damaged_compressed_files_are_one_line_errors(tmp_path):
    data = gzip.compress(np.random.default_rng(0).choice(list(b"abcdefgh \n"), size=200_000).astype(np.uint8).tobytes())
    (tmp_path / "cut.gz").write_bytes(data[: len(data) * 3 // 4])  # the head decompresses, the end is missing
    with pytest.raises(CharrnnError, match=r"^\S*cut.gz: gzip data is corrupt or truncated after [\d,]+ decompressed"):
        prepare_data([tmp_path / "cut.gz"], block_size=4096)  # blocks before the damage are delivered
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    result = train_cli(tmp_path / "bad.gz")
    assert result.exit_code == 1 and "bad.gz: gzip data is corrupt or truncated" in result.stderr
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1
    (tmp_path / "inv.gz").write_bytes(gzip.compress(b"ab\ncd\xffef"))
    with pytest.raises(CharrnnError, match="inv.gz: invalid utf-8 at byte offset 5 of the decompressed data"):
        read_text([tmp_path / "inv.gz"])


def test_archives_are_refused_with_a_hint(tmp_path):
    with zipfile.ZipFile(tmp_path / "c.zip", "w") as archive:
        archive.writestr("c.txt", make_text(500))
    with tarfile.open(tmp_path / "c.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "c.zip", arcname="c.zip")
    for name, phrase in (("c.zip", "c.zip: a zip archive;"), ("c.tar.gz", "c.tar.gz: a tar archive, gzip-compressed;")):
        result = train_cli(tmp_path / name)
        assert result.exit_code == 1 and phrase in result.stderr and "extract the archive" in result.stderr


def test_text_that_starts_like_bzip2_is_text(tmp_path):
    (tmp_path / "c.txt").write_text("BZh9 is how a bzip2 stream starts; this is plain text\n")
    assert read_text([tmp_path / "c.txt"]).startswith("BZh9 is")


def test_directory_report_names_used_and_skipped_files(tmp_path):
    corpus = tmp_path / "texts"
    (corpus / "sub").mkdir(parents=True)
    (corpus / ".git").mkdir()
    (corpus / ".git" / "HEAD").write_text("ref: main\n")
    (corpus / "a.txt").write_text(make_text(1500, seed=1))
    (corpus / "sub" / "b.txt.gz").write_bytes(gzip.compress(make_text(1500, seed=2).encode()))
    (corpus / "c.xz").write_bytes(lzma.compress(make_text(1500, seed=3).encode()))
    (corpus / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    (corpus / "notes.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    (corpus / "packed.bin.gz").write_bytes(gzip.compress(b"\0\1\2\3"))
    data = prepare_data([corpus], val_frac=0.0)
    assert len(data.train_ids) == 4500  # a.txt, sub/b.txt.gz and c.xz
    used, skipped = data.notes
    assert used == f"corpus {corpus}: using 3 file(s): {corpus}/a.txt, {corpus}/c.xz (xz), {corpus}/sub/b.txt.gz (gzip)"
    assert skipped == (
        f"corpus {corpus}: skipped 4: {corpus}/.git/ (hidden), {corpus}/image.png (binary: a NUL byte in its first "
        f"8 KiB), {corpus}/notes.zip (a zip archive), {corpus}/packed.bin.gz (binary: a NUL byte in its first 8 KiB)"
    )
    result = train_cli(corpus, "-o", tmp_path / "m.npz")  # the CLI prints the report
    assert result.exit_code == 0, result.output
    assert used in result.stderr and skipped in result.stderr


def test_directory_report_counts_beyond_ten_names(tmp_path):
    for index in range(12):
        (tmp_path / f"f{index:02d}.txt").write_text("abc\n")
        (tmp_path / f"g{index:02d}.bin").write_bytes(b"\0")
    used, skipped = prepare_data([tmp_path], val_frac=0.0).notes
    assert used.endswith("f09.txt, ... and 2 more") and skipped.endswith("(binary: a NUL byte in its first 8 KiB), "
                                                                          "... and 2 more")  # fmt: skip


# ---- cached ids are verified; pipes and FIFOs ----


def cache_file():
    (path,) = ids_cache_dir().glob("*.ids")
    return path


@pytest.mark.parametrize("wide", [False, True], ids=["uint8", "uint16"])
def test_damaged_cached_ids_are_detected_and_rebuilt(tmp_path, wide):
    alphabet = "abcdefgh \n" + ("".join(chr(0x4E00 + i) for i in range(300)) if wide else "")
    text = make_text(4000, alphabet=alphabet)
    (tmp_path / "c.txt").write_text(text)
    expected = Vocab.from_text(text).encode(text)
    first = prepare_data([tmp_path / "c.txt"], val_frac=0.0)
    assert first.train_ids.dtype == (np.uint16 if wide else np.uint8) and first.notes == ()
    ids = np.fromfile(cache_file(), dtype=first.train_ids.dtype)
    del first

    damaged = ids.copy()
    damaged[1234] = np.iinfo(ids.dtype).max  # out of range: would index past the kernels' arrays
    damaged.tofile(cache_file())
    again = prepare_data([tmp_path / "c.txt"], val_frac=0.0)
    assert not again.reused_cache and np.array_equal(again.train_ids, expected)
    (note,) = again.notes
    assert f"was damaged (an id of {np.iinfo(ids.dtype).max} in a vocabulary of {len(again.vocab)}" in note
    assert note.endswith("rebuilt it")

    damaged = ids.copy()
    damaged[2000] = (ids[2000] + 1) % len(again.vocab)  # in range: only the fingerprint can tell
    del again
    damaged.tofile(cache_file())
    again = prepare_data([tmp_path / "c.txt"], val_frac=0.0)
    assert np.array_equal(again.train_ids, expected)
    assert "was damaged (its ids differ from the fingerprint recorded when it was written)" in again.notes[0]
    assert prepare_data([tmp_path / "c.txt"], val_frac=0.0).reused_cache  # the rebuilt entry verifies


def test_cli_says_on_stderr_that_a_damaged_entry_was_rebuilt(tmp_path):
    (tmp_path / "c.txt").write_text(make_text(3000))
    args = [tmp_path / "c.txt", "-o", tmp_path / "m.npz", "--val-frac", "0"]  # no validation text at all
    assert train_cli(*args).exit_code == 0
    data = bytearray(cache_file().read_bytes())
    data[10] = 0xFF
    cache_file().write_bytes(bytes(data))
    result = train_cli(*args)
    assert result.exit_code == 0, result.output
    assert "was damaged (an id of 255 in a vocabulary of 10 characters); rebuilt it" in result.stderr
    meta = cache_file().with_suffix(".json")
    meta.write_text("{not json")
    result = train_cli(*args)
    assert result.exit_code == 0 and "was damaged (unreadable: metadata JSONDecodeError); rebuilt it" in result.stderr


def test_piped_corpus_reports_its_real_length_and_is_cached(tmp_path):
    text = make_text(3000)
    for stdin in (text.encode(), gzip.compress(text.encode()), text.encode()):
        result = runner.invoke(app, ["train", "-", "-o", str(tmp_path / "m.npz"), *SMALL], input=stdin)
        assert result.exit_code == 0, result.output
        assert "data: 2,700 train chars, 300 validation chars" in result.stderr
    assert len(list(ids_cache_dir().glob("*.ids"))) == 1  # the same text, however piped, is one entry
    assert not list(ids_cache_dir().glob(".stdin-*"))  # the copy of standard input is removed
    result = runner.invoke(app, ["train", "-", "-o", str(tmp_path / "m.npz"), *SMALL], input=b"")
    assert result.exit_code == 1 and "corpus standard input (-) is empty" in result.stderr
    with pytest.raises(CharrnnError, match="can be read only once"):
        prepare_data(["-"], val_file="-")


def test_fifos_and_devices_are_refused_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.txt").write_text(make_text(3000))
    os.mkfifo(tmp_path / "dir" / "pipe")
    base = [sys.executable, "-m", "charrnn", "train", "-o", str(tmp_path / "m.npz"), *SMALL]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for corpus, expected in ((tmp_path / "fifo", "is a FIFO (named pipe), not a regular file; to read a pipe, give -"),
                             ("/dev/zero", "/dev/zero is a character device, not a regular file")):  # fmt: skip
        done = subprocess.run([*base, str(corpus)], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 1 and expected in done.stderr and len(done.stderr.splitlines()) == 1
    done = subprocess.run([*base, str(tmp_path / "dir")], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"skipped 1: {tmp_path}/dir/pipe (a FIFO (named pipe), not a regular file)" in done.stderr
