"""Hostile resume state (issue 21): a checkpoint's training fields (step, epoch, chunk, learning rate,
recorded options...) may hold anything JSON can. Each lie is one `Error:` line naming the file and the
field, exit 1, before any training step — never a traceback, an int64 overflow in a kernel, a chunk past
the corpus or a negative learning rate quietly used."""

import json

import numpy as np
import pytest
from test_hostile_checkpoints import meta_of, npy, rewrite
from typer.testing import CliRunner

from charrnn.cli import app

runner = CliRunner()
SMALL = ["--hidden", "8", "--layers", "1", "--batch-size", "4", "--seq-len", "8", "--sample-every", "0", "-q"]


@pytest.fixture(scope="module")
def resumable(tmp_path_factory):
    directory = tmp_path_factory.mktemp("resume")
    from conftest import make_text

    (directory / "c.txt").write_text(make_text(6000))
    result = runner.invoke(app, ["train", str(directory / "c.txt"), "-o", str(directory / "r.npz"), "--steps", "4",
                                 "--eval-every", "2", *SMALL])  # fmt: skip
    assert result.exit_code == 0, result.output
    return directory


LIES = [
    ("chunk", 10**9, "resume state chunk 1000000000 is past the"),
    ("chunk", -5, "field chunk must be an integer >= 0"),
    ("chunk", 2.5, "field chunk must be an integer >= 0"),
    ("epoch", -1, "field epoch must be an integer >= 0"),
    ("epoch", "x", "field epoch must be an integer >= 0"),
    ("lr", "x", "field lr must be a positive finite number"),
    ("lr", float("nan"), "field lr must be a positive finite number"),
    ("lr", -1.0, "field lr must be a positive finite number"),
    ("step", -3, "field step must be an integer in [0, 2^62)"),
    ("step", 1.5, "field step must be an integer in [0, 2^62)"),
    ("step", True, "field step must be an integer in [0, 2^62)"),
    ("step", 10**30, "field step must be an integer in [0, 2^62)"),  # an int64 overflow in the optimizer kernel
    ("step", None, "field step must be an integer"),
    ("rng_state", "junk", "field rng_state must be null or an object"),
    ("train_config", "x", "field train_config must be an object"),
    ("train_config", {"batch_size": "4"}, "recorded option train_config.batch_size must be int"),
    ("train_config", {"batch_size": 4, "seq_len": 8, "optimizer": "adam", "lr": -1}, "recorded option --lr must be"),
    ("train_config", {"batch_size": 4, "seq_len": 8, "optimizer": "lion"}, "recorded option --optimizer must be"),
    ("best_val_loss", "x", "field best_val_loss must be null or a finite number"),
    ("best_val_loss", float("nan"), "field best_val_loss must be null or a finite number"),
    ("elapsed", float("inf"), "field elapsed must be a finite number >= 0"),
    ("evals_since_best", -1, "field evals_since_best must be an integer >= 0"),
    ("data_config", [1, 2], "field data_config must be an object"),
    ("data_config", {"val_frac": 5}, "recorded option --val-frac must be in [0, 1)"),
    ("data_config", {"encoding": "rot13"}, "recorded option --encoding is not a text encoding"),
    ("train_hash", 5, "field train_hash must be a string"),
]


@pytest.mark.parametrize(("field", "value", "fragment"), LIES, ids=[f"{f}={v!r}"[:40] for f, v, _ in LIES])
def test_a_lying_resume_state_is_one_line_naming_the_field(resumable, tmp_path, field, value, fragment):
    meta = meta_of(resumable / "r.npz")
    meta[field] = value
    bad = rewrite(resumable / "r.npz", tmp_path / "bad.npz", {"meta": npy(np.array(json.dumps(meta)))})
    before = bad.read_bytes()
    result = runner.invoke(app, ["train", str(resumable / "c.txt"), "--resume", str(bad), "--steps", "6", "-q"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and str(bad) in lines[0] and fragment in lines[0], result.stderr
    assert bad.read_bytes() == before  # nothing was trained or written


def test_a_carried_state_for_another_batch_size_never_reaches_a_kernel(resumable, tmp_path):
    wrong = np.zeros((1, 7, 8), np.float32)  # (L, B, H) with B = 7, the run's batch is 4
    bad = rewrite(resumable / "r.npz", tmp_path / "bad.npz", {"hidden": npy(wrong)})
    result = runner.invoke(app, ["train", str(resumable / "c.txt"), "--resume", str(bad), "--steps", "6", "-q"])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert errors == [f"Error: {bad}: array 'hidden' holds 7 streams, but the run has --batch-size 4"]
