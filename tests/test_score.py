"""Scoring: against the NumPy reference and `Model.loss`, chunking, totals, unknown characters, per-line
sums, and the `charrnn score` command."""

import json
import math

import numpy as np
import pytest
import reference
from tiny_models import assert_user_error, random_model, save
from typer.testing import CliRunner

from charrnn.cli import app
from charrnn.errors import CharrnnError
from charrnn.score import line_scores, per_char_rows, score_ids, score_text
from charrnn.workspace import Workspace

runner = CliRunner()
TEXT = "abcab\nhgfe dcba\nbad cafe\nfade\n"


@pytest.mark.parametrize(("layers", "activation"), [(1, "tanh"), (2, "relu"), (3, "tanh")])
def test_score_matches_reference(layers, activation):
    model = random_model("abcdefgh \n", layers=layers, activation=activation, seed=layers)
    ids = model.vocab.encode(TEXT).astype(np.int64)
    log_probs, top_ids, top_log_probs = score_ids(model, ids, chunk_len=7, top=3)
    ref_log_probs, ref_top_ids, ref_top_log_probs = reference.score_chunk(
        model.params, ids, model.initial_state(1), activation, 3
    )
    np.testing.assert_allclose(log_probs, ref_log_probs, atol=1e-12)
    np.testing.assert_array_equal(top_ids, ref_top_ids)
    np.testing.assert_allclose(top_log_probs, ref_top_log_probs, atol=1e-12)


@pytest.mark.parametrize(("dtype", "tolerance"), [("float64", 1e-12), ("float32", 1e-4)])
@pytest.mark.parametrize("chunk_len", [1, 3, 8, 1000])
def test_chunked_equals_one_piece(dtype, tolerance, chunk_len):
    model = random_model("abcdefgh \n", hidden=24, layers=2, dtype=dtype, seed=4)
    whole = score_text(model, TEXT * 5, chunk_len=10_000)
    chunked = score_text(model, TEXT * 5, chunk_len=chunk_len)
    # float32: the recurrence's rounding differs between chunkings (BLAS picks other kernels by shape)
    np.testing.assert_allclose(chunked.log_probs, whole.log_probs, rtol=tolerance, atol=tolerance)
    assert abs(chunked.log_likelihood - whole.log_likelihood) <= tolerance * abs(whole.log_likelihood)


@pytest.mark.parametrize("layers", [1, 2])
def test_score_equals_training_loss(layers):
    """First character conditions, the rest are scored from a zero state: exactly Model.loss on the text."""
    model = random_model("abcdefgh \n", layers=layers, seed=7)
    result = score_text(model, TEXT)
    ids = result.ids
    loss, _ = Workspace(model).loss(ids[None, :-1], ids[None, 1:], model.initial_state(1))
    assert abs(-result.log_likelihood / result.scored - loss) < 1e-12


def test_totals_are_consistent():
    model = random_model("abcdefgh \n", seed=2)
    result = score_text(model, TEXT, top=2)
    summary = result.summary()
    assert result.scored == len(TEXT) - 1 == summary["scored"] and summary["characters"] == len(TEXT)
    assert math.isclose(result.log_probs.sum(), summary["log_likelihood_nats"])
    assert math.isclose(summary["log_likelihood_bits"], summary["log_likelihood_nats"] / math.log(2))
    assert math.isclose(summary["bits_per_char"], -summary["log_likelihood_bits"] / result.scored)
    assert math.isclose(summary["perplexity"], math.exp(summary["nats_per_char"]))
    rows = per_char_rows(result, model)
    assert [r["char"] for r in rows] == list(TEXT[1:])
    assert math.isclose(sum(r["bits"] for r in rows), -summary["log_likelihood_bits"])
    for row in rows:
        probs = [a["prob"] for a in row["alternatives"]]
        assert len(probs) == 2 and probs[0] >= probs[1] >= 0 and row["prob"] <= probs[0] + 1e-12


def test_lines_add_up_to_the_total():
    model = random_model("abcdefgh \n", seed=3)
    result = score_text(model, TEXT)
    lines = line_scores(result, model)
    assert [ln.text for ln in lines] == TEXT.splitlines()  # a final newline ends the last line
    assert sum(ln.scored for ln in lines) == result.scored
    assert math.isclose(sum(ln.log_likelihood for ln in lines), result.log_likelihood)
    assert lines[0].scored == len("abcab\n") - 1 and lines[1].scored == len("hgfe dcba\n")


def test_unknown_characters_follow_the_policy():
    model = random_model("abcdefgh \n", seed=1)
    with pytest.raises(CharrnnError, match="'z' x2"):
        score_text(model, "abzcdz")
    skipped = score_text(model, "abzcdz", unk="skip")
    assert skipped.unknown.counts == {"z": (2, 2)} and skipped.scored == 3
    assert skipped.log_likelihood == score_text(model, "abcd").log_likelihood
    mapped = score_text(model, "abzcdz", unk=" ")
    assert mapped.log_likelihood == score_text(model, "ab cd ").log_likelihood


