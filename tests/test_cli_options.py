"""Options defined once (charrnn/config.py): checked before any corpus work, and continued by --resume."""

import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import charrnn.data
import charrnn.train
from charrnn.cli import app
from charrnn.config import DataConfig, ModelConfig, TrainConfig, resume_options
from charrnn.errors import OptionError
from charrnn.model import load_checkpoint

runner = CliRunner()
# deliberately far from the defaults: a resume that fell back to any default would not be bit-exact
RUN = ["--hidden", "8", "--batch-size", "4", "--seq-len", "8", "--optimizer", "rmsprop", "--lr", "0.01",
       "--dropout", "0.1", "--val-frac", "0.2", "--seed", "7", "--eval-every", "3", "--steps", "10",
       "--lr-schedule", "constant", "--sample-every", "0", "-q"]  # fmt: skip


TRAINING = sys.modules["charrnn.train"]  # the module (charrnn.train is the training function)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def weights(path: Path) -> np.ndarray:
    return load_checkpoint(path)[0].flat


@pytest.fixture
def interrupted_at_5(tmp_path, corpus_file, monkeypatch):
    """A run of RUN stopped at step 5 as Ctrl-C stops it (the checkpoint records RUN's options)."""
    real = TRAINING._stop_reason

    def ctrl_c_at_5(config, state, *args):
        return "interrupted" if state.step == 5 else real(config, state, *args)

    monkeypatch.setattr(TRAINING, "_stop_reason", ctrl_c_at_5)
    result = invoke("train", corpus_file, "-o", tmp_path / "m.npz", *RUN)
    monkeypatch.setattr(TRAINING, "_stop_reason", real)
    assert result.exit_code == 130, result.output
    assert load_checkpoint(tmp_path / "m.npz")[1]["step"] == 5
    return tmp_path / "m.npz"


def test_resume_without_repeating_options_is_bit_exact(tmp_path, corpus_file, interrupted_at_5):
    straight = invoke("train", corpus_file, "-o", tmp_path / "straight.npz", *RUN)
    assert straight.exit_code == 0, straight.output
    # only the corpus and the checkpoint: batch size, sequence length, optimizer, lr, dropout, seed, budget
    # and the validation split (a different split would be a different training text) all come from it
    resumed = invoke("train", corpus_file, "--resume", interrupted_at_5, "-o", interrupted_at_5, "-q")
    assert resumed.exit_code == 0, resumed.output
    assert "changed from its record" not in resumed.stderr
    assert "stopped (steps) at step 10" in resumed.stderr
    assert np.array_equal(weights(interrupted_at_5), weights(tmp_path / "straight.npz"))
    meta = load_checkpoint(interrupted_at_5)[1]
    assert meta["train_config"]["optimizer"] == "rmsprop" and meta["data_config"]["val_frac"] == 0.2


def test_an_explicit_override_is_reported(corpus_file, interrupted_at_5):
    result = invoke("train", corpus_file, "--resume", interrupted_at_5, "-o", interrupted_at_5, "--lr", "0.005",
                    "--steps", "12", "--seq-len", "8", "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if "changed from its record" in line]
    assert len(lines) == 1, result.stderr
    assert "--lr 0.005 (recorded: 0.01)" in lines[0] and "--steps 12 (recorded: 10)" in lines[0]
    assert "--seq-len" not in lines[0]  # given, but equal to the record
    meta = load_checkpoint(interrupted_at_5)[1]
    assert meta["step"] == 12 and meta["train_config"]["lr"] == 0.005 and meta["train_config"]["dropout"] == 0.1


def test_an_override_resume_cannot_honour_is_refused(corpus_file, interrupted_at_5):
    result = invoke("train", corpus_file, "--resume", interrupted_at_5, "-o", interrupted_at_5, "--batch-size", "8")
    assert result.exit_code == 1 and "cannot change it (leave --batch-size out to continue with 4)" in result.stderr


def test_giving_one_budget_option_replaces_the_recorded_budget():
    recorded = {"train_config": {"steps": 10, "epochs": 2.0, "lr": 0.01}, "data_config": {"val_frac": 0.2}}
    run = resume_options({TrainConfig: {"time_budget": 60.0}}, recorded)
    assert (run.train.steps, run.train.epochs, run.train.time_budget) == (None, None, 60.0)
    assert run.train.lr == 0.01 and run.data.val_frac == 0.2 and run.overrides == []
    fresh = resume_options({DataConfig: {"encoding": "latin-1"}}, None)
    assert fresh.train == TrainConfig() and fresh.data == DataConfig(encoding="latin-1")
    kept = resume_options({TrainConfig: {"threads": 2}}, {"train_config": {"threads": 1, "steps": 5}})
    assert kept.train.threads == 2 and kept.train.steps == 5 and kept.overrides == ["--threads 2 (recorded: 1)"]


def test_library_configs_apply_the_same_rules():
    with pytest.raises(OptionError, match="--activation must be one of tanh, relu"):
        ModelConfig(5, activation="gelu")
    with pytest.raises(OptionError, match=r"--dropout must be in \[0, 1\)"):
        TrainConfig(dropout=1.0)
    with pytest.raises(OptionError, match="--encoding"):
        DataConfig(encoding="klingon")


@pytest.mark.parametrize(
    "option, value",
    [("--activation", "gelu"), ("--hidden", "0"), ("--optimizer", "lion"), ("--encoding", "klingon"),
     ("--val-frac", "1.5"), ("--unk", "maybe"), ("--sample-temperatures", "0.5,-1"), ("--steps", "0")],
)  # fmt: skip
def test_option_values_are_checked_before_the_corpus_is_read(tmp_path, corpus_file, monkeypatch, option, value):
    def no_corpus_work(*args, **kwargs):
        raise AssertionError("the corpus was read before the options were checked")

    monkeypatch.setattr(charrnn.data, "scan_corpus", no_corpus_work)
    result = invoke("train", corpus_file, "-o", tmp_path / "m.npz", option, value, "-q")
    assert result.exit_code != 0 and option in result.stderr and "AssertionError" not in result.output
    assert not (tmp_path / "xdg-cache").exists()


def test_help_shows_every_default_from_the_configs():
    text = " ".join(invoke("train", "--help").output.replace("│", " ").split())  # undo the help's wrapping
    for fragment in ("[default: 512]", "[default: 2]", "[default: tanh]", "[default: float32]",
                     "[default: 0.002]", "[default: adam]", "[default: 200]", "[default: utf-8]"):  # fmt: skip
        assert fragment in text, fragment
