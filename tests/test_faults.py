"""Faults and fuzzing (issue 21): kill -9 in the middle of a write, a full disk, concurrent writers, and
hypothesis-generated vocabularies and damaged id caches. Each asserts the same two things: a clear
one-line error (or a correct result), and nothing lost — the previous checkpoint always loads."""

import contextlib
import errno
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_text
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_hostile_checkpoints import npy, rewrite
from tiny_models import random_model, save
from typer.testing import CliRunner

import charrnn
from charrnn.atomic import atomic_writer, remove_leftovers
from charrnn.cli import app
from charrnn.data import prepare_data
from charrnn.errors import CharrnnError
from charrnn.metrics import MetricsLog
from charrnn.model import load_checkpoint, save_checkpoint
from charrnn.vocab import Vocab

ENV = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(charrnn.__file__))}
runner = CliRunner()


def leftovers(directory: Path) -> list[Path]:
    return sorted(directory.glob(".*.part"))


# ---- kill -9 while a checkpoint is being written ----

WRITER = """
import sys
import numpy as np
from charrnn.model import Model, ModelConfig, save_checkpoint
from charrnn.vocab import Vocab
vocab = Vocab("abcdefgh")
config = ModelConfig(8, 400, 2, "tanh", "float64")  # 2.6 MB: a write takes long enough to be cut
models = [Model(config, vocab, np.full(Model.initialize(config, vocab, np.random.default_rng(0)).flat.size, v))
          for v in (1.0, 2.0)]
print("ready", flush=True)
i = 0
while True:
    save_checkpoint(sys.argv[1], models[i % 2], {"version_written": i % 2}, {})
    i += 1
"""


def test_kill_9_during_checkpoint_writes_never_tears_the_checkpoint(tmp_path):
    path = tmp_path / "m.npz"
    save_checkpoint(path, random_model("abcdefgh", hidden=400, layers=2), {}, {})
    rng, torn_writes = random.Random(21), 0
    for _ in range(6):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                                  env=ENV)  # fmt: skip
        assert writer.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        writer.kill()  # SIGKILL: no handler, no cleanup
        writer.wait()
        model, meta, _ = load_checkpoint(path)  # whatever moment it died, the file is whole
        assert model.flat.size > 0 and np.isfinite(model.flat).all()
        torn_writes += len(leftovers(tmp_path))  # the write it was killed in (the next writer removes it)
    assert torn_writes >= 3  # the kills did land mid-write
    save_checkpoint(path, random_model("abcdefgh", hidden=4), {}, {})
    assert leftovers(tmp_path) == [] and load_checkpoint(path)[0].config.hidden_size == 4


def test_a_live_writer_s_temporary_file_is_not_removed(tmp_path):
    """Concurrent writers of one path: each finishes its own write; the file is one of theirs, whole."""
    path = tmp_path / "data.bin"
    with atomic_writer(path) as first:
        first.write(b"first")
        (live,) = leftovers(tmp_path)
        with atomic_writer(path) as second:  # another writer of the same path meanwhile
            second.write(b"second")
        assert live.exists()  # flock'ed by its writer: not a leftover
        assert path.read_bytes() == b"second"
    assert path.read_bytes() == b"first" and leftovers(tmp_path) == []


def test_leftovers_of_dead_writers_are_removed_and_others_kept(tmp_path):
    path = tmp_path / "m.npz"
    dead = tmp_path / ".m.npz.abc123.part"
    dead.write_bytes(b"half a checkpoint")
    fresh_empty = tmp_path / ".m.npz.def456.part"  # a writer between mkstemp and flock
    fresh_empty.write_bytes(b"")
    other = tmp_path / ".other.npz.x.part"
    other.write_bytes(b"not ours")
    assert remove_leftovers(path) == [dead]
    assert fresh_empty.exists() and other.exists()
    old = time.time() - 3600
    os.utime(fresh_empty, (old, old))
    assert remove_leftovers(path) == [fresh_empty]


# ---- a full disk ----


@contextlib.contextmanager
def small_tmpfs(size: str):
    """A real tmpfs of `size` when this process may mount one (root on Linux), else skip."""
    directory = Path(tempfile.mkdtemp(prefix="charrnn-full-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
                             capture_output=True).returncode == 0  # fmt: skip
    if not mounted:
        directory.rmdir()
        pytest.skip("cannot mount a tmpfs here (not root?); the fake full disk below covers the same paths")
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], capture_output=True)
        directory.rmdir()


