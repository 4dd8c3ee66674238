"""Every compiled (Numba) function of charrnn lives here, and no other module imports numba.

Letters used in shapes, declared once:
    B batch (parallel streams) · T time steps in a chunk · H hidden units · V vocabulary size
    L layers · N = T·B positions in a chunk.

The model (row-vector convention, x_t one-hot so x_t·Wx is the row Wx[id]):
    layer 1:     h1_t = f(Wx[x_t] + h1_{t-1}·Wh[0] + bh[0])
    layer l > 1: hl_t = f(h(l-1)_t·Wu[l-2] + hl_{t-1}·Wh[l-1] + bh[l-1])
    output:      p_t  = softmax(hL_t·Wy + by)

Hidden states are stored time-major, (L, T, B, H), so each step's (B, H) slab is contiguous and every
product is a plain BLAS call (`np.dot` inside @njit goes to BLAS through scipy). Only the recurrence
h_{t-1} -> h_t is sequential; the input rows of upper layers, the output projection, the softmax and
every weight gradient are computed for all N positions at once.

Kernels are private (`_name`) and called only by typed wrappers in model.py / generate.py / score.py.
They read no globals except the compile-time constants below (numba freezes globals at compile time,
and `cache=True` persists them), allocate nothing inside time loops, and take every setting as an
argument.
"""

import contextlib
import math
from collections.abc import Iterator

import numba
import numpy as np
from numba import njit

# fastmath without 'nnan'/'ninf': NaN and inf must survive so the divergence guard can see them.
FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}

# Activation codes (an int argument, not a function argument, so kernels stay cacheable).
ACT_TANH = 0  # tanh by a rational approximation: vectorises, |error| < 3e-7 (float32 training)
ACT_RELU = 1
ACT_TANH_EXACT = 2  # libm tanh: exact to the last bit (float64, gradient checks)


def available_threads() -> int:
    """Threads numba may use (all cores unless NUMBA_NUM_THREADS says otherwise)."""
    return numba.config.NUMBA_NUM_THREADS


@contextlib.contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """Run parallel kernels on `threads` threads inside the block, restoring the previous count after."""
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads, available_threads())))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


# error_model="numpy": no ZeroDivisionError check on `p / q`, whose branch kept LLVM from vectorising the
# tanh loop (q >= 4.9e-3 never vanishes); measured 8x faster on a (64, 256) float32 slab.
@njit(cache=True, fastmath=FAST, error_model="numpy")
def _activate(pre, out, act):
    """out = f(pre), elementwise over (B, H) slabs. `act` is one of the ACT_* codes."""
    flat_pre = pre.reshape(pre.size)
    flat_out = out.reshape(out.size)
    if act == ACT_RELU:
        zero = flat_pre.dtype.type(0.0)
        for i in range(flat_pre.size):
            flat_out[i] = max(flat_pre[i], zero)
    elif act == ACT_TANH_EXACT:
        for i in range(flat_pre.size):
            flat_out[i] = math.tanh(flat_pre[i])
    else:
        # Rational minimax approximation of tanh on [-7.9, 7.9] (as in Eigen's ptanh_float): only
        # multiply, add and one divide, so LLVM vectorises it (libm tanh costs ~20 ns a call here).
        # Constants are cast to the array's dtype so float32 stays float32 (twice the vector width).
        c = flat_pre.dtype.type
        clamp = c(7.90531110763549805)
        a13, a11, a9 = c(-2.76076847742355e-16), c(2.00018790482477e-13), c(-8.60467152213735e-11)
        a7, a5, a3, a1 = (
            c(5.12229709037114e-08),
            c(1.48572235717979e-05),
            c(6.37261928875436e-04),
            c(4.89352455891786e-03),
        )
        b6, b4, b2, b0 = (
            c(1.19825839466702e-06),
            c(1.18534705686654e-04),
            c(2.26843463243900e-03),
            c(4.89352518554385e-03),
        )
        for i in range(flat_pre.size):
            v = min(max(flat_pre[i], -clamp), clamp)
            v2 = v * v
            p = ((((((v2 * a13 + a11) * v2 + a9) * v2 + a7) * v2 + a5) * v2 + a3) * v2 + a1) * v
            q = ((v2 * b6 + b4) * v2 + b2) * v2 + b0
            flat_out[i] = p / q