@pytest.mark.parametrize("text", ["", "a", "zzz"])
def test_too_little_text_is_an_error(text):
    with pytest.raises(CharrnnError):
        score_text(random_model(), text, unk="skip")


# ---- the command ----


@pytest.fixture
def model_file(tmp_path):
    return save(random_model("abcdefgh \n", hidden=16, seed=5, dtype="float32"), tmp_path / "m.npz")


def test_cli_file_stdin_and_text_agree(model_file, tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(TEXT.replace("\n", "\r\n"), encoding="utf-8")  # CRLF normalised as for training
    from_file = json.loads(runner.invoke(app, ["score", str(model_file), str(path), "--json"]).stdout)
    from_stdin = json.loads(runner.invoke(app, ["score", str(model_file), "-", "--json"], input=TEXT).stdout)
    from_text = json.loads(runner.invoke(app, ["score", str(model_file), "--text", TEXT, "--json"]).stdout)
    for key in ("scored", "log_likelihood_nats", "bits_per_char", "perplexity", "nats_per_char"):
        assert from_file[key] == from_stdin[key] == from_text[key]
    assert from_file["scored"] == len(TEXT) - 1


def test_cli_per_char_and_per_line(model_file):
    result = runner.invoke(app, ["score", str(model_file), "--text", TEXT, "--per-char", "--per-line", "--json"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]  # JSON lines: chars, lines, summary
    chars = [r for r in records if r["kind"] == "char"]
    lines = [r for r in records if r["kind"] == "line"]
    assert len(chars) == len(TEXT) - 1 and len(chars[0]["alternatives"]) == 3
    assert len(lines) == len(TEXT.splitlines()) and records[-1]["kind"] == "score"
    assert records == chars + lines + records[-1:]
    assert sum(r["log_likelihood_nats"] for r in lines) == pytest.approx(records[-1]["log_likelihood_nats"])
    text = runner.invoke(app, ["score", str(model_file), "--text", TEXT, "--per-char", "--per-line"])
    assert text.exit_code == 0 and "bits/char" in text.stdout and "perplexity" in text.stdout


def test_cli_reports_unknown_characters(model_file):
    result = runner.invoke(app, ["score", str(model_file), "--text", "abzz cd", "--unk", "skip", "--json"])
    assert json.loads(result.stdout)["unknown"] == {"policy": "skip", "total": 2, "characters": {"z": 2},
                                                    "first_positions": {"z": 2}}
    result = runner.invoke(app, ["score", str(model_file), "--text", "abzz cd", "--unk", "map:a"])
    assert "mapped to 'a'" in result.stdout


@pytest.mark.parametrize(
    "args",
    [(["--text", ""], 1), (["--text", "a"], 1), (["--text", "abz"], 1), ([], 2), (["missing.txt"], 1),
     (["-", "--text", "ab"], 2), (["--text", "ab", "--unk", "map:Q"], 1),
     (["--text", "ab", "--alternatives", "-1"], 2)],
)  # fmt: skip
def test_cli_bad_input_is_one_line_error(model_file, args):
    args, code = args
    result = runner.invoke(app, ["score", str(model_file), *args])
    assert_user_error(result, code)


def test_cli_empty_stdin_and_bad_models(model_file, tmp_path):
    assert_user_error(runner.invoke(app, ["score", str(model_file), "-"], input=""))
    corrupt = tmp_path / "c.npz"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    for path in (tmp_path / "missing.npz", corrupt, tmp_path):
        assert_user_error(runner.invoke(app, ["score", str(path), "--text", "abc"]))


def test_score_baseline_beside_the_model(tmp_path):
    """`score --baseline TRAIN` adds n-gram figures on the same characters: orders 1-5, and on a text that
    repeats the training text the 5-gram beats the unigram."""
    from charrnn.model import save_checkpoint

    model = random_model("abcdefgh \n", hidden=8, dtype="float32", seed=1)
    save_checkpoint(tmp_path / "m.npz", model, {}, {})
    train = tmp_path / "train.txt"
    train.write_text(TEXT * 20)
    result = CliRunner().invoke(app, ["score", str(tmp_path / "m.npz"), str(train), "--baseline", str(train), "--json"])
    assert result.exit_code == 0, result.output
    baselines = {row["order"]: row["nats_per_char"] for row in json.loads(result.stdout)["baselines"]}
    assert sorted(baselines) == [1, 2, 3, 4, 5]
    assert baselines[5] < baselines[1]
    text_result = CliRunner().invoke(app, ["score", str(tmp_path / "m.npz"), str(train), "--baseline", str(train)])
    assert "5-gram baseline" in text_result.stdout
