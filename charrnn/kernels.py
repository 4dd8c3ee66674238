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
