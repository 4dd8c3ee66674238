"""The streamed, cached corpus encoding: equal to the in-memory one, reused only for unchanged text."""

import json
import os

import numpy as np
import pytest
from conftest import make_text
from typer.testing import CliRunner

from charrnn.cachedir import ids_cache_dir
from charrnn.cli import app
from charrnn.data import prepare_data
from charrnn.decode import read_text
from charrnn.errors import CharrnnError
from charrnn.idcache import encode_corpus, scan_corpus
from charrnn.train import ids_hash
from charrnn.vocab import Vocab

runner = CliRunner()
SMALL = ["--hidden", "8", "--batch-size", "4", "--seq-len", "8", "--steps", "2", "--sample-every", "0", "-q"]
# multi-byte characters (2, 3 and 4 bytes in UTF-8) and "\r\n" land on every block boundary for small blocks
AWKWARD = "héllo wörld — ✓ 日本語\r\nline two\r\n\r\n🎉 end\r" * 7 + "x\r"


@pytest.mark.parametrize("block_size", [1, 2, 3, 5, 7, 4096])
def test_streamed_encoding_equals_in_memory(tmp_path, block_size):
    (tmp_path / "a.txt").write_bytes(AWKWARD.encode())
    (tmp_path / "b.txt").write_bytes(("\n" + AWKWARD[:57]).encode())  # a lone "\r" ends a.txt: kept, not joined
    files = [tmp_path / "a.txt", tmp_path / "b.txt"]
    text = read_text(files)
    data = prepare_data(files, val_frac=0.0, cache_dir=tmp_path / "cache", block_size=block_size)
    assert data.vocab == Vocab.from_text(text)
    assert isinstance(data.train_ids, np.memmap) and data.train_ids.dtype == np.uint8
    assert np.array_equal(data.train_ids, data.vocab.encode(text))
    assert data.train_hash == ids_hash(data.vocab.encode(text))


@pytest.mark.parametrize("block_size", [1, 3, 4096])
def test_invalid_byte_offset_is_exact_across_blocks(tmp_path, block_size):
    (tmp_path / "bad.txt").write_bytes("ü".encode() * 1800 + b"\xff more")
    with pytest.raises(CharrnnError, match="byte offset 3600 \\(byte 0xff\\)"):
        scan_corpus([tmp_path / "bad.txt"], block_size=block_size)
    (tmp_path / "cut.txt").write_bytes(b"abc \xe2\x82")  # a truncated 3-byte character at the very end
    with pytest.raises(CharrnnError, match="byte offset 4"):
        scan_corpus([tmp_path / "cut.txt"], block_size=block_size)


def test_validation_is_a_view_of_the_tail(tmp_path):
    (tmp_path / "c.txt").write_text(make_text(1000))
    data = prepare_data([tmp_path / "c.txt"], val_frac=0.1, cache_dir=tmp_path / "cache")
    assert len(data.val_ids) == 100 and isinstance(data.val_ids, np.memmap)
    assert np.shares_memory(data.val_ids, data.train_ids.base) or data.val_ids.base is data.train_ids.base


def test_unknown_characters_name_first_positions(tmp_path):
    (tmp_path / "c.txt").write_text("abcab" * 10 + "zaz" + "Q")
    scan = scan_corpus([tmp_path / "c.txt"], block_size=4)
    with pytest.raises(CharrnnError, match="'z' x2 \\(first at 50\\), 'Q' x1 \\(first at 53\\)"):
        encode_corpus(scan, Vocab("abc"), tmp_path / "cache", unk="error", block_size=4)
    skipped = encode_corpus(scan, Vocab("abc"), tmp_path / "cache", unk="skip", block_size=4)
    assert skipped.ids.tolist() == Vocab("abc").encode("abcab" * 10 + "a").tolist()
    mapped = encode_corpus(scan, Vocab("abc"), tmp_path / "cache", unk="c", block_size=4)
    assert len(mapped.ids) == 54 and mapped.key != skipped.key


def cache_entries(directory):
    return sorted(p.name for p in directory.glob("*.ids"))


def test_cache_reuse_and_invalidation_through_the_cli(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text(make_text(3000))
    cache = tmp_path / "xdg-cache" / "charrnn" / "ids"  # the default under $XDG_CACHE_HOME (set by conftest)
    assert ids_cache_dir() == cache

    def train(*extra):
        result = runner.invoke(app, ["train", str(corpus), "-o", str(tmp_path / "m.npz"), "--force", *SMALL,
                                    *extra])
        assert result.exit_code == 0, result.output
        return result

    train()
    first = cache_entries(cache)
    assert len(first) == 1
    ids_file = cache / first[0]
    before = ids_file.stat().st_mtime_ns
    train()  # unchanged text: the entry is reused, not rewritten
    assert cache_entries(cache) == first and ids_file.stat().st_mtime_ns == before

    # same size, same mtime, different content: a new entry
    stat = corpus.stat()
    text = corpus.read_text()
    corpus.write_text(text[1:] + text[0])
    os.utime(corpus, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert corpus.stat().st_size == stat.st_size and corpus.stat().st_mtime_ns == stat.st_mtime_ns
    train()
    second = cache_entries(cache)
    assert len(second) == 2
    meta = json.loads((cache / second[0].replace(".ids", ".json")).read_text())
    assert meta["length"] == 3000 and meta["dtype"] == "uint8"

    train("--cache-dir", str(tmp_path / "elsewhere"))
    assert len(cache_entries(tmp_path / "elsewhere")) == 1 and len(cache_entries(cache)) == 2


def test_damaged_cache_entry_is_rebuilt(tmp_path):
    text = make_text(500)
    (tmp_path / "c.txt").write_text(text)
    assert not prepare_data([tmp_path / "c.txt"], cache_dir=tmp_path / "cache").reused_cache
    (ids_file,) = (tmp_path / "cache").glob("*.ids")
    ids_file.write_bytes(ids_file.read_bytes()[:-7])  # truncated
    again = prepare_data([tmp_path / "c.txt"], val_frac=0.0, cache_dir=tmp_path / "cache")
    assert not again.reused_cache and np.array_equal(again.train_ids, again.vocab.encode(text))
    assert prepare_data([tmp_path / "c.txt"], cache_dir=tmp_path / "cache").reused_cache
