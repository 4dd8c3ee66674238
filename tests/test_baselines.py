"""Tests for charrnn.baselines: Kneser-Ney character n-gram models, on small self-generated texts."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict

import numpy as np
import pytest

from charrnn import baselines
from charrnn.baselines import baseline_table, fit_ngram
from charrnn.errors import CharrnnError

ORDERS = (1, 2, 3, 4, 5)


def markov2_text(alphabet: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random order-2 Markov source: transitions (A, A, A) float64, P(next | two previous), and a
    text (length,) uint8 sampled from it."""
    rng = np.random.default_rng(seed)
    transitions = rng.dirichlet(np.full(alphabet, 0.3), size=(alphabet, alphabet))
    cdfs = np.cumsum(transitions, axis=-1).tolist()
    text = [0, 1]
    for uniform in rng.random(length - 2).tolist():
        text.append(min(bisect.bisect_right(cdfs[text[-2]][text[-1]], uniform), alphabet - 1))
    return transitions, np.array(text, dtype=np.uint8)


@pytest.fixture(scope="module")
def markov() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(transitions, train ids, held-out ids): 200k characters over 6 symbols, split 80/20."""
    transitions, text = markov2_text(alphabet=6, length=200_000, seed=1)
    return transitions, text[:160_000], text[160_000:]


@pytest.fixture(scope="module")
def sparse_text() -> np.ndarray:
    """(3000,) uint8 over ids 0..4 only: short enough that most 4- and 5-grams are seen once or twice."""
    return markov2_text(alphabet=5, length=3000, seed=2)[1]


def reference_discounts(counts: Counter) -> list[float]:
    """Chen & Goodman's D1, D2, D3+ from count-of-counts, with the fallbacks documented in baselines."""
    n1, n2, n3, n4 = (sum(1 for c in counts.values() if c == i) for i in (1, 2, 3, 4))
    if n1 == 0 or n2 == 0:
        return [0.5, 0.5, 0.5]
    y = n1 / (n1 + 2 * n2)
    raw = [1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3 if n3 else y]
    return [min(max(d, 0.05), i) for i, d in enumerate(raw, start=1)]


def reference_log_probs(train: np.ndarray, text: np.ndarray, vocab_size: int, order: int) -> np.ndarray:
    """Slow, dict-based interpolated modified Kneser-Ney, written straight from the formulas."""
    train_list = train.tolist()
    counts: dict[int, Counter] = {
        order: Counter(tuple(train_list[i : i + order]) for i in range(len(train_list) - order + 1))
    }
    for k in range(order - 1, 0, -1):  # continuation counts: distinct left extensions
        counts[k] = Counter(gram[1:] for gram in counts[k + 1])
    by_context: dict[int, dict[tuple, dict[int, int]]] = {}
    for k in range(2, order + 1):
        by_context[k] = defaultdict(dict)
        for gram, count in counts[k].items():
            by_context[k][gram[:-1]][gram[-1]] = count
    discounts = {k: reference_discounts(counts[k]) for k in range(2, order + 1)}
    unigram_total = sum(counts[1].values())

    def prob(history: tuple, char: int) -> float:
        if not history:
            return (counts[1].get((char,), 0) + 1) / (unigram_total + vocab_size)
        lower = prob(history[1:], char)
        k = len(history) + 1
        followers = by_context[k].get(history)
        if not followers:
            return lower
        taken = {w: discounts[k][min(c, 3) - 1] for w, c in followers.items()}
        kept = followers.get(char, 0) - taken.get(char, 0.0)
        return (kept + sum(taken.values()) * lower) / sum(followers.values())

    text_list = text.tolist()
    return np.log([prob(tuple(text_list[max(0, i - order + 1) : i]), text_list[i]) for i in range(len(text_list))])


