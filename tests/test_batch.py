"""Batch scoring (charrnn.batch): many sequences of different lengths at once, each as if scored alone."""

import numpy as np
import pytest
from tiny_models import random_model

from charrnn.batch import score_sequences, score_sequences_from
from charrnn.errors import CharrnnError
from charrnn.kernels import blas
from charrnn.score import score_ids


def sequences(model, count, seed, longest=60):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, model.config.vocab_size, rng.integers(0, longest)) for _ in range(count)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batch_equals_one_at_a_time(dtype):
    model = random_model(hidden=20, layers=2, dtype=dtype, seed=1)
    inputs = sequences(model, 150, seed=2)
    got = score_sequences(model, inputs, chunk_len=16)
    tolerance = 1e-5 if dtype == "float32" else 1e-10
    for ids, mine in zip(inputs, got, strict=True):
        if ids.size < 2:
            assert mine.size == 0
            continue
        np.testing.assert_allclose(mine, score_ids(model, ids)[0], atol=tolerance)


def test_results_do_not_depend_on_threads_and_identical_sequences_score_identically():
    model = random_model(hidden=32, layers=2, dtype="float32", seed=3)
    inputs = sequences(model, 120, seed=4)
    inputs.append(inputs[7].copy())  # a duplicate, batched elsewhere in the order
    with blas.thread_limit(1):
        one = score_sequences(model, inputs)
    with blas.thread_limit(2):
        two = score_sequences(model, inputs)
    for a, b in zip(one, two, strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(one[7], one[-1])


def test_chunking_in_time_changes_nothing():
    model = random_model(hidden=12, seed=5)
    inputs = sequences(model, 40, seed=6, longest=100)
    whole = score_sequences(model, inputs, chunk_len=1000)
    for chunk in (1, 7):
        for a, b in zip(whole, score_sequences(model, inputs, chunk_len=chunk), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-12)


def test_bad_ids_and_sizes_are_refused_in_one_line():
    model = random_model(seed=7)
    with pytest.raises(CharrnnError, match=r"sequence 1: ids must be in \[0, 9\)"):
        score_sequences(model, [np.array([0, 1]), np.array([0, 9])])
    with pytest.raises(CharrnnError, match="must be >= 1"):
        score_sequences(model, [np.array([0, 1])], batch_rows=0)
    assert score_sequences(model, []) == []


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_pieces_from_states_chain_into_the_whole(dtype):
    """score_sequences_from: pieces overlapping by one id, each fed from the previous piece's final state,
    give the whole sequence's log-probabilities, and the final state is the state after every fed id."""
    model = random_model(hidden=16, layers=2, dtype=dtype, seed=8)
    rng = np.random.default_rng(9)
    whole = [rng.integers(0, model.config.vocab_size, n) for n in (40, 25, 2, 33)]
    cut = [13, 7, 1, 32]  # piece 1 is ids[:cut + 1], piece 2 ids[cut:]
    first, states = score_sequences_from(model, [w[: c + 1] for w, c in zip(whole, cut, strict=True)],
                                         model.initial_state(len(whole)))  # fmt: skip
    second, finals = score_sequences_from(model, [w[c:] for w, c in zip(whole, cut, strict=True)], states)
    tolerance = 1e-5 if dtype == "float32" else 1e-11
    for ids, a, b, s in zip(whole, first, second, np.moveaxis(finals, 1, 0), strict=True):
        np.testing.assert_allclose(np.concatenate((a, b)), score_ids(model, ids)[0], atol=tolerance)
        expected = model.hidden_states(ids[:-1], model.initial_state(1))[:, -1, 0]
        np.testing.assert_allclose(s, expected, atol=tolerance)


def test_from_states_checks_the_states_shape_and_keeps_states_of_short_sequences():
    model = random_model(hidden=6, layers=2, seed=10)
    with pytest.raises(CharrnnError, match=r"states must have shape \(2, 2, 6\)"):
        score_sequences_from(model, [np.array([0, 1]), np.array([1, 2])], np.zeros((2, 3, 6)))
    start = np.random.default_rng(11).standard_normal((2, 2, 6))
    log_probs, finals = score_sequences_from(model, [np.array([3]), np.array([1, 2])], start)
    assert log_probs[0].size == 0 and np.array_equal(finals[:, 0], start[:, 0])
    assert not np.allclose(finals[:, 1], start[:, 1])
