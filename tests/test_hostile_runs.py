"""Runs that must lose nothing (issue 21): history survives early failures, stale companions go, one writer
per output, SIGTERM saves like Ctrl-C, Ctrl-C cuts a long evaluation short, and scoring/sampling stream
in memory that does not grow with the text."""

import importlib
import json
import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import make_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_models import random_model
from typer.testing import CliRunner

import charrnn
import charrnn.workspace
from charrnn.cli import app
from charrnn.errors import CharrnnError
from charrnn.model import load_checkpoint
from charrnn.outputs import hold_output, lock_path

runner = CliRunner()
SMALL = ["--hidden", "8", "--layers", "1", "--batch-size", "4", "--seq-len", "8", "--sample-every", "0", "-q"]
TRAINING = importlib.import_module("charrnn.train")  # the module (charrnn.train is the function)
SOURCE_ROOT = os.path.dirname(os.path.dirname(charrnn.__file__))
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": SOURCE_ROOT}


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def files(*paths):
    return {path.name: path.read_bytes() for path in paths if path.exists()}


@pytest.fixture
def history(tmp_path, corpus_file):
    """A trained model with its best model and metrics log: the work a later run must not lose."""
    result = invoke("train", corpus_file, "-o", tmp_path / "m.npz", "--steps", "6", "--eval-every", "3", *SMALL)
    assert result.exit_code == 0, result.output
    paths = [tmp_path / "m.npz", tmp_path / "m.best.npz", tmp_path / "m.metrics.jsonl"]
    assert all(path.exists() for path in paths)
    return paths


# ---- history ----


def test_a_run_that_fails_early_keeps_checkpoint_best_and_metrics(tmp_path, history, monkeypatch):
    before = files(*history)
    short = tmp_path / "short.txt"
    short.write_text("abc")
    result = invoke("train", short, "-o", history[0], "--force", *SMALL)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert files(*history) == before

    def fails(*args, **kwargs):  # after the corpus is read and the model built, before the first evaluation
        raise CharrnnError("the n-gram baselines failed")

    monkeypatch.setattr(TRAINING, "baseline_table", fails)
    result = invoke("train", tmp_path / "corpus.txt", "-o", history[0], "--force", "--steps", "4", *SMALL)
    assert result.exit_code == 1 and result.stderr.strip() == "Error: the n-gram baselines failed"
    assert files(*history) == before


def test_a_forced_fresh_run_removes_the_stale_best_model(tmp_path, corpus_file, history):
    result = invoke("train", corpus_file, "-o", history[0], "--force", "--val-frac", "0", "--steps", "2", *SMALL)
    assert result.exit_code == 0, result.output
    assert not history[1].exists() and "the best model of an earlier run" in result.stderr
    assert [r["step"] for r in map(json.loads, history[2].read_text().splitlines())] == [2]


def test_a_forced_fresh_run_with_validation_replaces_the_best_model(corpus_file, history):
    result = invoke("train", corpus_file, "-o", history[0], "--force", "--steps", "2", *SMALL)
    assert result.exit_code == 0, result.output
    assert load_checkpoint(history[1])[1]["step"] == 2  # this run's best, not the earlier one's


