"""Synthetic sources: each stated entropy rate is checked against an independent computation.

Monte-Carlo checks average the true -log2 p(next char | past) over a long sample; that average converges
to the entropy rate of an ergodic source, with a standard error of a few thousandths here.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from charrnn.cli import app
from charrnn.errors import CharrnnError
from charrnn.synth import BracketSource, brackets_text, markov_text, random_markov_source

SAMPLE = 200_000


def markov_monte_carlo(text: str, alphabet: str, order: int, table: np.ndarray) -> float:
    """Average -log2 table[context, next] over the sample, contexts read straight from the text."""
    ids = np.array([alphabet.index(char) for char in text])
    size = len(alphabet)
    context = np.zeros(len(ids) - order, dtype=np.int64)
    for lag in range(order):  # context of position t is ids[t-order .. t-1], oldest first
        context = context * size + ids[lag : len(ids) - order + lag]
    return float(-np.log2(table[context, ids[order:]]).mean())


@pytest.mark.parametrize("order, alphabet_size, concentration", [(2, 8, 1.0), (3, 4, 0.5), (1, 26, 2.0)])
def test_markov_rate_matches_monte_carlo(order, alphabet_size, concentration):
    result = markov_text(SAMPLE, order, alphabet_size, concentration, seed=3)
    source = random_markov_source(order, alphabet_size, concentration, seed=3)
    estimate = markov_monte_carlo(result.text, source.alphabet, order, source.table)
    assert len(result.text) == SAMPLE and set(result.text) <= set(source.alphabet)
    assert abs(estimate - result.entropy_rate) < 0.01, (estimate, result.entropy_rate)


def test_markov_stationary_distribution_matches_dense_eigenvector():
    source = random_markov_source(order=2, alphabet_size=5, concentration=0.7, seed=1)
    contexts, size = source.table.shape
    transition = np.zeros((contexts, contexts))
    for context in range(contexts):
        for char in range(size):
            transition[context, (context * size + char) % contexts] += source.table[context, char]
    values, vectors = np.linalg.eig(transition.T)
    dense = np.real(vectors[:, np.argmin(np.abs(values - 1))])
    np.testing.assert_allclose(source.stationary(), dense / dense.sum(), atol=1e-12)


def test_order_zero_rate_is_the_entropy_of_the_distribution():
    result = markov_text(SAMPLE, order=0, alphabet_size=6, concentration=1.0, seed=5)
    probabilities = random_markov_source(0, 6, 1.0, seed=5).table[0]
    exact = -sum(p * math.log2(p) for p in probabilities)
    assert result.entropy_rate == pytest.approx(exact, abs=1e-12)
    counts = np.array([result.text.count(char) for char in "abcdef"])
    np.testing.assert_allclose(counts / SAMPLE, probabilities, atol=0.005)


def test_uniform_limit_approaches_log2_alphabet():
    assert markov_text(10, order=1, alphabet_size=8, concentration=1e6).entropy_rate == pytest.approx(3, abs=1e-3)


def test_markov_is_deterministic_by_seed():
    first = markov_text(5_000, order=2, alphabet_size=8, seed=11)
    assert markov_text(5_000, order=2, alphabet_size=8, seed=11) == first
    assert markov_text(5_000, order=2, alphabet_size=8, seed=12).text != first.text
    assert markov_text(2_000, order=2, alphabet_size=8, seed=11).text == first.text[:2_000]


@pytest.mark.parametrize(
    "kwargs, phrase",
    [
        ({"alphabet_size": 1}, "alphabet size"),
        ({"alphabet_size": 27}, "alphabet size"),
        ({"order": 6, "alphabet_size": 10}, "contexts"),
        ({"concentration": 0.0}, "concentration"),
        ({"order": -1}, "order"),
    ],
)
def test_markov_rejects_bad_parameters(kwargs, phrase):
    with pytest.raises(CharrnnError, match=phrase):
        markov_text(100, **kwargs)


def bracket_monte_carlo(text: str, source: BracketSource) -> float:
    """Average true -log2 p(next | past), tracking the stack with an independent parser."""
    opens, closes = "([{<"[: source.types], ")]}>"[: source.types]
    p_letter = 1 - source.p_open - source.p_close
    q_open = source.p_open / (source.p_open + p_letter)
    stack: list[str] = []
    total = 0.0
    for char in text:
        if char in opens:
            total -= math.log2((source.p_open if stack else q_open) / source.types)
            stack.append(char)
        elif char in closes:
            assert stack and opens.index(stack.pop()) == closes.index(char), "closing bracket does not match"
            total -= math.log2(source.p_close)
        else:
            assert char in "abcdefghijklmnopqrstuvwxyz"[: source.letters]
            total -= math.log2((p_letter if stack else 1 - q_open) / source.letters)
    return total / len(text)


def bracket_rate_by_truncated_chain(source: BracketSource, max_depth: int = 400) -> float:
    """The rate from a numerically solved depth chain truncated at `max_depth` (not the closed form)."""
    p_letter = 1 - source.p_open - source.p_close
    q_open = source.p_open / (source.p_open + p_letter)
    transition = np.zeros((max_depth + 1, max_depth + 1))
    transition[0, 1], transition[0, 0] = q_open, 1 - q_open
    for depth in range(1, max_depth + 1):
        up = source.p_open if depth < max_depth else 0.0
        transition[depth, depth - 1] = source.p_close
        transition[depth, min(depth + 1, max_depth)] += up
        transition[depth, depth] += 1 - up - source.p_close
    # pi (P - I) = 0 with sum(pi) = 1: replace one (redundant) balance equation by the normalisation
    system = transition.T - np.eye(max_depth + 1)
    system[0, :] = 1.0
    rhs = np.zeros(max_depth + 1)
    rhs[0] = 1.0
    pi = np.linalg.solve(system, rhs)

    def entropy(masses_and_ways):
        return -sum(m * math.log2(m / w) for m, w in masses_and_ways if m > 0)

    h0 = entropy([(q_open, source.types), (1 - q_open, source.letters)])
    h1 = entropy([(source.p_open, source.types), (source.p_close, 1), (p_letter, source.letters)])
    return pi[0] * h0 + (1 - pi[0]) * h1


@pytest.mark.parametrize("types, letters, p_open, p_close", [(3, 4, 0.25, 0.35), (2, 1, 0.3, 0.6), (4, 0, 0.45, 0.55)])
def test_brackets_rate_matches_monte_carlo_and_numeric_chain(types, letters, p_open, p_close):
    result = brackets_text(SAMPLE, types, letters, p_open, p_close, seed=2)
    source = BracketSource(types, letters, p_open, p_close)
    assert abs(bracket_monte_carlo(result.text, source) - result.entropy_rate) < 0.01
    assert result.entropy_rate == pytest.approx(bracket_rate_by_truncated_chain(source), abs=1e-9)


def test_brackets_is_deterministic_by_seed():
    assert brackets_text(3_000, seed=4) == brackets_text(3_000, seed=4)
    assert brackets_text(3_000, seed=4).text != brackets_text(3_000, seed=5).text


@pytest.mark.parametrize(
    "kwargs, phrase",
    [
        ({"p_open": 0.4, "p_close": 0.4}, "p_open < p_close"),
        ({"p_open": 0.5, "p_close": 0.6}, "p_open \\+ p_close <= 1"),
        ({"types": 5}, "bracket types"),
        ({"letters": 0}, "letters must be >= 1"),
    ],
)
def test_brackets_reject_bad_parameters(kwargs, phrase):
    with pytest.raises(CharrnnError, match=phrase):
        brackets_text(100, **kwargs)


runner = CliRunner()


def test_cli_synth_markov_json(tmp_path):
    output = tmp_path / "markov.txt"
    args = ["corpus", "synth", "markov", "--order", "2", "--alphabet", "8", "--length", "5000", "--seed", "0"]
    result = runner.invoke(app, [*args, "-o", str(output), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    expected = markov_text(5000, order=2, alphabet_size=8, seed=0)
    assert report["entropy_rate_bits_per_char"] == pytest.approx(expected.entropy_rate)
    assert report["length"] == 5000 and report["source"] == "markov"
    assert output.read_text(encoding="utf-8") == expected.text


def test_cli_synth_brackets_prints_rate(tmp_path):
    output = tmp_path / "brackets.txt"
    result = runner.invoke(app, ["corpus", "synth", "brackets", "--length", "2000", "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert f"entropy rate: {brackets_text(2000).entropy_rate:.6f} bits/char" in result.stdout
    assert len(output.read_text(encoding="utf-8")) == 2000


def test_cli_synth_bad_parameters_are_one_line_errors(tmp_path):
    args = ["corpus", "synth", "brackets", "--p-open", "0.5", "--p-close", "0.3", "-o", str(tmp_path / "x")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2  # a parameter out of range: a usage mistake
    assert result.stderr.startswith("Error: ") and result.stderr.strip().count("\n") == 0
    assert "Traceback" not in result.output and not (tmp_path / "x").exists()
