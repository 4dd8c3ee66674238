"""Long-run experience: samples while training, the metrics log and curves, the divergence guard, patience."""

import json
import math
import struct
import sys

import numpy as np
import pytest
from conftest import make_text
from typer.testing import CliRunner

import charrnn.model
import charrnn.workspace
from charrnn.cli import app
from charrnn.model import ModelConfig, load_checkpoint
from charrnn.preview import SamplePreview
from charrnn.train import TrainConfig, train  # also loads sys.modules["charrnn.train"]
from charrnn.vocab import Vocab

runner = CliRunner()
SMALL = ["--hidden", "8", "--batch-size", "4", "--seq-len", "8", "-q"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def all_finite(path):
    with np.load(path, allow_pickle=False) as archive:
        return all(np.isfinite(archive[name]).all() for name in archive.files if archive[name].dtype.kind == "f")


# ---- samples while training ----


def test_samples_are_shown_at_each_evaluation(tmp_path, corpus_file):
    result = invoke("train", corpus_file, "-o", tmp_path / "m.npz", "--steps", "10", "--eval-every", "5",
                    "--sample-length", "30", "--sample-temperatures", "0.5,1.0", *SMALL)  # fmt: skip
    assert result.exit_code == 0, result.output
    for step in (5, 10):
        for temperature in ("0.5", "1"):
            assert f"sample at step {step}, temperature {temperature} " in result.stderr
    quiet = invoke("train", corpus_file, "-o", tmp_path / "q.npz", "--steps", "4", "--eval-every", "2",
                   "--sample-every", "0", *SMALL)  # fmt: skip
    assert quiet.exit_code == 0 and "sample at step" not in quiet.stderr
    bad = invoke("train", corpus_file, "--sample-temperatures", "0.5,-1", *SMALL)
    assert bad.exit_code == 2 and bad.stderr.startswith("Error: --sample-temperatures")


def test_sampling_does_not_perturb_training(tmp_path):
    text = make_text(2000)
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    config = TrainConfig(seq_len=8, batch_size=4, steps=12, eval_every=5, sample_every=3)
    seen = []
    preview = SamplePreview(length=20, temperatures=(0.7,), seed=3)

    def hook(model, step):
        seen.append((step, preview(model, step)))

    quiet = train(ModelConfig(len(vocab), 16), config, vocab, ids, ids[:0], tmp_path / "a.npz", progress=False)
    shown = train(ModelConfig(len(vocab), 16), config, vocab, ids, ids[:0], tmp_path / "b.npz", progress=False,
                  on_sample=hook)  # fmt: skip
    assert np.array_equal(quiet.model.flat, shown.model.flat)
    assert [step for step, _ in seen] == [3, 6, 9, 12]
    assert preview(shown.model, 12) == seen[-1][1]  # seeded by (seed, step): reproducible
    assert all(set(text) <= set(vocab.chars) and len(text) == 20 for _, [(_, text)] in seen)


# ---- metrics log and curves ----


def read_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_metrics_log_fresh_and_resumed(tmp_path, corpus_file):
    model = tmp_path / "m.npz"
    assert invoke("train", corpus_file, "-o", model, "--steps", "6", "--eval-every", "3", *SMALL).exit_code == 0
    records = read_lines(tmp_path / "m.metrics.jsonl")
    assert [r["step"] for r in records] == [3, 6]
    keys = {"step", "epoch", "elapsed_seconds", "lr", "train_nats_per_char", "val_nats_per_char",
            "val_bits_per_char", "chars_per_second"}  # fmt: skip
    assert keys <= set(records[0])
    assert records[0]["val_bits_per_char"] == pytest.approx(records[0]["val_nats_per_char"] / math.log(2))
    assert records[1]["elapsed_seconds"] >= records[0]["elapsed_seconds"] > 0
    result = invoke("train", corpus_file, "-o", model, "--resume", model, "--steps", "9", "--eval-every", "3", *SMALL)
    assert result.exit_code == 0, result.output
    assert [r["step"] for r in read_lines(tmp_path / "m.metrics.jsonl")] == [3, 6, 9]
    assert invoke("train", corpus_file, "-o", model, "--steps", "3", "--eval-every", "3", "--force",
                  *SMALL).exit_code == 0  # fmt: skip
    assert [r["step"] for r in read_lines(tmp_path / "m.metrics.jsonl")] == [3]  # a fresh run truncates


@pytest.fixture
def trained_with_metrics(tmp_path, corpus_file):
    result = invoke("train", corpus_file, "-o", tmp_path / "m.npz", "--steps", "12", "--eval-every", "3",
                    "--sample-every", "0", *SMALL)  # fmt: skip
    assert result.exit_code == 0, result.output
    return tmp_path / "m.npz"


def test_curves_in_the_terminal(trained_with_metrics):
    result = invoke("curves", trained_with_metrics, "--width", "40", "--height", "8")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "training" in lines[0] and "validation" in lines[0]
    assert len(lines) == 1 + 8 + 2 and "◆" in result.stdout and "•" in result.stdout
    ascii_plot = invoke("curves", trained_with_metrics, "--ascii", "--x", "time").stdout
    assert ascii_plot.isascii() and "seconds" in ascii_plot
    output = invoke("curves", trained_with_metrics.with_name("m.metrics.jsonl"), "--json").stdout
    *records, summary = [json.loads(line) for line in output.splitlines()]
    assert [r["step"] for r in records] == [3, 6, 9, 12] and {r["kind"] for r in records} == {"metrics"}
    assert summary["kind"] == "curves" and summary["png"] is None and summary["evaluations"] == 4


def test_curves_png_is_a_valid_image(tmp_path, trained_with_metrics):
    pytest.importorskip("matplotlib")
    result = invoke("curves", trained_with_metrics, "-o", tmp_path / "curves.png")
    assert result.exit_code == 0, result.output
    data = (tmp_path / "curves.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 0 and height > 0 and len(data) > 1000


def test_curves_without_matplotlib_is_one_line(tmp_path, trained_with_metrics, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    result = invoke("curves", trained_with_metrics, "-o", tmp_path / "c.png")
    assert result.exit_code == 1 and result.stderr.strip().splitlines() == [
        "Error: drawing a PNG needs matplotlib: pip install 'charrnn[plot]'"
    ]


def test_curves_errors(tmp_path):
    result = invoke("curves", tmp_path / "none.npz")
    assert result.exit_code == 1 and "none.metrics.jsonl does not exist" in result.stderr
    (tmp_path / "bad.metrics.jsonl").write_text('{"step": 1}\nnot json\n')
    result = invoke("curves", tmp_path / "bad.npz")
    assert result.exit_code == 1 and "line 2 is not valid JSON" in result.stderr and "Traceback" not in result.output


# ---- divergence guard ----


def test_one_blow_up_is_rolled_back_and_training_continues(tmp_path, corpus_file, monkeypatch):
    real = charrnn.workspace.Workspace.loss_and_grads
    calls = [0]

    def blows_up_once(self, *args, **kwargs):
        loss, grad, state = real(self, *args, **kwargs)
        calls[0] += 1
        if calls[0] == 7:  # step 7 of the run: after the evaluation at step 4
            grad[3] = np.nan
            return float("nan"), grad, state
        return loss, grad, state

    monkeypatch.setattr(charrnn.workspace.Workspace, "loss_and_grads", blows_up_once)
    output = tmp_path / "m.npz"
    result = invoke("train", corpus_file, "-o", output, "--steps", "10", "--eval-every", "4", "--lr", "0.004",
                    "--sample-every", "0", *SMALL)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "step 7: non-finite loss or gradient; rolled back to step 4 and halved the learning rate to 0.002" in (
        result.stderr
    )
    _, meta, _ = load_checkpoint(output)
    assert meta["step"] == 10 and meta["lr"] == pytest.approx(0.002)
    assert all_finite(output) and all_finite(tmp_path / "m.best.npz")


def test_repeated_blow_ups_stop_with_the_last_good_model(tmp_path, corpus_file):
    output = tmp_path / "m.npz"
    result = invoke("train", corpus_file, "-o", output, "--steps", "30", "--eval-every", "5", "--activation", "relu",
                    "--optimizer", "sgd", "--lr", "1e30", "--clip", "0", "--sample-every", "0", *SMALL)  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "rolled back to step 0" in result.stderr and "Traceback" not in result.output
    assert result.stderr.strip().splitlines()[-1].startswith("Error: training diverged 5 times in a row")
    assert all_finite(output)
    _, meta, _ = load_checkpoint(output)
    assert meta["step"] == 0


# ---- early stopping ----


def test_patience_stops_and_keeps_the_best(tmp_path, corpus_file, monkeypatch):
    losses = iter([3.0, 2.0, 2.5, 2.1, 2.2, 1.0])
    monkeypatch.setattr(sys.modules["charrnn.train"], "evaluate", lambda *args: next(losses))
    output = tmp_path / "m.npz"
    result = invoke("train", corpus_file, "-o", output, "--steps", "100", "--eval-every", "2", "--patience", "3",
                    "--sample-every", "0", *SMALL)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "stopped (patience) at step 10" in result.stderr and "best validation 2.0000" in result.stderr
    _, best_meta, _ = load_checkpoint(tmp_path / "m.best.npz")
    assert best_meta["step"] == 4 and best_meta["best_val_loss"] == 2.0
    assert load_checkpoint(output)[1]["evals_since_best"] == 3


def test_patience_needs_validation(tmp_path, corpus_file):
    result = invoke("train", corpus_file, "--val-frac", "0", "--patience", "2", *SMALL)
    assert result.exit_code == 2 and "--patience needs validation text" in result.stderr


def test_new_commands_and_options_have_help():
    result = invoke("curves", "--help")
    assert result.exit_code == 0 and "Usage" in result.output and "--ascii" in result.output
    text = invoke("train", "--help").output
    for option in ("--sample-every", "--sample-length", "--sample-temperatures", "--patience", "--init-from",
                   "--extend-vocab", "--unk", "--cache-dir", "--val-max-chars"):  # fmt: skip
        assert option in text, option
