"""Scoring many lines (charrnn.linescore): the line convention, unknown characters, prefix sharing."""

import math

import numpy as np
import pytest
from tiny_models import random_model

from charrnn.errors import CharrnnError
from charrnn.linescore import _share, score_lines
from charrnn.score import score_ids, score_text

ALPHABET = "abcdefgh "


def near_duplicates(count, seed, length=40, variants=6):
    """Groups of lines that differ in 1-3 places, as the candidates of n-best lists do."""
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(count):
        base = list(rng.choice(list(ALPHABET), length))
        for _ in range(variants):
            line = base.copy()
            for _ in range(rng.integers(1, 4)):
                line[rng.integers(length)] = rng.choice(list(ALPHABET))
            lines.append("".join(line))
    return lines


@pytest.mark.parametrize("min_shared", [1, 2, 12, 10**9])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_line_scores_as_score_text_of_newline_line_newline(min_shared, dtype):
    model = random_model(ALPHABET + "\n", hidden=16, layers=2, dtype=dtype, seed=3)
    lines = near_duplicates(12, seed=4) + ["", "a", "ab", "h" * 70]
    result = score_lines(model, lines, min_shared=min_shared)
    tolerance = 2e-4 if dtype == "float32" else 1e-10
    for i, line in enumerate(lines):
        expected = score_text(model, "\n" + line + "\n")
        assert result.scored[i] == len(line) + 1 == expected.scored
        assert result.log_probs[i] == pytest.approx(expected.log_likelihood, abs=tolerance)
    assert np.allclose(result.bits_per_char, -result.log_probs / result.scored / math.log(2))
    assert not result.unknown.any() and not result.penalty.any()


def test_identical_lines_get_identical_scores_wherever_they_stand():
    model = random_model(ALPHABET + "\n", hidden=24, layers=2, dtype="float32", seed=5)
    lines = near_duplicates(60, seed=6)
    lines = [lines[17], *lines, lines[17], lines[200], "x" + lines[17]]  # far apart, across batches
    result = score_lines(model, lines)
    assert result.log_probs[0] == result.log_probs[18] == result.log_probs[-3]
    assert result.log_probs[-2] == result.log_probs[201]


def test_prefixes_are_shared_between_near_duplicates():
    model = random_model(ALPHABET + "\n", seed=7)
    lines = sorted({"\n" + line + "\n" for line in near_duplicates(5, seed=8)})
    sequences = [model.vocab.encode(line).astype(np.int64) for line in lines]
    flat = np.concatenate(sequences)
    lengths = np.array([s.size for s in sequences])
    start, parent = _share(flat, np.cumsum(lengths) - lengths, lengths, min_shared=3)
    shared = [i for i in range(len(lines)) if parent[i] >= 0]
    assert len(shared) >= len(lines) // 2
    for i in shared:  # the parent holds the shared prefix
        assert lines[parent[i]][: start[i]] == lines[i][: start[i]] and start[i] >= 3
    assert (start[parent < 0] == 1).all()


def test_unknown_characters_cost_a_fixed_penalty_and_leave_the_context():
    model = random_model(ALPHABET + "\n", hidden=12, seed=9)
    lines = ["abc\u2603de", "\u2603\u2603", "fg h\u00e9", "abcde"]
    result = score_lines(model, lines, unk_penalty=9.5)
    assert result.unknown.tolist() == [1, 2, 1, 0]
    for i, line in enumerate(lines):
        skipped = score_text(model, "\n" + line + "\n", unk="skip").log_likelihood
        assert result.penalty[i] == pytest.approx(9.5 * math.log(2) * result.unknown[i])
        assert result.log_probs[i] == pytest.approx(skipped - result.penalty[i], abs=1e-10)
    assert result.log_probs[0] < result.log_probs[3]  # the unknown character is never free


@pytest.mark.parametrize("min_shared", [1, 10**9])
def test_the_default_penalty_is_the_worst_known_character_in_that_context(min_shared):
    model = random_model(ALPHABET + "\n", hidden=12, layers=2, seed=10)
    V = model.config.vocab_size
    lines = ["abcd\u2603efg", "abcd\u2603\u2603", "abcdefgh", "\u00e9", "abcd\u00e9efg"]
    result = score_lines(model, lines, min_shared=min_shared)

    def worst(context):  # max over v of -log2 p(v | context), from the sorted top-V alternatives
        ids = model.vocab.encode("\n" + context + "a")
        return -score_ids(model, ids, top=V)[2][-1, -1] / math.log(2)

    expected = [worst("abcd"), 2 * worst("abcd"), 0.0, worst(""), worst("abcd")]
    assert result.penalty / math.log(2) == pytest.approx(expected, abs=1e-9)
    assert (result.penalty[result.unknown > 0] / math.log(2) >= math.log2(V)).all()
    assert result.log_probs[0] == result.log_probs[4]  # the same context, the same cost
    skipped = score_text(model, "\nabcd\u2603efg\n", unk="skip").log_likelihood
    assert result.log_probs[0] == pytest.approx(skipped - result.penalty[0], abs=1e-10)


def test_bad_lines_and_models_are_refused_in_one_line():
    model = random_model(ALPHABET + "\n", seed=11)
    assert score_lines(model, []).log_probs.size == 0
    assert score_lines(model, ["abc"]).log_probs[0] == pytest.approx(score_text(model, "\nabc\n").log_likelihood)
    with pytest.raises(CharrnnError, match="line 2 contains a line break"):
        score_lines(model, ["ab", "c\nd"])
    with pytest.raises(CharrnnError, match="line 1 contains a line break"):
        score_lines(model, ["a\rb"])
    with pytest.raises(CharrnnError, match="line 1 is a int"):
        score_lines(model, [3])
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(CharrnnError, match="--unk-penalty must be a positive number of bits"):
            score_lines(model, ["ab"], unk_penalty=bad)
    with pytest.raises(CharrnnError, match="no newline"):
        score_lines(random_model("abc", seed=1), ["ab"])