@njit(cache=True, fastmath=FAST)
def _recurrence(pre, Wh, h0, hs, act):
    """Run one layer's recurrence over a chunk.

    pre (T, B, H): input part of the pre-activation (x·Wx + b), overwritten with the full one.
    Wh (H, H), h0 (B, H) carried state, hs (T, B, H) output hidden states.
    """
    T = pre.shape[0]
    for t in range(T):
        h_prev = h0 if t == 0 else hs[t - 1]
        # pre[t] += h_prev·Wh, via the hs[t] slab as scratch (no allocation in the time loop)
        np.dot(h_prev, Wh, hs[t])
        slab = pre[t]
        step = hs[t]
        for b in range(slab.shape[0]):
            for j in range(slab.shape[1]):
                slab[b, j] += step[b, j]
        _activate(slab, step, act)


@njit(cache=True, fastmath=FAST)
def _forward_layers(x, Wx, Wu, Wh, bh, h0, hs, act):
    """Forward all layers over a chunk.

    x (B, T) int ids; Wx (V, H); Wu (L-1, H, H); Wh (L, H, H); bh (L, H); h0 (L, B, H);
    hs (L, T, B, H) receives every hidden state. Returns nothing; hs[:, -1] is the final state.
    """
    B, T = x.shape
    L, _, _, H = hs.shape
    pre = np.empty((T, B, H), dtype=hs.dtype)
    for t in range(T):
        for b in range(B):
            row = Wx[x[b, t]]  # one-hot input times Wx is a row lookup
            for j in range(H):
                pre[t, b, j] = row[j] + bh[0, j]
    _recurrence(pre, Wh[0], h0[0], hs[0], act)
    for layer in range(1, L):
        np.dot(hs[layer - 1].reshape((T * B, H)), Wu[layer - 1], pre.reshape((T * B, H)))
        for t in range(T):
            for b in range(B):
                for j in range(H):
                    pre[t, b, j] += bh[layer, j]
        _recurrence(pre, Wh[layer], h0[layer], hs[layer], act)


@njit(cache=True, fastmath=FAST)
def _softmax_xent(logits, targets, grad_scale):
    """Row-wise softmax cross-entropy over (N, V) logits, in place.

    targets (N,) ids. Returns the summed loss in nats (float64). When grad_scale != 0 the logits are
    replaced by d(loss)/d(logits) * grad_scale, i.e. (p - onehot) * grad_scale; otherwise by p.
    The max is subtracted before exponentiating, so no temperature or scale overflows.
    """
    N, V = logits.shape
    losses = np.empty(N, dtype=np.float64)
    for i in range(N):
        row = logits[i]
        top = row[0]
        for j in range(1, V):
            top = max(top, row[j])
        total = 0.0
        for j in range(V):
            e = math.exp(row[j] - top)
            row[j] = e
            total += e
        target = targets[i]
        losses[i] = math.log(total) - math.log(row[target])
        inv = 1.0 / total
        if grad_scale != 0.0:
            for j in range(V):
                row[j] = row[j] * inv * grad_scale
            row[target] -= grad_scale
        else:
            for j in range(V):
                row[j] = row[j] * inv
    return losses.sum()


@njit(cache=True, fastmath=FAST)
def _time_major_targets(y):
    """(B, T) ids -> (T·B,) ids in the time-major order of the hidden states."""
    B, T = y.shape
    out = np.empty(T * B, dtype=np.int64)
    for t in range(T):
        for b in range(B):
            out[t * B + b] = y[b, t]
    return out


