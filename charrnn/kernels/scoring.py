"""Log-probabilities of a text under the model.

`_score_chunk` scores a (1, T) chunk at once: the row lookup and `rnn._forward_layers` (as in training),
one product for the head over all T rows, then the one log-normaliser per position. `_score_steps` feeds
the same text one character at a time through `rnn._stack_step` — the sampler's and the coder's step —
so tests can hold the two paths to each other.
"""

import numpy as np
from numba import njit

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
