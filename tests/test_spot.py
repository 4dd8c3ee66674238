"""Spotting probably wrong characters (charrnn.spot) and `charrnn spot`."""

import json
import math

import pytest
from tiny_models import assert_user_error, random_model, save, train_tiny
from typer.testing import CliRunner

from charrnn.cli import app
from charrnn.errors import CharrnnError
from charrnn.score import score_text
from charrnn.spot import Suspect, apply_fixes, spot

runner = CliRunner()
SENTENCE = "the cat sat on the mat and the dog ate a big red bone\n"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("spot") / "m.npz"
    return train_tiny(SENTENCE * 60, path, hidden=32, steps=400)


@pytest.mark.parametrize(
    "wrong, edit, replacement",
    [
        (SENTENCE.replace("dog", "dcg"), "substitute", "o"),  # a misread character
        (SENTENCE.replace("big", "bigg"), "delete", ""),  # an extra one
        (SENTENCE.replace("red", "rd"), "insert", "e"),  # a dropped one
    ],
)
def test_a_single_error_is_found_and_fixed(model, wrong, edit, replacement):
    text = SENTENCE * 2 + wrong + SENTENCE
    suspects = spot(model, text)
    assert len(suspects) == 1, suspects
    (found,) = suspects
    assert (found.edit, found.replacement, found.line) == (edit, replacement, 3)
    assert found.gain_bits >= 5.0 and found.surprisal_bits > 0
    assert apply_fixes(text, suspects) == SENTENCE * 4
    assert text.splitlines()[found.line - 1][found.column - 1] == found.char == text[found.position]


def test_two_errors_within_one_window_are_both_found(model):
    text = SENTENCE + SENTENCE.replace("dog ate", "dcg atc") + SENTENCE
    suspects = spot(model, text)
    assert [(s.char, s.replacement) for s in suspects] == [("c", "o"), ("c", "e")]
    assert apply_fixes(text, suspects) == SENTENCE * 3


def test_the_gain_is_the_log_likelihood_change_of_the_window(model):
    """Batched window scores equal scoring the two texts one at a time: the common prefix cancels."""
    text = SENTENCE + SENTENCE.replace("bone", "bcne") + SENTENCE
    (found,) = spot(model, text, window=6)
    end = found.position + 6 + 1  # the site and 6 characters after it

    def log_likelihood(t):
        return score_text(model, "\n" + t).log_likelihood

    edited = apply_fixes(text[:end], [found])
    gain = (log_likelihood(edited) - log_likelihood(text[:end])) / math.log(2)
    assert found.gain_bits == pytest.approx(gain, abs=1e-9)


def test_a_clean_text_has_no_suspects_and_thresholds_rule(model):
    assert spot(model, SENTENCE * 3) == []
    text = SENTENCE + SENTENCE.replace("cat", "cet")
    assert spot(model, text, min_gain=1000.0) == [] and spot(model, text, min_surprisal=1000.0) == []
    assert spot(model, "") == []


def test_an_unknown_character_costs_its_penalty_and_deleting_it_gains_exactly_that(model):
    text = SENTENCE + SENTENCE.replace("sat ", "sat \u2603")
    (found,) = spot(model, text, unk_penalty=20.0)
    assert (found.char, found.edit, found.gain_bits) == ("\u2603", "delete", pytest.approx(20.0))
    assert apply_fixes(text, [found]) == SENTENCE * 2
    assert spot(model, text, unk_penalty=3.0) == []  # below --min-gain: an unknown character is not wrong per se
    (default,) = spot(model, text)
    assert default.surprisal_bits >= math.log2(model.config.vocab_size)


def test_edits_never_touch_newlines_and_bad_settings_are_refused():
    model = random_model("ab\n", hidden=6, seed=1)
    for s in spot(model, "ab\nba\n\nab\n", min_surprisal=0.0, min_gain=0.0):
        assert "\n" not in (s.char, s.replacement)
    bad = [({"min_gain": -1.0}, "--min-gain must be"), ({"min_surprisal": math.nan}, "--min-surp"),
           ({"window": 0}, "--window and --alternatives"), ({"unk_penalty": 0.0}, "--unk-penalty")]
    for kwargs, message in bad:
        with pytest.raises(CharrnnError, match=message):
            spot(model, "ab", **kwargs)
    with pytest.raises(CharrnnError, match="no newline"):
        spot(random_model("ab", seed=2), "ab")


def test_apply_fixes_applies_every_kind_of_edit():
    suspects = [Suspect(0, 1, 1, "x", "substitute", "y", 9.0, 9.0), Suspect(2, 1, 3, "c", "delete", "", 9.0, 9.0),
                Suspect(4, 1, 5, "e", "insert", "d", 9.0, 9.0)]  # fmt: skip
    assert apply_fixes("xbcxe", suspects) == "ybxde"


def test_the_command_reports_fixes_and_protects_files(model, tmp_path):
    path = save(model, tmp_path / "m.npz")
    source = tmp_path / "in.txt"
    source.write_text(SENTENCE + SENTENCE.replace("mat", "rnat"[1:]))  # "mat" -> "nat"
    result = runner.invoke(app, ["spot", str(path), str(source)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{source}:2:20: 'n' -> 'm'  (gain ")
    result = runner.invoke(app, ["spot", str(path), "-", "--json"], input=source.read_text())
    record = json.loads(result.stdout)
    assert {"source", "line", "column", "char", "edit", "replacement", "suggestion", "gain_bits",
            "surprisal_bits", "position"} == set(record) and record["source"] == "<stdin>"  # fmt: skip
    fixed = tmp_path / "fixed.txt"
    assert runner.invoke(app, ["spot", str(path), str(source), "--fix", str(fixed)]).exit_code == 0
    assert fixed.read_text() == SENTENCE * 2
    assert_user_error(result := runner.invoke(app, ["spot", str(path), str(source), "--fix", str(fixed)]))
    assert "exists" in result.stderr
    assert runner.invoke(app, ["spot", str(path), str(source), "--fix", str(fixed), "--force"]).exit_code == 0
    assert_user_error(result := runner.invoke(app, ["spot", str(path), str(source), "--fix", str(source), "--force"]))
    assert "is the input file" in result.stderr and source.read_text().endswith("nat and the dog ate a big red bone\n")
    assert_user_error(runner.invoke(app, ["spot", str(path), str(tmp_path / "nope.txt")]))