def test_a_real_full_disk_keeps_the_previous_checkpoint(tmp_path):
    with small_tmpfs("600k") as disk:
        path = disk / "m.npz"
        small = random_model("abcdefgh", hidden=8)
        save_checkpoint(path, small, {"which": "small"}, {})
        before = path.read_bytes()
        with pytest.raises(CharrnnError) as caught:
            save_checkpoint(path, random_model("abcdefgh", hidden=300, layers=2), {}, {})  # 1.5 MB
        assert str(caught.value) == f"cannot write {path}: No space left on device"
        assert path.read_bytes() == before and leftovers(disk) == []
        assert load_checkpoint(path)[1]["which"] == "small"
        result = runner.invoke(app, ["corpus", "synth", "markov", "-o", str(disk / "s.txt"), "--length", "2000000"])
        assert result.exit_code == 1 and result.stderr.strip() == f"Error: cannot write {disk / 's.txt'}: No space " \
                                                                  "left on device"  # fmt: skip
        assert not (disk / "s.txt").exists() and leftovers(disk) == []


@pytest.fixture
def full_disk(monkeypatch):
    """Every fsync and every write of more than 4 KiB to a file fails with ENOSPC, as on a full disk
    (works everywhere, no mount needed)."""
    import charrnn.atomic

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(charrnn.atomic.os, "fsync", no_space)
    return no_space


def test_a_fake_full_disk_keeps_the_previous_checkpoint(tmp_path, full_disk):
    path = tmp_path / "m.npz"
    with open(path, "wb") as handle:
        np.savez(handle, placeholder=np.zeros(3))
    before = path.read_bytes()
    with pytest.raises(CharrnnError) as caught:
        save_checkpoint(path, random_model("abcdefgh", hidden=8), {}, {})
    assert str(caught.value) == f"cannot write {path}: No space left on device"
    assert path.read_bytes() == before and leftovers(tmp_path) == []


def test_training_on_a_full_disk_stops_with_one_line_and_keeps_the_old_run(tmp_path, corpus_file, monkeypatch):
    small = ["--hidden", "8", "--layers", "1", "--batch-size", "4", "--seq-len", "8", "--sample-every", "0", "-q"]
    output = tmp_path / "m.npz"
    assert runner.invoke(app, ["train", str(corpus_file), "-o", str(output), "--steps", "3", *small]).exit_code == 0
    before = {p.name: p.read_bytes() for p in tmp_path.glob("m.*")}
    import charrnn.atomic

    monkeypatch.setattr(charrnn.atomic.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No "
                        "space left on device")))  # fmt: skip
    result = runner.invoke(app, ["train", str(corpus_file), "-o", str(output), "--force", "--steps", "4", *small])
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert lines == [f"Error: cannot write {tmp_path / 'm.best.npz'}: No space left on device"], result.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.glob("m.*")} == before and leftovers(tmp_path) == []


def test_a_metrics_append_on_a_full_disk_is_one_line(tmp_path, monkeypatch):
    log = MetricsLog(tmp_path / "m.metrics.jsonl")
    log.append({"step": 1})
    import builtins

    real_open = builtins.open

    def full(file, mode="r", *args, **kwargs):
        if str(file).endswith(".jsonl") and "a" in mode:
            raise OSError(errno.ENOSPC, "No space left on device", str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", full)
    with pytest.raises(CharrnnError, match=r"cannot write .*m.metrics.jsonl: No space left on device"):
        log.append({"step": 2})
    monkeypatch.undo()
    assert (tmp_path / "m.metrics.jsonl").read_text() == '{"step": 1}\n'


# ---- fuzzing: vocabularies ----

codepoints = st.integers(0, 0x10FFFF)


@settings(max_examples=200, deadline=None)
@given(st.lists(codepoints, min_size=1, max_size=40))
def test_any_text_round_trips_through_its_vocabulary(points):
    text = "".join(chr(p) for p in points)
    surrogates = any(0xD800 <= p <= 0xDFFF for p in points)
    clean = "".join(c for c in text if not 0xD800 <= ord(c) <= 0xDFFF)
    if clean:
        vocab = Vocab.from_text(clean)
        assert vocab.decode(vocab.encode(clean)) == clean
        ids, report = vocab.encode_with_report(text, unk="skip")  # surrogates: unknown, never a crash
        assert vocab.decode(ids) == clean and report.total == len(text) - len(clean)
        if surrogates:
            with pytest.raises(CharrnnError, match="not in the model's vocabulary"):
                vocab.encode(text)


@pytest.fixture(scope="module")
def vocab_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "m.npz"
    return save(random_model("abcd", hidden=3, dtype="float32"), path)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.integers(-(2**31), 2**31 - 1) | codepoints | st.integers(0xD800, 0xDFFF), min_size=4,
                       max_size=4),  # fmt: skip
       dtype=st.sampled_from(["int32", "int64", "uint32"]))
