"""Issue 20, a command line people trust: no silent overwrites, options that explain themselves, output
that pipes. One test (or more) per point."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from charrnn.cli import app
from charrnn.model import load_checkpoint

runner = CliRunner()
SMALL = ["--hidden", "8", "--batch-size", "4", "--seq-len", "8", "--sample-every", "0", "-q"]


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.fixture
def trained(tmp_path, corpus_file):
    result = invoke("train", corpus_file, "-o", tmp_path / "keep.npz", "--steps", "6", "--eval-every", "3", *SMALL)
    assert result.exit_code == 0, result.output
    return tmp_path / "keep.npz"


# ---- 1. no silent overwrites; --resume writes back ----


def test_a_fresh_run_does_not_replace_a_checkpoint(tmp_path, corpus_file, trained):
    before = trained.read_bytes()
    result = invoke("train", corpus_file, "-o", trained, "--steps", "2", *SMALL)
    assert result.exit_code == 1 and len(error_lines(result)) == 1
    line = error_lines(result)[0]
    for fragment in ("keep.npz exists (a checkpoint trained 6 steps, best validation", "keep.best.npz",
                     "keep.metrics.jsonl", "--force", f"--resume {trained}"):  # fmt: skip
        assert fragment in line, (fragment, line)
    assert trained.read_bytes() == before
    forced = invoke("train", corpus_file, "-o", trained, "--steps", "2", "--force", *SMALL)
    assert forced.exit_code == 0, forced.output
    assert load_checkpoint(trained)[1]["step"] == 2


def test_a_fresh_run_does_not_replace_other_files(tmp_path, corpus_file):
    (tmp_path / "notes.npz").write_text("not a model")
    result = invoke("train", corpus_file, "-o", tmp_path / "notes.npz", "--steps", "2", *SMALL)
    assert result.exit_code == 1 and "notes.npz exists (not a charrnn checkpoint)" in result.stderr
    assert (tmp_path / "notes.npz").read_text() == "not a model"
    (tmp_path / "lone.metrics.jsonl").write_text("{}\n")  # a companion alone is work too
    result = invoke("train", corpus_file, "-o", tmp_path / "lone.npz", "--steps", "2", *SMALL)
    assert result.exit_code == 1 and "would replace lone.npz and lone.metrics.jsonl" in result.stderr.replace(
        str(tmp_path) + "/", "")


def test_resume_writes_back_to_the_resumed_file(tmp_path, corpus_file, trained):
    result = invoke("train", corpus_file, "--resume", trained, "--steps", "9", "-q")
    assert result.exit_code == 0, result.output
    assert f"resumed {trained} from step 6 (epoch 0); saving to {trained}" in result.stderr
    assert load_checkpoint(trained)[1]["step"] == 9 and not (tmp_path / "model.npz").exists()
    metrics = [json.loads(line)["step"] for line in (tmp_path / "keep.metrics.jsonl").read_text().splitlines()]
    assert metrics == [3, 6, 9]


def test_resume_into_another_existing_file_needs_force(tmp_path, corpus_file, trained):
    other = tmp_path / "other.npz"
    other.write_bytes(trained.read_bytes())
    result = invoke("train", corpus_file, "--resume", trained, "-o", other, "--steps", "9", "-q")
    assert result.exit_code == 1 and "other.npz exists" in result.stderr
    result = invoke("train", corpus_file, "--resume", trained, "-o", tmp_path / "new.npz", "--steps", "9", "-q")
    assert result.exit_code == 0, result.output
    assert load_checkpoint(tmp_path / "new.npz")[1]["step"] == 9 and load_checkpoint(trained)[1]["step"] == 6
    assert np.isfinite(load_checkpoint(tmp_path / "new.npz")[0].flat).all()