@njit(cache=True, fastmath=FAST)
def _loss(x, y, Wx, Wu, Wh, bh, Wy, by, h0, hs, act):
    """Forward pass only: mean cross-entropy (nats/char) of y given x, carrying h0.

    x, y (B, T) ids; hs (L, T, B, H) scratch that receives the hidden states. Returns the loss;
    the final state is hs[:, T-1].
    """
    B, T = x.shape
    L, _, _, H = hs.shape
    _forward_layers(x, Wx, Wu, Wh, bh, h0, hs, act)
    logits = np.dot(hs[L - 1].reshape((T * B, H)), Wy)
    for i in range(T * B):
        for v in range(logits.shape[1]):
            logits[i, v] += by[v]
    return _softmax_xent(logits, _time_major_targets(y), 0.0) / (T * B)


@njit(cache=True, fastmath=FAST)
def _loss_and_grads(x, y, Wx, Wu, Wh, bh, Wy, by, h0, hs, dWx, dWu, dWh, dbh, dWy, dby, act):
    """Forward, then truncated backpropagation through time over the chunk.

    Shapes as in `_loss`; d* arrays have the shape of their parameter and are overwritten with the
    gradient of the mean cross-entropy. The gradient stops at h0 (truncated BPTT). Returns the loss.
    """
    B, T = x.shape
    L, _, _, H = hs.shape
    N = T * B
    _forward_layers(x, Wx, Wu, Wh, bh, h0, hs, act)

    # Output layer for all N positions at once.
    top = hs[L - 1].reshape((N, H))
    dlogits = np.dot(top, Wy)
    for i in range(N):
        for v in range(dlogits.shape[1]):
            dlogits[i, v] += by[v]
    loss = _softmax_xent(dlogits, _time_major_targets(y), 1.0 / N) / N
    np.dot(top.T, dlogits, dWy)
    dby[:] = 0.0
    for i in range(N):
        for v in range(dlogits.shape[1]):
            dby[v] += dlogits[i, v]
    dh_above = np.dot(dlogits, Wy.T).reshape((T, B, H))  # dLoss/dh of the top layer

    one, zero = hs.dtype.type(1.0), hs.dtype.type(0.0)
    dpre = np.empty((T, B, H), dtype=hs.dtype)
    dh_next = np.empty((B, H), dtype=hs.dtype)
    for layer in range(L - 1, -1, -1):
        h = hs[layer]
        # Backward through time: the only sequential part of the backward pass.
        dh_next[:] = 0.0
        for t in range(T - 1, -1, -1):
            for b in range(B):
                for j in range(H):
                    dh = dh_above[t, b, j] + dh_next[b, j]
                    if act == ACT_RELU:
                        dpre[t, b, j] = dh if h[t, b, j] > zero else zero
                    else:
                        dpre[t, b, j] = dh * (one - h[t, b, j] * h[t, b, j])
            if t > 0:
                np.dot(dpre[t], Wh[layer].T, dh_next)
        # Weight gradients for all positions at once: h_{t-1} is h0 at t = 0, hs[t-1] after.
        dpre_flat = dpre.reshape((N, H))
        np.dot(h0[layer].T, dpre[0], dWh[layer])
        if T > 1:
            dWh[layer] += np.dot(h[: T - 1].reshape(((T - 1) * B, H)).T, dpre[1:].reshape(((T - 1) * B, H)))
        dbh[layer] = 0.0
        for i in range(N):
            for j in range(H):
                dbh[layer, j] += dpre_flat[i, j]
        if layer > 0:
            below = hs[layer - 1].reshape((N, H))
            np.dot(below.T, dpre_flat, dWu[layer - 1])
            np.dot(dpre_flat, Wu[layer - 1].T, dh_above.reshape((N, H)))
        else:
            dWx[:] = 0.0
            for t in range(T):
                for b in range(B):
                    row = dWx[x[b, t]]  # the row lookup's gradient is a scatter-add
                    for j in range(H):
                        row[j] += dpre[t, b, j]
    return loss


# ---- optimizers: elementwise updates over the flat parameter vector ----


@njit(cache=True, fastmath=FAST)
def _global_norm(grad):
    """sqrt(sum(grad²)) accumulated in float64; NaN or inf if any gradient is non-finite."""
    total = 0.0
    for i in range(grad.size):
        total += float(grad[i]) * float(grad[i])
    return math.sqrt(total)


