"""Training: overfitting, determinism, bit-exact resume, checkpoints, and Ctrl-C on a real process."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import make_text

import charrnn
from charrnn.errors import CharrnnError
from charrnn.model import ModelConfig, load_checkpoint, load_model, save_checkpoint
from charrnn.train import TrainConfig, best_path, evaluate, train
from charrnn.vocab import Vocab

# the subprocess must run this checkout's charrnn, not whichever one is installed in the environment
SOURCE_ROOT = os.path.dirname(os.path.dirname(charrnn.__file__))


def run(text, steps, output, resume=None, val_frac=0.0, should_stop=lambda: False, **overrides):
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    n_val = int(len(ids) * val_frac)
    train_ids, val_ids = ids[: len(ids) - n_val], ids[len(ids) - n_val :]
    options = dict(seq_len=8, batch_size=4, lr=5e-3, steps=steps, eval_every=7)
    options.update(overrides)
    config = TrainConfig(**options)
    return train(ModelConfig(len(vocab), 16), config, vocab, train_ids, val_ids, output, resume=resume,
                 progress=False, should_stop=should_stop)  # fmt: skip


def test_overfits_a_tiny_corpus(tmp_path):
    text = "the quick brown fox jumps over the lazy dog.\n" * 10
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    config = TrainConfig(seq_len=16, batch_size=4, lr=1e-2, steps=400, eval_every=100, dropout=0.0)
    result = train(ModelConfig(len(vocab), 64), config, vocab, ids, ids[:0], tmp_path / "m.npz", progress=False)
    assert result.last_train_loss < 0.05
    assert evaluate(result.model, ids, 4, 16) < 0.05


def test_same_seed_same_run(tmp_path):
    text = make_text(3000)
    first = run(text, 15, tmp_path / "a.npz", seed=7)
    second = run(text, 15, tmp_path / "b.npz", seed=7)
    other = run(text, 15, tmp_path / "c.npz", seed=8)
    assert np.array_equal(first.model.flat, second.model.flat)
    assert not np.array_equal(first.model.flat, other.model.flat)


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "adagrad", "sgd"])
def test_resume_is_bit_exact(tmp_path, optimizer):
    """N steps straight == k steps, stop, resume for N-k more: across evaluations and epoch boundaries.
    (With a constant schedule; the cosine schedule's horizon is the run's budget, see the next test.)"""
    text = make_text(700)  # 21 steps per epoch of 4 x 8: the run crosses epochs and lr decays
    options = dict(optimizer=optimizer, lr_decay=0.9, val_frac=0.1, lr_schedule="constant")
    straight = run(text, 50, tmp_path / "straight.npz", **options)
    run(text, 23, tmp_path / "part.npz", **options)
    resumed = run(text, 50, tmp_path / "part.npz", resume=tmp_path / "part.npz", **options)
    assert resumed.state.step == 50
    assert np.array_equal(straight.model.flat, resumed.model.flat)
    assert straight.state.best_val_loss == resumed.state.best_val_loss
    a, meta_a, arrays_a = load_checkpoint(tmp_path / "straight.npz")
    b, meta_b, arrays_b = load_checkpoint(tmp_path / "part.npz")
    assert np.array_equal(a.flat, b.flat) and meta_a["step"] == meta_b["step"] == 50
    for name in arrays_a:
        assert np.array_equal(arrays_a[name], arrays_b[name]), name


def test_interrupted_and_resumed_is_bit_exact_with_the_cosine_schedule(tmp_path):
    """A run of N steps interrupted after k (as Ctrl-C does) and resumed with the same budget equals the
    straight run: the schedule's progress counts steps of the budget, not of the invocation."""
    text = make_text(700)
    options = dict(val_frac=0.1, lr_schedule="cosine")
    straight = run(text, 50, tmp_path / "straight.npz", **options)
    calls = iter(range(10**6))
    interrupted = run(text, 50, tmp_path / "part.npz", should_stop=lambda: next(calls) >= 23, **options)
    assert interrupted.stop_reason == "interrupted" and interrupted.state.step == 23
    resumed = run(text, 50, tmp_path / "part.npz", resume=tmp_path / "part.npz", **options)
    assert resumed.state.step == 50
    assert np.array_equal(straight.model.flat, resumed.model.flat)
    assert not np.array_equal(straight.model.flat, run(text, 50, tmp_path / "c.npz", val_frac=0.1,
                                                       lr_schedule="constant").model.flat)  # fmt: skip


