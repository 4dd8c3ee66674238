"""The text input layer: one decoder, one ids fingerprint, one cache-directory rule."""

import io
import sys

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
    assert result.exit_code == 1 and phrase in result.stderr and "Traceback" not in result.output


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