def test_any_vocabulary_array_loads_correctly_or_is_refused_in_one_line(vocab_model, tmp_path_factory, values,
                                                                         dtype):  # fmt: skip
    array = np.array(values, dtype=np.int64)
    if dtype == "uint32":
        assume((array >= 0).all())
    out = rewrite(vocab_model, tmp_path_factory.mktemp("v") / "v.npz", {"vocab": npy(array.astype(dtype))})
    valid = all(0 <= v <= 0x10FFFF and not 0xD800 <= v <= 0xDFFF for v in values) and sorted(set(values)) == values
    if valid:
        assert load_checkpoint(out)[0].vocab.chars == "".join(chr(v) for v in values)
    else:
        with pytest.raises(CharrnnError) as caught:
            load_checkpoint(out)
        assert str(out) in str(caught.value) and "vocabulary" in str(caught.value) and "\n" not in str(caught.value)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(1, 0x10FFFF).filter(lambda p: not 0xD800 <= p <= 0xDFFF), min_size=2, max_size=12))
def test_a_corpus_of_any_characters_trains_and_its_ids_decode_back(tmp_path_factory, points):
    directory = tmp_path_factory.mktemp("corpus")
    text = "".join(chr(p) for p in points) * 20
    (directory / "c.txt").write_text(text, encoding="utf-8")
    data = prepare_data([directory / "c.txt"], val_frac=0.0, cache_dir=directory / "cache")
    expected = text.replace("\r\n", "\n")
    assert data.vocab.chars == "".join(sorted(set(expected)))
    assert data.vocab.decode(np.asarray(data.train_ids)) == expected


# ---- fuzzing: the id cache ----

CACHE_TEXT = make_text(3000, seed=9)


@pytest.fixture(scope="module")
def cache_entry(tmp_path_factory):
    """A corpus and its pristine cache entry (the .ids and .json bytes)."""
    directory = tmp_path_factory.mktemp("idcache")
    (directory / "c.txt").write_text(CACHE_TEXT)
    data = prepare_data([directory / "c.txt"], val_frac=0.1, cache_dir=directory / "cache")
    (ids_path,) = (directory / "cache").glob("*.ids")
    expected = np.asarray(data.train_ids).copy(), np.asarray(data.val_ids).copy(), data.train_hash
    return directory, ids_path, ids_path.read_bytes(), ids_path.with_suffix(".json").read_bytes(), expected


json_values = st.recursive(st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                        max_size=3),
                           max_leaves=6)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["format", "version", "vocab", "length", "dtype", "fingerprint", "unknown", "unk",
                              "key"]),
       value=json_values,
       cut=st.integers(-50, 50), flips=st.lists(st.tuples(st.integers(0, 2999), st.integers(1, 255)), max_size=3))
def test_a_damaged_id_cache_is_never_believed(cache_entry, field, value, cut, flips):
    """Whatever is done to a cache entry (a metadata field replaced by any JSON value, bytes cut off or
    appended, bytes flipped), the ids training gets are the text's ids: the entry verifies or is rebuilt."""
    directory, ids_path, ids_bytes, meta_bytes, (train, val, train_hash) = cache_entry
    meta = json.loads(meta_bytes)
    meta[field] = value
    damaged = bytearray(ids_bytes[: len(ids_bytes) + cut] if cut < 0 else ids_bytes + bytes(cut))
    for position, delta in flips:
        if position < len(damaged):
            damaged[position] = (damaged[position] + delta) % 256
    ids_path.write_bytes(bytes(damaged))
    ids_path.with_suffix(".json").write_text(json.dumps(meta))
    data = prepare_data([directory / "c.txt"], val_frac=0.1, cache_dir=directory / "cache")
    assert np.array_equal(data.train_ids, train) and np.array_equal(data.val_ids, val)
    assert data.train_hash == train_hash
