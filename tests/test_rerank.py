"""Rescoring n-best lists: reading them (charrnn.nbest), ranking (charrnn.rerank), `charrnn rerank`."""

import json
import math

import numpy as np
import pytest
from tiny_models import assert_user_error, random_model, save, train_tiny
from typer.testing import CliRunner

from charrnn.cli import app
from charrnn.errors import CharrnnError
from charrnn.nbest import BadList, NBest, parse_nbest
from charrnn.rerank import rank_order, rerank
from charrnn.score import score_text

CHARS = "abcdefgh \n"
runner = CliRunner()


def lists_of(*groups, scores=None):
    return [NBest(i + 1, 1, i + 1, list(g), None if scores is None else scores[i]) for i, g in enumerate(groups)]


# ---- reading ----


def test_json_lines_and_plain_text_are_read_with_ids_scores_and_spaces_kept():
    text = '{"id": "p1", "candidates": ["ab", "a b"], "scores": [-1, -2.5]}\n\n{"candidates": [" x ", ""]}\n'
    first, second = parse_nbest(text)
    assert (first.id, first.candidates, first.scores, first.line) == ("p1", ["ab", "a b"], [-1.0, -2.5], 1)
    assert (second.id, second.candidates, second.scores, second.line) == (2, [" x ", ""], None, 3)
    plain = parse_nbest("ab \n a\n\n  \n\ncd\nce\ncf\n")
    assert [(n.id, n.line, n.candidates) for n in plain] == [(1, 1, ["ab ", " a"]), (2, 6, ["cd", "ce", "cf"])]
    assert parse_nbest("{a\n{b\n", fmt="text")[0].candidates == ["{a", "{b"]  # a brace is not always JSON


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"candidates": []}', "line 2: the list has no candidates"),
        ('{"candidates": ["only"]}', "line 2: the list has one candidate: nothing to rank"),
        ('{"candidates": ["a", "b"', "line 2: not valid JSON: Expecting ',' delimiter (column 25)"),
        ('["a", "b"]', 'line 2: expected a JSON object with "candidates", got a list'),
        ('{"cands": ["a", "b"]}', 'line 2: the object has no "candidates"'),
        ('{"candidates": "ab"}', 'line 2: "candidates" must be a list of strings, got a string'),
        ('{"candidates": ["a", 3]}', "line 2: candidate 2 is a number, not a string"),
        ('{"candidates": ["a", "b\\nc"]}', "line 2: candidate 2 contains a line break"),
        ('{"candidates": ["a", "b"], "scores": [1]}', "line 2: 1 scores for 2 candidates"),
        ('{"candidates": ["a", "b"], "scores": {"a": 1}}', 'line 2: "scores" must be a list of numbers, got an object'),
        ('{"candidates": ["a", "b"], "scores": [1, "2"]}', "line 2: score 2 must be a finite number, got a string"),
        ('{"candidates": ["a", "b"], "scores": [1, NaN]}', "line 2: score 2 must be a finite number, got nan"),
        ('{"candidates": ["a", "b"], "scores": [true, 1]}', "line 2: score 1 must be a finite number, got a boolean"),
        ('{"id": [1], "candidates": ["a", "b"]}', 'line 2: "id" must be a string, a number or null, got a list'),
    ],
)
def test_every_bad_json_list_is_one_error_naming_its_line(line, message):
    text = '{"candidates": ["x", "y"]}\n' + line + "\n"
    with pytest.raises(CharrnnError, match="^in.txt " + message.replace("(", r"\(").replace(")", r"\)")):
        parse_nbest(text, "in.txt")
    (good, bad) = parse_nbest(text, "in.txt", keep_going=True)
    assert isinstance(good, NBest) and isinstance(bad, BadList) and bad.line == 2 and bad.number == 2


def test_plain_text_problems_and_empty_input():
    with pytest.raises(CharrnnError, match="f line 4: the list has one candidate"):
        parse_nbest("a\nb\n\nc\n\nd\ne\n", "f")
    assert parse_nbest("a\n\nc\n", allow_single=True)[1].candidates == ["c"]
    kept = parse_nbest("a\nb\n\nc\n\nd\ne\n", keep_going=True)
    assert [type(x).__name__ for x in kept] == ["NBest", "BadList", "NBest"] and kept[1].id == 2
    with pytest.raises(CharrnnError, match="f has no n-best lists"):
        parse_nbest(" \n\n", "f")
    with pytest.raises(CharrnnError, match="--format must be one of"):
        parse_nbest("a\nb\n", fmt="csv")
    assert parse_nbest('{"id": 7, "candidates": ["a"]}', keep_going=True)[0].id == 7


# ---- ranking ----


def test_a_candidates_score_is_score_text_of_its_line_and_the_best_wins():
    model = random_model(CHARS, hidden=16, layers=2, seed=1)
    lists = lists_of(["abc", "abd", "bad cafe", ""], ["hh", "h h", "hhh"])
    for ranking in rerank(model, lists):
        for i, candidate in enumerate(ranking.nbest.candidates):
            expected = score_text(model, "\n" + candidate + "\n")
            assert ranking.log_probs[i] == pytest.approx(expected.log_likelihood, abs=1e-10)
            assert ranking.scored[i] == expected.scored == len(candidate) + 1
        assert ranking.best == int(np.argmax(ranking.log_probs))
        assert ranking.text == ranking.nbest.candidates[ranking.best]
        assert sorted(ranking.ranks.tolist()) == list(range(1, len(ranking.ranks) + 1))