def test_best_model_is_written_beside_output(tmp_path):
    result = run(make_text(3000), 30, tmp_path / "m.npz", val_frac=0.2)
    assert best_path(tmp_path / "m.npz") == tmp_path / "m.best.npz"
    best, meta, _ = load_checkpoint(tmp_path / "m.best.npz")
    assert meta["best_val_loss"] == result.state.best_val_loss
    assert evaluate(best, Vocab.from_text(make_text(3000)).encode(make_text(3000)[2400:]), 4, 8) == pytest.approx(
        result.state.best_val_loss, rel=1e-6
    )


def test_checkpoint_round_trip(tmp_path):
    result = run(make_text(2000), 5, tmp_path / "m.npz")
    model = load_model(tmp_path / "m.npz")
    assert model.vocab == result.model.vocab
    assert model.config == result.model.config
    assert np.array_equal(model.flat, result.model.flat)
    slot = np.arange(model.flat.size, dtype=model.dtype)
    save_checkpoint(tmp_path / "again.npz", model, {"note": "x"}, {"optim.m": slot, "extra": np.arange(3)})
    again, meta, arrays = load_checkpoint(tmp_path / "again.npz")
    assert np.array_equal(again.flat, model.flat) and meta["note"] == "x" and np.array_equal(arrays["optim.m"], slot)
    assert "extra" not in arrays  # arrays the format does not define are never read
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:  # readable with no charrnn code
        assert {"Wx", "Wu", "Wh", "bh", "Wy", "by", "vocab", "meta"} <= set(archive.files)


def test_corrupt_checkpoints_are_named(tmp_path):
    run(make_text(2000), 3, tmp_path / "m.npz")
    data = (tmp_path / "m.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    np.savez(tmp_path / "foreign.npz", weights=np.zeros(3))
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file at all")
    for name in ("truncated.npz", "foreign.npz", "garbage.npz", "missing.npz"):
        with pytest.raises(CharrnnError, match=name):
            load_model(tmp_path / name)


def test_float64_training_runs(tmp_path):
    result = run(make_text(2000), 5, tmp_path / "m.npz")
    assert result.model.dtype == np.float32
    vocab = Vocab.from_text(make_text(2000))
    config = TrainConfig(seq_len=8, batch_size=4, steps=5)
    result = train(ModelConfig(len(vocab), 8, 2, "relu", "float64"), config, vocab, vocab.encode(make_text(2000)),
                   np.zeros(0, np.uint8), tmp_path / "d.npz", progress=False)  # fmt: skip
    assert load_model(tmp_path / "d.npz").dtype == np.float64 and np.isfinite(result.last_train_loss)


def test_sigint_saves_a_loadable_checkpoint(tmp_path):
    """Ctrl-C on a real `charrnn train` process: it saves, says where, and exits 130."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(make_text(20000), encoding="utf-8")
    output = tmp_path / "model.npz"
    process = subprocess.Popen(
        [sys.executable, "-m", "charrnn", "train", str(corpus), "-o", str(output), "--hidden", "32",
         "--batch-size", "8", "--seq-len", "16", "--steps", "10000000", "--eval-every", "20", "-q"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": SOURCE_ROOT},
    )  # fmt: skip
    deadline = time.time() + 300
    while not output.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert output.exists(), "training never wrote its first checkpoint"
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert str(output) in stderr
    model, meta, _ = load_checkpoint(output)
    assert meta["step"] > 0