def test_resuming_into_another_file_carries_the_history(tmp_path, corpus_file, history):
    other = tmp_path / "other.npz"
    result = invoke("train", corpus_file, "--resume", history[0], "-o", other, "--steps", "9", "--eval-every", "3",
                    "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    steps = [r["step"] for r in map(json.loads, (tmp_path / "other.metrics.jsonl").read_text().splitlines())]
    assert steps == [3, 6, 9]


def test_a_torn_metrics_line_does_not_stop_a_resume(corpus_file, history):
    with open(history[2], "a") as log:
        log.write('{"step": 7, "train_nats')  # kill -9 in the middle of an append
    result = invoke("train", corpus_file, "--resume", history[0], "--steps", "9", "--eval-every", "3", "-q")
    assert result.exit_code == 0, result.output
    steps = [r["step"] for r in map(json.loads, history[2].read_text().splitlines())]
    assert steps == [3, 6, 9]


# ---- one writer per output ----

HOLDER = """
import sys, time
from charrnn.outputs import hold_output
with hold_output(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_writer_is_refused_while_the_first_holds_the_output(tmp_path, corpus_file):
    output = tmp_path / "m.npz"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(output)], stdout=subprocess.PIPE, text=True,
                              env=ENV)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        result = invoke("train", corpus_file, "-o", output, "--steps", "2", *SMALL)
        assert result.exit_code == 1 and not output.exists()
        line = result.stderr.strip()
        assert line == f"Error: {output} is being written by another charrnn process (pid {holder.pid}); wait for " \
                       "it to finish or choose another output", line  # fmt: skip
    finally:
        holder.kill()  # kill -9: the kernel drops the lock with the process
        holder.wait()
    result = invoke("train", corpus_file, "-o", output, "--steps", "2", *SMALL)
    assert result.exit_code == 0, result.output
    assert not lock_path(output).exists()  # released and removed


def test_the_lock_is_reentrant_and_released_on_errors(tmp_path):
    output = tmp_path / "x.npz"
    with pytest.raises(RuntimeError), hold_output(output):
        with hold_output(output):  # the CLI holds it, then the training loop takes it again
            assert lock_path(output).exists()
        assert lock_path(output).exists()
        raise RuntimeError
    assert not lock_path(output).exists()
    with hold_output(output):  # free again
        pass


def test_sigterm_saves_like_ctrl_c_and_a_concurrent_run_is_refused(tmp_path):
    """A real `charrnn train` process: while it runs, a second run on its output is refused; SIGTERM (a
    scheduler's stop) makes it save, say where, and exit 143."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(make_text(20000), encoding="utf-8")
    output = tmp_path / "model.npz"
    process = subprocess.Popen(
        [sys.executable, "-m", "charrnn", "train", str(corpus), "-o", str(output), "--hidden", "16",
         "--batch-size", "8", "--seq-len", "16", "--steps", "10000000", "--eval-every", "20", "-q"],
        stderr=subprocess.PIPE, text=True, env=ENV,
    )  # fmt: skip
    deadline = time.time() + 300
    while not output.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert output.exists(), "training never wrote its first checkpoint"
    second = invoke("train", corpus, "-o", output, "--force", "--steps", "2", *SMALL)
    assert second.exit_code == 1 and f"(pid {process.pid})" in second.stderr
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr and "stopped (interrupted)" in stderr and str(output) in stderr
    assert load_checkpoint(output)[1]["step"] > 0 and not lock_path(output).exists()


def send_at_step(monkeypatch, signals, step):
    """Send `signals` to this process while training step `step` runs (as a scheduler or a user would)."""
    real = charrnn.workspace.Workspace.loss_and_grads
    calls = [0]

    def loss_and_grads(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == step:
            for number in signals:
                os.kill(os.getpid(), number)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(charrnn.workspace.Workspace, "loss_and_grads", loss_and_grads)


@pytest.mark.parametrize(("signals", "status", "saved_step"), [
    ([signal.SIGTERM], 143, 3), ([signal.SIGINT], 130, 3), ([signal.SIGTERM, signal.SIGTERM], 143, None),
    ([signal.SIGINT, signal.SIGINT], 130, None),
])  # fmt: skip
def test_signals_during_training(tmp_path, corpus_file, monkeypatch, signals, status, saved_step):
    """The first SIGTERM or Ctrl-C stops at the step boundary and saves; a second one stops at once."""
    send_at_step(monkeypatch, signals, 3)
    output = tmp_path / "m.npz"
    result = invoke("train", corpus_file, "-o", output, "--steps", "1000", "--eval-every", "1000", *SMALL)
    assert result.exit_code == status, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if saved_step is None:
        assert result.stderr.strip().splitlines()[-1] in ("Terminated.", "Interrupted.")
    else:
        assert "stopped (interrupted) at step 3" in result.stderr
        assert load_checkpoint(output)[1]["step"] == saved_step
    assert not lock_path(output).exists()


def test_ctrl_c_abandons_a_long_evaluation(tmp_path, monkeypatch):
    """Ctrl-C during the evaluation: no further validation chunk is evaluated once the grace period (0 here)
    is over, the checkpoint is saved without a validation loss, the best model is untouched."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(make_text(40000), encoding="utf-8")
    monkeypatch.setattr(TRAINING, "ABANDON_AFTER", 0.0)
    real = charrnn.workspace.Workspace.loss
    chunks = []

    def loss(self, *args, **kwargs):  # evaluation chunks only (training uses loss_and_grads)
        chunks.append(time.perf_counter())
        if len(chunks) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(charrnn.workspace.Workspace, "loss", loss)
    output = tmp_path / "m.npz"
    started = time.perf_counter()
    result = invoke("train", corpus, "-o", output, "--steps", "4", "--eval-every", "4", "--val-frac", "0.5",
                    *SMALL)  # fmt: skip
    assert result.exit_code == 130, result.output
    assert len(chunks) == 3  # of the 20,000 / (4 x 8) = 625 chunks the evaluation has
    assert "evaluation abandoned (stop requested)" in result.stderr
    meta = load_checkpoint(output)[1]
    assert meta["step"] == 4 and meta["best_val_loss"] is None and not (tmp_path / "m.best.npz").exists()
    record = json.loads((tmp_path / "m.metrics.jsonl").read_text())
    assert record["step"] == 4 and record["val_nats_per_char"] is None
    assert time.perf_counter() - started < 120


def test_an_evaluation_that_is_nearly_done_finishes(tmp_path, corpus_file, monkeypatch):
    """Within the grace period the evaluation completes: a short validation still gets its loss. (The
    period is long here: the test must not depend on how busy the machine is.)"""
    monkeypatch.setattr(TRAINING, "ABANDON_AFTER", 60.0)
    send_at_step(monkeypatch, [signal.SIGINT], 4)
    result = invoke("train", corpus_file, "-o", tmp_path / "m.npz", "--steps", "100", "--eval-every", "2", *SMALL)
    assert result.exit_code == 130 and "abandoned" not in result.stderr
    assert load_checkpoint(tmp_path / "m.npz")[1]["best_val_loss"] is not None


# ---- streaming: memory does not grow with the text ----

TEXT = make_text(5000, seed=3, alphabet="abcdefgh \n")


@pytest.fixture(scope="module")
def model():
    return random_model("abcdefgh \n", hidden=12, layers=2, seed=5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(0, len(TEXT)), max_size=12), chunk_len=st.sampled_from([1, 7, 64, 1024]))
def test_any_cutting_of_a_stream_scores_bit_for_bit_the_same(model, cuts, chunk_len):
    from charrnn.score import score_text
    from charrnn.stream import LineTracker, TextScorer

    whole = score_text(model, TEXT, chunk_len=chunk_len, top=2)
    bounds = [0, *sorted(cuts), len(TEXT)]
    scorer, tracker, log_probs, lines = TextScorer(model, top=2, chunk_len=chunk_len), LineTracker(model), [], []
    chunks = [c for a, b in zip(bounds, bounds[1:], strict=False) for c in scorer.feed(TEXT[a:b])]
    chunks += scorer.finish()
    for chunk in chunks:
        assert chunk.ids.size <= chunk_len  # what is held at once does not grow with the text
        log_probs.append(chunk.log_probs)
        lines += tracker.add(chunk, scorer.first_id)
    lines += tracker.finish()
    np.testing.assert_array_equal(np.concatenate(log_probs), whole.log_probs)
    assert scorer.log_likelihood == whole.log_likelihood and scorer.summary() == whole.summary()
    from charrnn.score import line_scores

    assert lines == line_scores(whole, model)


def test_unknown_characters_are_found_across_pieces_with_their_positions(model):
    from charrnn.stream import TextScorer

    scorer = TextScorer(model, unk="skip")
    for piece in ("abZc", "deZ", "Yab"):
        list(scorer.feed(piece))
    scorer.finish()
    assert scorer.unknown.counts == {"Z": (2, 2), "Y": (1, 7)}
    strict = TextScorer(model, where="f.txt")
    list(strict.feed("abcdefgh" * 10))
    with pytest.raises(CharrnnError, match=r"f.txt: 1 character\(s\) not in the model's vocabulary: 'Z' x1 \(first "
                       r"at 82\)"):  # fmt: skip
        list(strict.feed("abZ"))


def test_the_command_streams_a_file_and_agrees_with_the_library(tmp_path, model):
    from charrnn.model import save_checkpoint
    from charrnn.score import line_scores, score_text

    save_checkpoint(tmp_path / "m.npz", model, {}, {})
    (tmp_path / "t.txt").write_text(TEXT * 3)
    result = invoke("score", tmp_path / "m.npz", tmp_path / "t.txt", "--per-char", "--per-line", "--alternatives",
                    "2", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [r["kind"] for r in records]
    whole = score_text(model, TEXT * 3, top=2)
    lines = line_scores(whole, model)
    assert kinds == ["char"] * whole.scored + ["line"] * len(lines) + ["score"]  # the documented order
    assert records[-1]["log_likelihood_nats"] == whole.log_likelihood
    assert [r["prob"] for r in records[: whole.scored]] == [math.exp(lp) for lp in whole.log_probs.tolist()]
    assert [r["log_likelihood_nats"] for r in records if r["kind"] == "line"] == [ln.log_likelihood for ln in lines]


def test_a_sample_that_is_only_printed_is_not_kept(model):
    from charrnn.generate import sample

    kept = sample(model, 3000, seed=4)
    streamed = sample(model, 3000, seed=4, keep_text=False)
    text = "".join(pieces[0] for pieces in streamed)
    assert text == kept.run()[0].text and streamed._texts == [[]]
    assert streamed.results[0].text == "" and streamed.results[0].length == 3000
    assert streamed.results[0].log_prob_model == kept.results[0].log_prob_model


def test_an_endless_sample_streams_until_the_reader_stops(tmp_path, model):
    """`sample -n 10^20` does not try to hold 10^20 characters: it streams until `head` has enough."""
    from charrnn.model import save_checkpoint

    save_checkpoint(tmp_path / "m.npz", model, {}, {})
    command = f"{sys.executable} -m charrnn sample {tmp_path / 'm.npz'} -n {10**20} --seed 1 | head -c 300000"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, timeout=300, env=ENV)
    assert done.returncode == 0 and len(done.stdout) == 300000 and done.stderr == b"", done.stderr