def test_identical_candidates_get_identical_scores_and_ties_go_to_the_first():
    model = random_model(CHARS, hidden=16, layers=2, dtype="float32", seed=2)
    rng = np.random.default_rng(3)
    many = ["".join(rng.choice(list("abcdefgh "), 30)) for _ in range(400)]
    lists = lists_of(*[many[i : i + 8] for i in range(0, 400, 8)], ["dup line", "dup line", "x"], many[5:9])
    ranked = rerank(model, lists)
    twins = ranked[-2]
    assert twins.log_probs[0] == twins.log_probs[1] and twins.ranks[0] < twins.ranks[1]
    assert np.array_equal(ranked[-1].log_probs, ranked[0].log_probs[5:8].tolist() + [ranked[1].log_probs[0]])
    assert rank_order(np.array([1.0, 3.0, 3.0, 2.0])).tolist() == [4, 1, 2, 3]


def test_weights_length_normalisation_and_recogniser_scores_combine():
    model = random_model(CHARS, hidden=12, seed=4)
    lists = lists_of(["ab", "abcdefgh"], scores=[[0.0, 5.0]])
    plain = rerank(model, lists)[0]
    lp, n = plain.log_probs, plain.scored
    assert np.allclose(plain.combined, lp + [0.0, 5.0])
    normed = rerank(model, lists, lm_weight=2.0, length_norm=True)[0]
    assert np.allclose(normed.combined, 2.0 * lp / n + [0.0, 5.0])
    assert rerank(model, lists, lm_weight=0.0)[0].best == 1  # the recogniser alone
    with pytest.raises(CharrnnError, match="--lm-weight must be a finite number >= 0"):
        rerank(model, lists, lm_weight=-1.0)
    with pytest.raises(CharrnnError, match="list 1: 1 scores for 2 candidates"):
        rerank(model, lists_of(["a", "b"], scores=[[1.0]]))


def test_unknown_characters_are_never_free():
    model = random_model(CHARS, hidden=12, seed=5)
    ranking = rerank(model, lists_of(["abc", "ab\u2603c", "abc\u2603"]), unk_penalty=3.0)[0]
    assert ranking.unknown.tolist() == [0, 1, 1]
    skipped = score_text(model, "\nab\u2603c\n", unk="skip").log_likelihood
    assert ranking.log_probs[1] == pytest.approx(skipped - 3.0 * math.log(2))
    assert ranking.best == 0
    record = ranking.record()
    assert record["candidates"][1]["unknown_chars"] == 1
    assert record["candidates"][1]["log_prob_bits"] == pytest.approx(ranking.log_probs[1] / math.log(2))


# ---- the command ----


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    text = "the cat sat on the mat\nthe hat is on the cat\na bat and a rat sat\n" * 40
    path = tmp_path_factory.mktemp("rerank") / "m.npz"
    return save(train_tiny(text, path, hidden=24, steps=300), path)


def test_the_command_picks_the_likely_reading_from_text_or_json(trained, tmp_path):
    nbest = tmp_path / "n.txt"
    nbest.write_text("tbe cat sat on the mat\nthe cat sat on the mat\n\nthe hat is on tbe cat\nthe hat is on the cat\n")
    result = runner.invoke(app, ["rerank", str(trained), str(nbest)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "the cat sat on the mat\nthe hat is on the cat\n"
    lines = '{"id": "q", "candidates": ["a bat and a rat sat", "a bat anda rat sat"], "scores": [0, 0]}\n'
    result = runner.invoke(app, ["rerank", str(trained), "-", "--json"], input=lines)
    record = json.loads(result.stdout)
    assert record["id"] == "q" and record["best"] == 0 and record["text"] == "a bat and a rat sat"
    row = record["candidates"][1]
    assert set(row) == {"index", "text", "rank", "log_prob", "log_prob_bits", "bits_per_char", "chars_scored",
                        "unknown_chars", "recogniser_score", "score"}  # fmt: skip
    assert row["rank"] == 2 and row["chars_scored"] == 19


def test_the_command_refuses_bad_input_in_one_line(trained, tmp_path):
    bad = '{"candidates": ["a", "b"]}\n{"candidates": ["a", "b"]\n'
    assert_user_error(result := runner.invoke(app, ["rerank", str(trained)], input=bad))
    assert "<stdin> line 2: not valid JSON" in result.stderr and result.stdout == ""
    assert_user_error(result := runner.invoke(app, ["rerank", str(trained)], input="one\n\ntwo\nthree\n"))
    assert "<stdin> line 1: the list has one candidate" in result.stderr
    assert_user_error(runner.invoke(app, ["rerank", str(trained), str(tmp_path / "missing.txt")]))
    assert_user_error(result := runner.invoke(app, ["rerank", str(trained)], input=b"ab\n\xff\n"))
    assert "invalid UTF-8 at byte offset 3" in result.stderr
    assert_user_error(runner.invoke(app, ["rerank", str(trained), "--unk-penalty", "0"], input="a\nb\n"))


def test_keep_going_keeps_the_output_aligned_and_still_fails(trained):
    text = "the cat\ntbe cat\n\nlonely\n\nthe mat\nthe rnat\n"
    result = runner.invoke(app, ["rerank", str(trained), "--keep-going"], input=text)
    assert_user_error(result)
    assert result.stdout == "the cat\n\nthe mat\n"
    assert "1 of 3 lists were not ranked (first: <stdin> line 4: the list has one candidate" in result.stderr
    result = runner.invoke(app, ["rerank", str(trained), "--keep-going", "--json"], input=text)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[1] == {"id": 2, "list": 2, "line": 4, "error": records[1]["error"]} and "text" in records[2]
    result = runner.invoke(app, ["rerank", str(trained), "--allow-single"], input=text)
    assert result.exit_code == 0 and result.stdout == "the cat\nlonely\nthe mat\n"