@njit(cache=True, fastmath=FAST)
def _clip(grad, max_norm, max_value, norm):
    """Clip in place: scale to global norm `max_norm` (if > 0, given the current `norm`), then clamp each
    element to [-max_value, max_value] (if > 0)."""
    if max_norm > 0.0 and norm > max_norm:
        scale = max_norm / norm
        for i in range(grad.size):
            grad[i] *= scale
    if max_value > 0.0:
        for i in range(grad.size):
            grad[i] = min(max(grad[i], -max_value), max_value)


@njit(cache=True, fastmath=FAST)
def _adam_step(param, grad, m, v, lr, beta1, beta2, eps, step, weight_decay):
    """Adam (Kingma & Ba 2015) with bias correction; `step` counts from 1. Decoupled weight decay
    (AdamW) when weight_decay > 0."""
    correction1 = 1.0 - beta1**step
    correction2 = 1.0 - beta2**step
    step_size = lr * math.sqrt(correction2) / correction1
    for i in range(param.size):
        g = grad[i]
        m[i] = beta1 * m[i] + (1.0 - beta1) * g
        v[i] = beta2 * v[i] + (1.0 - beta2) * g * g
        param[i] -= step_size * m[i] / (math.sqrt(v[i]) + eps * math.sqrt(correction2)) + lr * weight_decay * param[i]


@njit(cache=True, fastmath=FAST)
def _rmsprop_step(param, grad, cache, lr, decay, eps, weight_decay):
    """RMSprop (Tieleman & Hinton 2012), as in char-rnn: cache = decay·cache + (1-decay)·g²."""
    for i in range(param.size):
        g = grad[i] + weight_decay * param[i]
        cache[i] = decay * cache[i] + (1.0 - decay) * g * g
        param[i] -= lr * g / (math.sqrt(cache[i]) + eps)


@njit(cache=True, fastmath=FAST)
def _adagrad_step(param, grad, cache, lr, eps, weight_decay):
    """Adagrad (Duchi et al. 2011), as in min-char-rnn: cache += g²."""
    for i in range(param.size):
        g = grad[i] + weight_decay * param[i]
        cache[i] += g * g
        param[i] -= lr * g / (math.sqrt(cache[i]) + eps)


@njit(cache=True, fastmath=FAST)
def _sgd_step(param, grad, velocity, lr, momentum, weight_decay):
    """SGD with (heavy-ball) momentum: velocity = momentum·velocity + g; param -= lr·velocity."""
    for i in range(param.size):
        g = grad[i] + weight_decay * param[i]
        velocity[i] = momentum * velocity[i] + g
        param[i] -= lr * velocity[i]


# ---- sampling and scoring ----
#
# Sampling runs the whole per-character loop in one call (`_sample_block`): output projection, log-softmax,
# temperature / top-k / top-p filtering, an inverse-CDF draw, then one recurrence step, for K samples at a
# time, with every buffer passed in. Randomness is xoshiro256** (Blackman & Vigna, https://prng.di.unimi.it/),
# one (4,) uint64 state per sample, advanced in place, so a seed fixes the text and no global RNG is read.
# Scoring (`_score_chunk`) runs the training forward (`_forward_layers`) over a (1, T) chunk with the state
# carried in, then a max-subtracted log-softmax per position.


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


@njit(cache=True, fastmath=FAST)
def _rank(probs, order):
    """order (V,) int64 receives the ids sorted by probs (V,) descending, ties to the lower id. Each id's
    place is the count of ids ranked above it: O(V²) but branch-free and vectorised, which beats a
    comparison sort on random rows at V ~ 100 (V = 65: 1.0 µs vs 3.6 µs for a shell sort, whose branches
    mispredict). No allocation; runs only when top-k or top-p is on."""
    V = probs.size
    for v in range(V):
        p = probs[v]
        place = 0
        for u in range(V):
            place += (probs[u] > p) | ((probs[u] == p) & (u < v))
        order[place] = v


