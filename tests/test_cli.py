"""The command line as a user meets it: every bad input is one `Error:` line and a non-zero exit."""

import json

import numpy as np
import pytest
from conftest import make_text
from typer.testing import CliRunner

from charrnn.cli import app

runner = CliRunner()
SMALL = ["--hidden", "8", "--batch-size", "4", "--seq-len", "8", "-q"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *fragments, code=1):
    """Exit `code` (1: runtime failure, 2: usage mistake) and one `Error:` line naming the problem."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def trained(tmp_path, corpus_file):
    result = invoke("train", corpus_file, "-o", tmp_path / "m.npz", "--steps", "5", *SMALL)
    assert result.exit_code == 0, result.output
    return tmp_path / "m.npz"


def test_train_then_info(trained):
    result = invoke("info", trained, "--json")
    assert result.exit_code == 0
    details = json.loads(result.stdout)
    assert details["steps"] == 5 and details["config"]["hidden_size"] == 8
    assert details["total_parameters"] == sum(row["count"] for row in details["parameters"])
    assert details["best_val_bits_per_char"] == pytest.approx(details["best_val_nats_per_char"] / np.log(2))
    text = invoke("info", trained).stdout
    assert "Wh" in text and "total" in text and "best validation" in text


def test_resume_counts_all_steps(tmp_path, corpus_file, trained):
    result = invoke("train", corpus_file, "-o", trained, "--resume", trained, "--steps", "9", *SMALL)
    assert result.exit_code == 0, result.output
    assert json.loads(invoke("info", trained, "--json").stdout)["steps"] == 9


def test_directory_and_several_files(tmp_path):
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text(make_text(1500, seed=1))
    (tmp_path / "texts" / "b.txt").write_text(make_text(1500, seed=2))
    (tmp_path / "texts" / "image.bin").write_bytes(b"\x89PNG\0\0binary")
    result = invoke("train", tmp_path / "texts", "-o", tmp_path / "d.npz", "--steps", "2", *SMALL)
    assert result.exit_code == 0, result.output
    result = invoke("train", tmp_path / "texts" / "a.txt", tmp_path / "texts" / "b.txt", "-o", tmp_path / "f.npz",
                    "--steps", "2", *SMALL)  # fmt: skip
    assert result.exit_code == 0, result.output


def test_missing_file(tmp_path):
    assert_one_line_error(invoke("train", tmp_path / "nope.txt", *SMALL), "nope.txt", "does not exist")


def test_directory_without_text(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(invoke("train", tmp_path / "empty", *SMALL), "contains no text files")
    (tmp_path / "empty" / "x.bin").write_bytes(b"\0\1\2")
    assert_one_line_error(invoke("train", tmp_path / "empty", *SMALL), "contains no text files")


def test_empty_file(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    assert_one_line_error(invoke("train", tmp_path / "empty.txt", *SMALL), "empty.txt", "empty")


def test_invalid_utf8_names_the_byte_offset(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"hello world " * 300 + b"\xff\xfe more")
    assert_one_line_error(invoke("train", tmp_path / "bad.txt", *SMALL), "bad.txt", "byte offset 3600", "0xff")
    result = invoke("train", tmp_path / "bad.txt", "--errors", "replace", "--steps", "1", "-o", tmp_path / "r.npz",
                    *SMALL)  # fmt: skip
    assert result.exit_code == 0, result.output


def test_corpus_shorter_than_one_batch(tmp_path):
    (tmp_path / "short.txt").write_text("abc" * 10)
    assert_one_line_error(invoke("train", tmp_path / "short.txt", *SMALL), "needs at least 33")


def test_unwritable_output(tmp_path, corpus_file):
    assert_one_line_error(invoke("train", corpus_file, "-o", tmp_path / "no" / "dir" / "m.npz", *SMALL),
                          "does not exist")  # fmt: skip
    assert_one_line_error(invoke("train", corpus_file, "-o", tmp_path, *SMALL), "is a directory")


@pytest.mark.parametrize(
    "option, value, fragment",
    [("--hidden", "0", "--hidden"), ("--lr", "-0.1", "--lr"), ("--lr", "nan", "--lr"), ("--layers", "0", "--layers"),
     ("--batch-size", "0", "--batch-size"), ("--seq-len", "0", "--seq-len"), ("--optimizer", "lbfgs", "--optimizer"),
     ("--activation", "sigmoid", "--activation"), ("--dtype", "float16", "--dtype"),
     ("--val-frac", "1.5", "--val-frac"),
     ("--steps", "0", "--steps"), ("--clip", "-1", "--clip"), ("--encoding", "klingon", "klingon")],
)  # fmt: skip
def test_nonsense_hyperparameters(corpus_file, option, value, fragment):
    assert_one_line_error(invoke("train", corpus_file, *SMALL, option, value), fragment, code=2)


def test_bad_resume_files(tmp_path, corpus_file, trained):
    data = trained.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[:100])
    np.savez(tmp_path / "foreign.npz", a=np.zeros(2))
    for name, fragment in (("truncated.npz", "not a readable"), ("foreign.npz", "not a charrnn checkpoint"),
                           ("missing.npz", "does not exist")):  # fmt: skip
        assert_one_line_error(invoke("train", corpus_file, *SMALL, "--resume", tmp_path / name), name, fragment)
    best = tmp_path / "m.best.npz"
    assert_one_line_error(invoke("train", corpus_file, *SMALL, "--resume", best), "no training state")
    other = tmp_path / "other.txt"
    other.write_text(make_text(6000, seed=9))
    assert_one_line_error(invoke("train", other, *SMALL, "--resume", trained), "different")


def test_info_errors(tmp_path):
    assert_one_line_error(invoke("info", tmp_path / "none.npz"), "does not exist")


def test_help_for_every_command():
    for command in ("train", "info"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Usage" in result.output
