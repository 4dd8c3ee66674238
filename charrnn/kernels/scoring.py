"""Log-probabilities of a text under the model.

`_score_chunk` scores a (1, T) chunk at once: the row lookup and `rnn._forward_layers` (as in training),
one product for the head over all T rows, then the one log-normaliser per position. `_score_steps` feeds
the same text one character at a time through `rnn._stack_step` — the sampler's and the coder's step —
so tests can hold the two paths to each other.
"""

import numpy as np
from numba import njit, prange

from . import FAST
from .blas import _gemm
from .heads import _bias_max, _log_normaliser
from .inputs import _lookup
from .rnn import _forward_layers, _stack_step
from .sampling import _rank


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _score_row(row, by, target, work, order, top_ids, top_logp):
    """log p(target) for one row of logits (V,) (by added in place); the A = top_ids.size most likely
    ids and their log-probabilities into top_ids, top_logp (A,). work (V,), order (V,) scratch."""
    top = _bias_max(row, by)
    for v in range(row.size):
        work[v] = row[v]
    log_norm, _ = _log_normaliser(work, top)
    A = top_ids.size
    if A > 0:
        _rank(row, order, A)
        for a in range(A):
            top_ids[a] = order[a]
            top_logp[a] = float(row[order[a]] - top) - log_norm
    return float(row[target] - top) - log_norm


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _score_chunk(x, y, Wx, Wu, Wh, bh, Wy, by, h0, hs, logits, logp, top_ids, top_logp, act):
    """Log-probabilities of a (1, T) chunk under the model, carrying the state.

    x (1, T) input ids; y (T,) target ids (y[t] follows x[0, t]); h0 (L, 1, H) state before the chunk;
    hs (L, T, 1, H) scratch that receives the hidden states (hs[:, T-1] is the state after the chunk);
    logits (T, V) scratch. logp (T,) float64 receives log p(y[t] | x[0, :t+1]). top_ids (T, A) int64 and
    top_logp (T, A) float64 receive the A most likely ids and their log-probabilities (A may be 0).
    """
    L, T, _, H = hs.shape
    V = logits.shape[1]
    pre = np.empty((T, 1, H), dtype=hs.dtype)
    work = np.empty(V, dtype=hs.dtype)
    order = np.empty(V, dtype=np.int64)
    empty = pre[:0].reshape((0, 1, 1, 1))
    _lookup(x, Wx, pre)
    top_hidden = _forward_layers(pre, Wu, Wh, bh, h0, hs, empty, empty, act)
    _gemm(top_hidden, Wy, logits, False, False, 0.0)
    for t in range(T):
        logp[t] = _score_row(logits[t], by, y[t], work, order, top_ids[t], top_logp[t])


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _score_steps(x, y, Wx, Wu, Wh, bh, Wy, by, h, logp, act):
    """The same log-probabilities one character at a time: for each t, feed x[t] through the sampler's
    step (`rnn._stack_step`), then score y[t] from the new state. x, y (T,) ids; h (L, 1, H) the state,
    updated in place; logp (T,) float64 receives log p(y[t] | ..., x[t])."""
    L, _, H = h.shape
    V = Wy.shape[1]
    pre = np.empty((1, 1, H), dtype=h.dtype)
    tmp = np.empty((1, H), dtype=h.dtype)
    logits = np.empty((1, V), dtype=h.dtype)
    work = np.empty(V, dtype=h.dtype)
    order = np.empty(V, dtype=np.int64)
    no_ids = np.empty(0, dtype=np.int64)
    no_logp = np.empty(0, dtype=np.float64)
    for t in range(x.size):
        _lookup(x[t : t + 1].reshape((1, 1)), Wx, pre)
        _stack_step(pre[0], Wu, Wh, bh, h, tmp, act)
        _gemm(h[L - 1], Wy, logits, False, False, 0.0)
        logp[t] = _score_row(logits[0], by, y[t], work, order, no_ids, no_logp)


@njit(cache=True, fastmath=FAST, error_model="numpy", parallel=True)
def _score_rows(x, y, lengths, Wx, Wu, Wh, bh, Wy, by, h0, h_final, bounds, logp, act):
    """Log-probabilities of B independent sequences of different lengths, padded into rows, at batch speed.

    x, y (B, T) input and target ids (row b is real up to lengths[b] <= T, padding after it is computed
    but never read); h0 (L, B, H) each row's state before the chunk; h_final (L, B, H) receives each
    row's state after its last real position (h0's row when lengths[b] == 0); logp (B, T) float64
    receives log p(y[b, t] | ...) for t < lengths[b]. bounds (S+1,) row boundaries of shards run in
    parallel; a row's result depends on its shard's rows (BLAS over them), never on the thread count.
    """
    S = bounds.size - 1
    L, _, H = h0.shape
    T = x.shape[1]
    V = Wy.shape[1]
    for s in prange(S):
        lo, hi = bounds[s], bounds[s + 1]
        rows = hi - lo
        hs = np.empty((L, T, rows, H), dtype=h0.dtype)
        pre = np.empty((T, rows, H), dtype=h0.dtype)
        logits = np.empty((T * rows, V), dtype=h0.dtype)
        work = np.empty(V, dtype=h0.dtype)
        order = np.empty(V, dtype=np.int64)
        no_ids = np.empty(0, dtype=np.int64)
        no_logp = np.empty(0, dtype=np.float64)
        empty = pre[:0].reshape((0, 1, 1, 1))
        _lookup(x[lo:hi], Wx, pre)
        top = _forward_layers(pre, Wu, Wh, bh, np.ascontiguousarray(h0[:, lo:hi]), hs, empty, empty, act)
        _gemm(top, Wy, logits, False, False, 0.0)
        for b in range(rows):
            n = lengths[lo + b]
            for t in range(n):
                logp[lo + b, t] = _score_row(logits[t * rows + b], by, y[lo + b, t], work, order, no_ids, no_logp)
            if n > 0:
                h_final[:, lo + b] = hs[:, n - 1, b]
            else:
                h_final[:, lo + b] = h0[:, lo + b]