@njit(cache=True, fastmath=FAST)
def _draw(row, temperature, top_k, top_p, greedy, state, probs, order):
    """Pick the next id from one row of logits (V,); returns (id, log q, log p).

    q is the sampling distribution (softmax(row / temperature), restricted to the top_k most likely ids if
    top_k > 0, then to the smallest most-likely-first set whose mass reaches top_p if top_p < 1, and
    renormalised); greedy takes the argmax (log q = 0). p is the model's distribution, softmax(row).
    state (4,) uint64 RNG state; probs (V,) float64 and order (V,) int64 are scratch.
    """
    V = row.size
    top = row[0]
    best = 0
    for v in range(1, V):
        if row[v] > top:
            top, best = row[v], v
    inv_t = 1.0 if greedy else 1.0 / temperature
    total = 0.0
    for v in range(V):
        e = math.exp(float(row[v] - top) * inv_t)
        probs[v] = e
        total += e
    log_norm = math.log(total)
    if inv_t != 1.0:  # the model's own normaliser needs its own pass of exponentials
        model_total = 0.0
        for v in range(V):
            model_total += math.exp(row[v] - top)
        log_norm = math.log(model_total)
    if greedy:
        return best, 0.0, float(row[best] - top) - log_norm
    if (top_k > 0 and top_k < V) or top_p < 1.0:
        _rank(probs, order)
        keep = V if top_k <= 0 else min(top_k, V)
        if keep < V:
            total = 0.0
            for r in range(keep):
                total += probs[order[r]]
        if top_p < 1.0:
            target = top_p * total
            mass = 0.0
            for r in range(keep):
                mass += probs[order[r]]
                if mass >= target:
                    keep = r + 1
                    break
            total = mass
        u = _next_uniform(state) * total
        pick = order[keep - 1]
        mass = 0.0
        for r in range(keep):
            mass += probs[order[r]]
            if u < mass:
                pick = order[r]
                break
    else:
        u = _next_uniform(state) * total
        pick = V - 1
        mass = 0.0
        for v in range(V):
            mass += probs[v]
            if u < mass:
                pick = v
                break
        while probs[pick] == 0.0:  # rounding left u past the last positive mass: take the last possible id
            pick -= 1
    return pick, math.log(probs[pick] / total), float(row[pick] - top) - log_norm


@njit(cache=True, fastmath=FAST)
def _vecmat(x, W, out):
    """out (N,) = x (H,) · W (H, N), a row vector times a matrix. For one sample this beats BLAS (whose
    fixed cost per call is large next to an H = 256 product): four rows of W per pass over `out` cut its
    loads and stores fourfold, and the inner loop vectorises (CPU time, H = 256: 3.2 µs vs 3.7 µs for
    gemv, 4.4 µs one row at a time)."""
    H = x.size
    N = out.size
    for j in range(N):
        out[j] = 0.0
    i = 0
    while i + 4 <= H:
        x0, x1, x2, x3 = x[i], x[i + 1], x[i + 2], x[i + 3]
        r0, r1, r2, r3 = W[i], W[i + 1], W[i + 2], W[i + 3]
        for j in range(N):
            out[j] += x0 * r0[j] + x1 * r1[j] + x2 * r2[j] + x3 * r3[j]
        i += 4
    while i < H:
        xi, row = x[i], W[i]
        for j in range(N):
            out[j] += xi * row[j]
        i += 1


# Below this many rows, `_matmul_rows` loops `_vecmat` over them: OpenBLAS sgemm (one thread) costs ~45 µs a
# call for 2 <= K < 16 at H = 256, more than K hand-written products.
BLAS_MIN_ROWS = 16


@njit(cache=True, fastmath=FAST)
def _matmul_rows(X, W, out):
    """out (K, N) = X (K, H) · W (H, N): `_vecmat` per row for few rows, BLAS for many."""
    if X.shape[0] < BLAS_MIN_ROWS:
        for k in range(X.shape[0]):
            _vecmat(X[k], W, out[k])
    else:
        np.dot(X, W, out)


