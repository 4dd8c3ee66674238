"""The sampling and scoring kernels, one by one, against their NumPy twins in tests/reference.py.

(Kernel-level tests live beside tests/test_kernels.py, the only other file that imports `_` kernels;
the two can be merged.)
"""

import numba
import numpy as np
import pytest
import reference
from tiny_models import random_model

from charrnn import kernels
from charrnn.generate import rng_states
from charrnn.kernels import blas  # noqa: F401  (imported for _call_gemm: compiled code sees module attributes)


def test_xoshiro_matches_reference():
    state = rng_states(42, 1)[0].copy()
    twin = [int(v) for v in state]
    draws = [kernels.sampling._next_uniform(state) for _ in range(1000)]
    assert draws == [reference.next_uniform(twin) for _ in range(1000)]
    assert [int(v) for v in state] == twin
    assert 0.0 <= min(draws) and max(draws) < 1.0 and abs(np.mean(draws) - 0.5) < 0.03


def test_rotl_matches_reference():
    x = np.uint64(0x8000000000000001)
    for k in (1, 7, 45, 63):
        assert int(kernels.sampling._rotl(x, np.uint64(k))) == reference.rotl(int(x), k)


@pytest.mark.parametrize("size", [1, 2, 7, 65, 100])
def test_rank_matches_reference_with_ties(size):
    rng = np.random.default_rng(size)
    probs = np.round(rng.random(size), 1)  # plenty of ties
    order = np.empty(size, dtype=np.int64)
    kernels.sampling._rank(probs, order, size)
    assert order.tolist() == reference.rank(probs)
    partial = np.full(size, -1, dtype=np.int64)
    kernels.sampling._rank(probs, partial, min(3, size))  # only the first k places are written
    assert partial[: min(3, size)].tolist() == reference.rank(probs)[: min(3, size)]
    assert (partial[min(3, size) :] == -1).all()


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p", "greedy"),
    [(1.0, 0, 1.0, False), (0.5, 0, 1.0, False), (2.0, 3, 1.0, False), (1.0, 0, 0.6, False),
     (0.7, 5, 0.8, False), (1.0, 0, 1.0, True), (1.0, 20, 1.0, False)],
)  # fmt: skip
def test_draw_matches_reference(temperature, top_k, top_p, greedy):
    rng = np.random.default_rng(3)
    state = rng_states(7, 1)[0].copy()
    twin = [int(v) for v in state]
    work, order = np.empty(12), np.empty(12, dtype=np.int64)
    for _ in range(200):
        row = rng.standard_normal(12) * 2
        got = kernels.sampling._draw(row, row.max(), temperature, top_k, top_p, greedy, state, work, order)
        want = reference.draw(row, temperature, top_k, top_p, greedy, twin)
        assert got[0] == want[0]
        np.testing.assert_allclose(got[1:], want[1:], atol=1e-12)


@numba.njit
def _call_gemm(a, b, c, trans_b, beta):  # `_gemm` exists only inside compiled code
    kernels.blas._gemm(a, b, c, False, trans_b, beta)


@pytest.mark.parametrize("rows", [1, 3, 15, 16, 17])
@pytest.mark.parametrize("inner", [1, 4, 11])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("trans_b", [False, True])
def test_gemm_and_small_gemm_match_reference(rows, inner, dtype, trans_b):
    """The product every kernel calls, on both sides of the small-product switch (16 rows), with beta."""
    rng = np.random.default_rng(rows * 31 + inner)
    X = rng.standard_normal((rows, inner)).astype(dtype)
    W = rng.standard_normal((6, inner) if trans_b else (inner, 6)).astype(dtype)
    start = rng.standard_normal((rows, 6)).astype(dtype)
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    for beta in (0.0, 0.5):
        out = start.copy()
        kernels.blas._small_gemm(X, W, out, trans_b, beta)
        np.testing.assert_allclose(out, reference.gemm(X, W, start, trans_b, beta), atol=tolerance)
        out = start.copy()
        _call_gemm(X, W, out, trans_b, beta)
        np.testing.assert_allclose(out, reference.gemm(X, W, start, trans_b, beta), atol=tolerance)


@pytest.mark.parametrize(("layers", "samples"), [(1, 1), (2, 3), (3, kernels.blas.SMALL_GEMM_ROWS + 2)])
def test_sample_block_matches_reference(layers, samples):
    model = random_model(layers=layers, seed=layers)
    p, L, H, V = model.params, layers, model.config.hidden_size, model.config.vocab_size
    h = np.random.default_rng(0).standard_normal((L, samples, H)) * 0.5
    twin_h, states = h.copy(), rng_states(5, samples)
    twin_states = [[int(v) for v in row] for row in states]
    stop = model.vocab.encode("ab").astype(np.int64)
    out = np.empty((samples, 30), dtype=np.int64)
    log_q, log_p = np.zeros(samples), np.zeros(samples)
    matched, done, lengths = np.zeros(samples, np.int64), np.zeros(samples, np.bool_), np.zeros(samples, np.int64)
    kernels.sampling._sample_block(
        p["Wx"], p["Wu"], p["Wh"], p["bh"], p["Wy"], p["by"], h, kernels.ACT_TANH_EXACT, 0.9, 0, 0.95, False,
        states, stop, np.array([0, 0]), matched, done, out, lengths, log_q, log_p, np.empty((samples, V)),
        np.empty(V), np.empty(V, np.int64), np.empty((samples, H)), np.empty((samples, H)),
    )  # fmt: skip
    ids, ref_q, ref_p, ref_h = reference.sample_block(
        p, twin_h, "tanh", 30, 0.9, 0, 0.95, False, twin_states, stop.tolist()
    )
    assert [out[k, : lengths[k]].tolist() for k in range(samples)] == ids
    np.testing.assert_allclose(log_q, ref_q, atol=1e-10)
    np.testing.assert_allclose(log_p, ref_p, atol=1e-10)
    if not done.any():  # a stopped sample's state keeps running on placeholders; compare only live ones
        np.testing.assert_allclose(h, ref_h, atol=1e-10)


def test_score_chunk_matches_reference():
    model = random_model(layers=2, seed=4)
    p, L, H, V = model.params, 2, model.config.hidden_size, model.config.vocab_size
    ids = np.random.default_rng(1).integers(0, V, 21)
    h0 = np.random.default_rng(2).standard_normal((L, 1, H)) * 0.5
    hidden, logits = np.empty((L, 20, 1, H)), np.empty((20, V))
    log_probs, top_ids, top_log_probs = np.empty(20), np.empty((20, 4), np.int64), np.empty((20, 4))
    kernels.scoring._score_chunk(ids[None, :-1], ids[1:], p["Wx"], p["Wu"], p["Wh"], p["bh"], p["Wy"], p["by"], h0,
                         hidden, logits, log_probs, top_ids, top_log_probs, kernels.ACT_TANH_EXACT)  # fmt: skip
    ref_log_probs, ref_top_ids, ref_top_log_probs = reference.score_chunk(p, ids, h0, "tanh", 4)
    np.testing.assert_allclose(log_probs, ref_log_probs, atol=1e-12)
    np.testing.assert_array_equal(top_ids, ref_top_ids)
    np.testing.assert_allclose(top_log_probs, ref_top_log_probs, atol=1e-12)