@pytest.mark.parametrize("order", ORDERS)
def test_matches_dict_reference_including_unseen_characters(sparse_text, order):
    vocab_size = 7  # ids 5 and 6 never occur in training
    rng = np.random.default_rng(order)
    text = np.concatenate([sparse_text[2000:2300], rng.integers(0, vocab_size, 60), [6, 6, 5, 0, 1]])
    model = fit_ngram(sparse_text[:2000], vocab_size, order)
    expected = reference_log_probs(sparse_text[:2000], text.astype(np.uint8), vocab_size, order)
    np.testing.assert_allclose(model.log_probs(text.astype(np.uint8)), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("order", ORDERS)
def test_every_conditional_distribution_sums_to_one(sparse_text, order):
    vocab_size = 8
    model = fit_ngram(sparse_text, vocab_size, order)
    rng = np.random.default_rng(order)
    contexts = [np.empty(0, np.uint8), np.array([7]), np.array([6, 7, 5, 6]), np.arange(8)]
    contexts += [sparse_text[start : start + length] for start, length in rng.integers(0, 2900, (20, 2)) % 9]
    contexts += [rng.integers(0, vocab_size, length) for length in range(6)]
    for context in contexts:
        probs = model.next_char_probs(context)
        assert probs.shape == (vocab_size,)
        assert abs(probs.sum() - 1) < 1e-12, (context, probs.sum())
        assert (probs > 0).all(), context  # includes ids 5, 6, 7, never seen in training


def test_unigram_is_add_one_closed_form(sparse_text):
    vocab_size = 7
    train, text = sparse_text[:2500], np.array([0, 1, 2, 3, 4, 5, 6, 6, 0], np.uint8)
    expected = (np.bincount(train, minlength=vocab_size) + 1) / (len(train) + vocab_size)
    model = fit_ngram(train, vocab_size, 1)
    np.testing.assert_allclose(model.next_char_probs(np.array([3, 4])), expected, rtol=1e-14)
    np.testing.assert_allclose(model.log_probs(text), np.log(expected[text]), rtol=1e-14)
    assert model.cross_entropy(text) == pytest.approx(-np.log(expected[text]).mean(), rel=1e-14)


def test_trigram_reaches_the_entropy_rate_of_an_order2_source(markov):
    transitions, train, held_out = markov
    true_log_probs = np.log(transitions[held_out[:-2], held_out[1:-1], held_out[2:]])
    entropy_rate = -true_log_probs.mean()  # of the source, measured on the same held-out text
    cross_entropy = {order: -fit_ngram(train, 6, order).log_probs(held_out)[2:].mean() for order in ORDERS}
    assert abs(cross_entropy[3] - entropy_rate) < 0.02, (cross_entropy, entropy_rate)
    assert cross_entropy[1] > cross_entropy[2] > cross_entropy[3]  # structure is worth modelling
    assert cross_entropy[4] < cross_entropy[3] + 0.01  # extra context costs little
    assert cross_entropy[5] < cross_entropy[3] + 0.02


def test_cross_entropy_is_minus_mean_log_probs(markov):
    _, train, held_out = markov
    for order in (1, 3, 5):
        model = fit_ngram(train[:20_000], 6, order)
        log_probs = model.log_probs(held_out)
        assert log_probs.shape == held_out.shape and log_probs.dtype == np.float64
        assert model.cross_entropy(held_out) == pytest.approx(-log_probs.mean(), rel=1e-12)


def test_baseline_table_matches_individual_models(markov):
    _, train, held_out = markov
    table = baseline_table(train[:20_000], held_out[:5000], 6, orders=(1, 2, 4))
    assert list(table) == [1, 2, 4]
    assert table[2] == fit_ngram(train[:20_000], 6, 2).cross_entropy(held_out[:5000])
    assert table[1] > table[2] > table[4]


def test_any_unsigned_dtype_and_memmap_give_identical_results(sparse_text, tmp_path):
    path = tmp_path / "ids.u16"
    sparse_text.astype(np.uint16).tofile(path)
    variants = [
        sparse_text,
        sparse_text.astype(np.uint16),
        sparse_text.astype(np.uint32),
        sparse_text.astype(np.int64),
        np.memmap(path, dtype=np.uint16, mode="r"),
    ]
    results = []
    for ids in variants:
        model = fit_ngram(ids[:2500], 6, 4)
        results.append((model.cross_entropy(ids[2500:]), model.log_probs(ids[2500:])))
    for cross_entropy, log_probs in results[1:]:
        assert cross_entropy == results[0][0]
        np.testing.assert_array_equal(log_probs, results[0][1])


def test_chunked_counting_and_scoring_match_one_chunk(sparse_text, monkeypatch):
    whole = fit_ngram(sparse_text[:2500], 6, 5)
    expected = whole.log_probs(sparse_text[2500:])
    monkeypatch.setattr(baselines, "CHUNK_POSITIONS", 97)
    chunked = fit_ngram(sparse_text[:2500], 6, 5)
    for level, chunked_level in zip(whole.levels, chunked.levels, strict=True):
        np.testing.assert_array_equal(level.gram_keys, chunked_level.gram_keys)
        np.testing.assert_array_equal(level.discounted, chunked_level.discounted)
    np.testing.assert_allclose(chunked.log_probs(sparse_text[2500:]), expected, rtol=1e-15)
    assert chunked.cross_entropy(sparse_text[2500:]) == pytest.approx(whole.cross_entropy(sparse_text[2500:]))


def test_texts_shorter_than_the_context():
    model = fit_ngram(np.array([0, 1, 2, 0, 1, 2, 0, 1], np.uint8), 3, 5)
    assert model.log_probs(np.empty(0, np.uint8)).shape == (0,)
    short = np.array([0, 1], np.uint8)
    np.testing.assert_allclose(
        model.log_probs(short),
        [np.log(model.next_char_probs(short[:0])[0]), np.log(model.next_char_probs(short[:1])[1])],
    )


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: fit_ngram(np.array([0, 1, 5], np.uint8), 5, 2), "outside 0..4"),
        (lambda: fit_ngram(np.array([0, -1, 2]), 5, 2), "outside 0..4"),
        (lambda: fit_ngram(np.zeros((2, 3), np.uint8), 5, 2), "1-D array"),
        (lambda: fit_ngram(np.zeros(10, np.float32), 5, 2), "integer ids"),
        (lambda: fit_ngram(np.zeros(3, np.uint8), 5, 4), "too short"),
        (lambda: fit_ngram(np.zeros(10, np.uint8), 5, 0), "at least 1"),
        (lambda: fit_ngram(np.zeros(10, np.uint16), 70_000, 4), "63-bit key"),
        (lambda: fit_ngram(np.zeros(10, np.uint8), 5, 2).cross_entropy(np.empty(0, np.uint8)), "empty"),
        (lambda: fit_ngram(np.zeros(10, np.uint8), 5, 2).log_probs(np.array([7], np.uint8)), "outside"),
    ],
)
def test_bad_input_raises_charrnn_error(call, message):
    with pytest.raises(CharrnnError, match=message):
        call()