@njit(cache=True, fastmath=FAST)
def _sample_block(
    Wx, Wu, Wh, bh, Wy, by, h, act, temperature, top_k, top_p, greedy, rng,
    stop_ids, stop_fail, matched, done, out, lengths, logp_sample, logp_model, logits, probs, order, pre, tmp,
):  # fmt: skip
    """Generate up to n characters for each of K samples, carrying the state.

    h (L, K, H): hidden state after the last consumed character (updated in place); each step predicts
    from it, draws an id (see `_draw`), then feeds that id through the recurrence.
    rng (K, 4) uint64: one xoshiro256** state per sample, advanced in place.
    stop_ids (S,) ids of the stop string (S = 0: none); stop_fail (S,) its KMP failure function;
    matched (K,) int64 how much of the stop string each sample has just produced; done (K,) bool
    samples that produced it (they draw nothing more). All carried between calls.
    out (K, n) int64 receives the ids; lengths (K,) int64 how many of them each sample produced.
    logp_sample, logp_model (K,) float64 accumulate log q and log p of the drawn ids (see `_draw`).
    Scratch: logits (K, V), pre and tmp (K, H) in the model's dtype; probs (V,) float64; order (V,) int64.
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
        _matmul_rows(h[L - 1], Wy, logits)
        for k in range(K):
            if done[k]:
                out[k, step] = 0
                continue
            row = logits[k]
            for v in range(row.size):
                row[v] += by[v]
            pick, log_q, log_p = _draw(row, temperature, top_k, top_p, greedy, rng[k], probs, order)
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
        # one recurrence step with the drawn ids (done samples feed their placeholder 0, never read)
        _matmul_rows(h[0], Wh[0], tmp)
        for k in range(K):
            emb = Wx[out[k, step]]
            for j in range(H):
                pre[k, j] = tmp[k, j] + emb[j] + bh[0, j]
        _activate(pre, h[0], act)
        for layer in range(1, L):
            _matmul_rows(h[layer - 1], Wu[layer - 1], pre)
            _matmul_rows(h[layer], Wh[layer], tmp)
            for k in range(K):
                for j in range(H):
                    pre[k, j] += tmp[k, j] + bh[layer, j]
            _activate(pre, h[layer], act)
    return n


@njit(cache=True, fastmath=FAST)
def _score_chunk(x, y, Wx, Wu, Wh, bh, Wy, by, h0, hs, logits, logp, top_ids, top_logp, act):
    """Log-probabilities of a (1, T) chunk under the model, carrying the state.

    x (1, T) input ids; y (T,) target ids (y[t] follows x[0, t]); h0 (L, 1, H) state before the chunk;
    hs (L, T, 1, H) scratch that receives the hidden states (hs[:, T-1] is the state after the chunk);
    logits (T, V) scratch. logp (T,) float64 receives log p(y[t] | x[0, :t+1]). top_ids (T, A) int64 and
    top_logp (T, A) float64 receive the A most likely ids and their log-probabilities (A may be 0).
    """
    L, T, _, H = hs.shape
    V = logits.shape[1]
    A = top_ids.shape[1]
    _forward_layers(x, Wx, Wu, Wh, bh, h0, hs, act)
    np.dot(hs[L - 1].reshape((T, H)), Wy, logits)
    for t in range(T):
        row = logits[t]
        for v in range(V):
            row[v] += by[v]
        top = row[0]
        for v in range(1, V):
            top = max(top, row[v])
        total = 0.0
        for v in range(V):
            total += math.exp(row[v] - top)
        log_norm = math.log(total) + top
        logp[t] = row[y[t]] - log_norm
        # the A most likely ids by repeated selection under the order (logit desc, id asc): O(A·V)
        for a in range(A):
            pick = -1
            for v in range(V):
                if a > 0:
                    prev = top_ids[t, a - 1]
                    if not (row[v] < row[prev] or (row[v] == row[prev] and v > prev)):
                        continue
                if pick < 0 or row[v] > row[pick]:
                    pick = v
            top_ids[t, a] = pick
            top_logp[t, a] = row[pick] - log_norm
