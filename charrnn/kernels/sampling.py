"""Sampling: the random generator, ranking, the draw, and the whole per-character loop in one call.

`_sample_block` runs, for K samples at a time and with every buffer passed in: the head (output
projection, `heads._bias_max`, `heads._log_normaliser`), temperature / top-k / top-p filtering, an
inverse-CDF draw, then `rnn._stack_step` with the drawn ids. Randomness is xoshiro256** (Blackman &
Vigna, https://prng.di.unimi.it/), one (4,) uint64 state per sample, advanced in place, so a seed fixes
the text and no global RNG is read.
"""

import math

import numpy as np
from numba import njit

from . import FAST
from .blas import _gemm
from .heads import _bias_max, _log_normaliser
from .inputs import _lookup
from .rnn import _stack_step


@njit(cache=True)
def _rotl(x, k):
    """Rotate a uint64 left by k (a uint64) bits."""
    return (x << k) | (x >> (np.uint64(64) - k))


@njit(cache=True)
def _next_uniform(state):
    """One xoshiro256** draw from state (4,) uint64 (advanced in place): a float64 in [0, 1), 53 random bits."""
    s0, s1, s2, s3 = state[0], state[1], state[2], state[3]
    result = _rotl(s1 * np.uint64(5), np.uint64(7)) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, np.uint64(45))
    state[0], state[1], state[2], state[3] = s0, s1, s2, s3
    return float(result >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _rank(values, order, k):
    """order[:k] (int64) receives the ids of the k largest of values (V,), descending, ties to the lower
    id: the one ranking of charrnn (top-k and top-p sampling, the alternatives that scoring lists). Each
    id's place is the count of ids ranked above it: O(V²) but branch-free and vectorised, which beats a
    comparison sort on random rows at V ~ 100 (V = 65: 1.0 µs vs 3.6 µs for a shell sort, whose branches
    mispredict). No allocation."""
    V = values.size
    for v in range(V):
        x = values[v]
        place = 0
        for u in range(V):
            place += (values[u] > x) | ((values[u] == x) & (u < v))
        if place < k:
            order[place] = v


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _draw(row, top, temperature, top_k, top_p, greedy, state, work, order):
    """Pick the next id from one row of logits (V,) whose maximum is top; returns (id, log q, log p).

    p is the model's distribution, softmax(row), through the one log-normaliser. q is the sampling
    distribution: softmax(row / temperature), restricted to the top_k most likely ids if top_k > 0, then
    to the smallest most-likely-first set whose mass reaches top_p if top_p < 1, and renormalised; greedy
    takes the argmax (log q = 0). state (4,) uint64 RNG state; work (V,) in row's dtype and order (V,)
    int64 are scratch.
    """
    V = row.size
    for v in range(V):
        work[v] = row[v]
    log_norm, total = _log_normaliser(work, top)
    if greedy:
        best = 0
        for v in range(1, V):
            if row[v] > row[best]:
                best = v
        return best, 0.0, float(row[best] - top) - log_norm
    if temperature != 1.0:  # q needs its own exponentials
        inv_t = row.dtype.type(1.0 / temperature)
        for v in range(V):
            work[v] = row[v] * inv_t
        _, total = _log_normaliser(work, top * inv_t)
    total = float(total)
    if (top_k > 0 and top_k < V) or top_p < 1.0:
        keep = V if top_k <= 0 else min(top_k, V)
        _rank(work, order, V if top_p < 1.0 else keep)
        if keep < V:
            total = 0.0
            for r in range(keep):
                total += work[order[r]]
        if top_p < 1.0:
            target = top_p * total
            mass = 0.0
            for r in range(keep):
                mass += work[order[r]]
                if mass >= target:
                    keep = r + 1
                    break
            total = mass
        u = _next_uniform(state) * total
        pick = order[keep - 1]
        mass = 0.0
        for r in range(keep):
            mass += work[order[r]]
            if u < mass:
                pick = order[r]
                break
    else:
        u = _next_uniform(state) * total
        pick = V - 1
        mass = 0.0
        for v in range(V):
            mass += work[v]
            if u < mass:
                pick = v
                break
        while work[pick] == 0.0:  # rounding left u past the last positive mass: take the last possible id
            pick -= 1
    return pick, math.log(float(work[pick]) / total), float(row[pick] - top) - log_norm


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _sample_block(
    Wx, Wu, Wh, bh, Wy, by, h, act, temperature, top_k, top_p, greedy, rng,
    stop_ids, stop_fail, matched, done, out, lengths, logp_sample, logp_model, logits, work, order, pre, tmp,
):  # fmt: skip
    """Generate up to n characters for each of K samples, carrying the state.

    h (L, K, H): hidden state after the last consumed character (updated in place); each step predicts
    from it, draws an id (see `_draw`), then feeds that id through `rnn._stack_step`.
    rng (K, 4) uint64: one xoshiro256** state per sample, advanced in place.
    stop_ids (S,) ids of the stop string (S = 0: none); stop_fail (S,) its KMP failure function;
    matched (K,) int64 how much of the stop string each sample has just produced; done (K,) bool
    samples that produced it (they draw nothing more). All carried between calls.
    out (K, n) int64 receives the ids; lengths (K,) int64 how many of them each sample produced.
    logp_sample, logp_model (K,) float64 accumulate log q and log p of the drawn ids (see `_draw`).
    Scratch in the model's dtype: logits (K, V), work (V,), pre and tmp (K, H); order (V,) int64.
    Returns the number of steps taken (n, or fewer once every sample is done).
    """
    L, K, H = h.shape
    n = out.shape[1]
    S = stop_ids.size
    for k in range(K):
        lengths[k] = 0
    for step in range(n):
        active = 0
        for k in range(K):
            if not done[k]:
                active += 1
        if active == 0:
            return step
        _gemm(h[L - 1], Wy, logits, False, False, 0.0)
        for k in range(K):
            if done[k]:
                out[k, step] = 0
                continue
            row = logits[k]
            top = _bias_max(row, by)
            pick, log_q, log_p = _draw(row, top, temperature, top_k, top_p, greedy, rng[k], work, order)
            out[k, step] = pick
            lengths[k] += 1
            logp_sample[k] += log_q
            logp_model[k] += log_p
            if S > 0:  # Knuth-Morris-Pratt: extend the match of the stop string by this id
                m = matched[k]
                while m > 0 and stop_ids[m] != pick:
                    m = stop_fail[m - 1]
                if stop_ids[m] == pick:
                    m += 1
                if m == S:
                    done[k] = True
                matched[k] = m
        # one step with the drawn ids (done samples feed their placeholder 0, never read)
        _lookup(out[:, step : step + 1], Wx, pre.reshape((1, K, H)))
        _stack_step(pre, Wu, Wh, bh, h, tmp, act)
    return n
