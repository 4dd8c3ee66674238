"""The series model's loss, gradients, predictions and forecasts: real values → dense input → layer
stack(s) → linear head → squared error, sharded over the batch as lm.py does for the character model.

A series model is one or more layer stacks, each exactly the character model's (rnn.py: the same
`_forward_layers`, `_backward_layers` and `_stack_step`) fed through a dense input matrix (inputs.py:
`_dense`) instead of a row lookup. Consecutive layers of one width share a stack, so the usual
SimpleRNN(20) → SimpleRNN(20) → Dense(1) is one stack of two layers and one kernel call; a new stack
starts where the width changes (20, 20, 1: two stacks, the second fed the first's top layer through its
own dense input).

    layout (S, 3) int64   row s = (D_s, H_s, n_s): stack s has n_s layers of H_s units and D_s inputs
                          (D_1 = the series' dimensionality D, D_s = H_{s-1} after)
    flat (P,)             stack by stack Wx (D_s, H_s), Wu (n_s-1, H_s, H_s), Wh (n_s, H_s, H_s),
                          bh (n_s, H_s); then the head Wy (H_S, K), by (K,) when `dense`. Without a dense
                          head the top layer's H_S = K units are the outputs (Keras' SimpleRNN(1) last).

The head reads the top layer at the last step (sequence to vector: outputs (B, K)) or at every step
(sequence to sequence, `every`: outputs (B, T, K)); K outputs give K steps ahead directly.

Data come batch-major, as Keras has them: X (B, T, D), targets (B, T_out, K) with T_out = 1 or T. Each
shard copies its rows into a time-major slab, so every product over the chunk is one BLAS call.
"""

import numpy as np
from numba import njit, prange

from . import FAST
from .heads import _linear, _mse, _softmax_grad_projection
from .inputs import _dense, _dense_grad, _dense_input_grad
from .rnn import _backward_layers, _forward_layers, _stack_step


def param_count(layout: np.ndarray, outputs: int, dense: bool) -> int:
    """P, the length of the flat parameter vector for this layout and head."""
    total = 0
    for D, H, n in layout:
        total += D * H + (2 * n - 1) * H * H + n * H
    return int(total + (layout[-1][1] * outputs + outputs if dense else 0))


def scratch_size(layout: np.ndarray, seq_len: int, rows: int, outputs: int, every: bool) -> int:
    """Elements of one shard's scratch row (see `_common_scratch` and `_stack_scratch`)."""
    T, b = seq_len, rows
    size = T * b * layout[0][0] + b * max(n * H for _, H, n in layout) + b * max(H for _, H, _ in layout)
    size += (T * b if every else b) * outputs
    for _, H, n in layout:
        size += (n + 2) * T * b * H
    return int(size)


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _stack_params(flat, layout, s):
    """Views Wx (D, H), Wu (n-1, H, H), Wh (n, H, H), bh (n, H) of stack s in flat (P,)."""
    offset = 0
    for i in range(s):
        D, H, n = layout[i, 0], layout[i, 1], layout[i, 2]
        offset += D * H + (2 * n - 1) * H * H + n * H
    D, H, n = layout[s, 0], layout[s, 1], layout[s, 2]
    Wx = flat[offset : offset + D * H].reshape((D, H))
    offset += D * H
    Wu = flat[offset : offset + (n - 1) * H * H].reshape((n - 1, H, H))
    offset += (n - 1) * H * H
    Wh = flat[offset : offset + n * H * H].reshape((n, H, H))
    offset += n * H * H
    bh = flat[offset : offset + n * H].reshape((n, H))
    return Wx, Wu, Wh, bh


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _head_params(flat, H, K, dense):
    """Views Wy (H, K) and by (K,): the last H·K + K elements of flat, or empty without a dense head."""
    P = flat.size
    if not dense:
        return flat[:0].reshape((0, K)), flat[:0]
    return flat[P - H * K - K : P - K].reshape((H, K)), flat[P - K :]


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _common_scratch(buffer, layout, T, b, K, every):
    """The shard's x (T, b, D) time-major input, zeros (at least n·b·H for every stack: the initial
    state), dh_next (at least b·H), out (T·b or b, K) the head's rows; and where the stacks' part starts."""
    D = layout[0, 0]
    x = buffer[: T * b * D].reshape((T, b, D))
    offset = T * b * D
    widest_state, widest = 0, 0
    for s in range(layout.shape[0]):
        widest_state = max(widest_state, layout[s, 1] * layout[s, 2])
        widest = max(widest, layout[s, 1])
    zeros = buffer[offset : offset + widest_state * b]
    offset += widest_state * b
    dh_next = buffer[offset : offset + widest * b]
    offset += widest * b
    rows = T * b if every else b
    out = buffer[offset : offset + rows * K].reshape((rows, K))
    return x, zeros, dh_next, out, offset + rows * K


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _stack_scratch(buffer, start, layout, s, T, b):
    """Stack s's hs (n, T, b, H), pre (T, b, H) and dh_above (T, b, H), laid out after `start`."""
    offset = start
    for i in range(s):
        offset += (layout[i, 2] + 2) * T * b * layout[i, 1]
    H, n = layout[s, 1], layout[s, 2]
    hs = buffer[offset : offset + n * T * b * H].reshape((n, T, b, H))
    offset += n * T * b * H
    pre = buffer[offset : offset + T * b * H].reshape((T, b, H))
    dh_above = buffer[offset + T * b * H : offset + 2 * T * b * H].reshape((T, b, H))
    return hs, pre, dh_above


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _forward(X, lo, hi, flat, layout, K, dense, every, buffer, act):
    """Forward rows lo:hi of X (B, T, D) through every stack and the head, in the shard's scratch.
    Returns out (T·b or b, K): the head's outputs, rows time-major (t·b + i). No dropout."""
    T = X.shape[1]
    b = hi - lo
    x, zeros, _, out, start = _common_scratch(buffer, layout, T, b, K, every)
    zeros[:] = 0.0
    for t in range(T):
        for i in range(b):
            x[t, i] = X[lo + i, t]
    no_dropout = buffer[:0].reshape((0, 1, 1, 1))
    below = x
    for s in range(layout.shape[0]):
        H, n = layout[s, 1], layout[s, 2]
        Wx, Wu, Wh, bh = _stack_params(flat, layout, s)
        hs, pre, _ = _stack_scratch(buffer, start, layout, s, T, b)
        _dense(below, Wx, pre)
        h0 = zeros[: n * b * H].reshape((n, b, H))
        _forward_layers(pre, Wu, Wh, bh, h0, hs, no_dropout, no_dropout, act)
        below = hs[n - 1]
    H = layout[layout.shape[0] - 1, 1]
    top = below.reshape((T * b, H)) if every else below[T - 1]
    Wy, by = _head_params(flat, H, K, dense)
    if dense:
        _linear(top, Wy, by, out)
    else:
        out[:] = top
    return out


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _loss_and_grads(X, Y, lo, hi, flat, layout, K, dense, every, buffer, grad, act, grad_scale):
    """Squared error of rows lo:hi and its gradient times grad_scale, written over grad (P,).

    Y (B, T_out, K) targets. After the head's gradient, backpropagation through time runs stack by
    stack from the top: `_backward_layers` leaves d(layer-1 pre-activation) of the stack in `pre`, from
    which come its input weights' gradient (`_dense_grad`) and the gradient flowing into the stack below
    (`_dense_input_grad`, that stack's dh_above). The gradient stops at the zero initial state.
    """
    T = X.shape[1]
    b = hi - lo
    S = layout.shape[0]
    out = _forward(X, lo, hi, flat, layout, K, dense, every, buffer, act)
    loss = _mse(out, Y[lo:hi], grad_scale)  # out now holds grad_scale · d(loss)/d(out)
    x, zeros, dh_next, _, start = _common_scratch(buffer, layout, T, b, K, every)
    H, n = layout[S - 1, 1], layout[S - 1, 2]
    hs, _, dh_above = _stack_scratch(buffer, start, layout, S - 1, T, b)
    if every:
        dtop = dh_above.reshape((T * b, H))
        top = hs[n - 1].reshape((T * b, H))
    else:
        dh_above[: T - 1] = 0.0
        dtop = dh_above[T - 1]
        top = hs[n - 1, T - 1]
    Wy, _ = _head_params(flat, H, K, dense)
    dWy, dby = _head_params(grad, H, K, dense)
    if dense:
        _softmax_grad_projection(top, out, Wy, dWy, dby, dtop)
    else:
        dtop[:] = out
    no_dropout = buffer[:0].reshape((0, 1, 1, 1))
    for s in range(S - 1, -1, -1):
        H, n = layout[s, 1], layout[s, 2]
        Wx, Wu, Wh, _ = _stack_params(flat, layout, s)
        dWx, dWu, dWh, dbh = _stack_params(grad, layout, s)
        hs, pre, dh_above = _stack_scratch(buffer, start, layout, s, T, b)
        h0 = zeros[: n * b * H].reshape((n, b, H))
        _backward_layers(h0, hs, Wu, Wh, dh_above, dh_next[: b * H].reshape((b, H)), pre, no_dropout,
                         no_dropout, dWu, dWh, dbh, act)  # fmt: skip
        if s == 0:
            _dense_grad(x, pre, dWx)
        else:
            below, _, dh_below = _stack_scratch(buffer, start, layout, s - 1, T, b)
            _dense_grad(below[layout[s - 1, 2] - 1], pre, dWx)
            _dense_input_grad(pre, Wx, dh_below)
    return loss


@njit(cache=True, fastmath=FAST, error_model="numpy", parallel=True)
def _loss_and_grads_sharded(X, Y, flat, layout, K, dense, every, bounds, scratch, grads, act):
    """`_loss_and_grads` over shards of the batch in parallel. bounds (S+1,) shard row boundaries; scratch
    (S, n) rows of `scratch_size`; grads (S, P) receive each shard's part of the gradient of the mean
    squared error over the whole batch, to be summed over S by the caller. Returns the summed error."""
    shards = bounds.size - 1
    B, T_out, _ = Y.shape
    losses = np.zeros(shards)
    for s in prange(shards):
        lo, hi = bounds[s], bounds[s + 1]
        losses[s] = _loss_and_grads(X, Y, lo, hi, flat, layout, K, dense, every, scratch[s], grads[s], act,
                                    1.0 / (B * T_out * K))  # fmt: skip
    return losses.sum()


@njit(cache=True, fastmath=FAST, error_model="numpy", parallel=True)
def _predict_sharded(X, flat, layout, K, dense, every, bounds, scratch, out, act):
    """out (B, T_out, K), batch-major: the head's outputs for X (B, T, D); T_out = T when `every`, else 1."""
    shards = bounds.size - 1
    T_out = out.shape[1]
    for s in prange(shards):
        lo, hi = bounds[s], bounds[s + 1]
        rows = _forward(X, lo, hi, flat, layout, K, dense, every, scratch[s], act)
        for t in range(T_out):
            for i in range(hi - lo):
                out[lo + i, t] = rows[t * (hi - lo) + i]


@njit(cache=True, fastmath=FAST, error_model="numpy", parallel=True)
def _forecast_sharded(X, flat, layout, K, dense, every, rounds, bounds, scratch, out, act):
    """Iterated forecast: out (B, rounds·K) for a univariate model (D = 1).

    Round 1 is the head's K outputs after the last step of X (B, T, 1). Each further round feeds the
    previous round's K values as the next K inputs, one `_stack_step` each from the carried state, and
    reads the K outputs after the last of them. The same as re-running the whole model on the series
    grown by the predictions (tests check it), in O(rounds·K) steps instead of O(rounds·(T + rounds·K)).
    """
    shards = bounds.size - 1
    S, T = layout.shape[0], X.shape[1]
    state_size, widest = 0, 0
    for i in range(S):
        state_size += layout[i, 2] * layout[i, 1]
        widest = max(widest, layout[i, 1])
    for s in prange(shards):
        lo, hi = bounds[s], bounds[s + 1]
        b = hi - lo
        rows = _forward(X, lo, hi, flat, layout, K, dense, every, scratch[s], act)
        first = rows[(T - 1) * b :] if every else rows
        for i in range(b):
            out[lo + i, :K] = first[i]
        if rounds == 1:
            continue
        # the carried state of every stack (n, b, H), one after another, and one step's scratch
        state = np.empty(state_size * b, scratch.dtype)
        step_in = np.empty(widest * b, scratch.dtype)
        pre = np.empty(widest * b, scratch.dtype)
        tmp = np.empty(widest * b, scratch.dtype)
        head = np.empty((b, K), scratch.dtype)
        _, _, _, _, start = _common_scratch(scratch[s], layout, T, b, K, every)
        offset = 0
        for i in range(S):
            H, n = layout[i, 1], layout[i, 2]
            hs, _, _ = _stack_scratch(scratch[s], start, layout, i, T, b)
            state[offset : offset + n * b * H].reshape((n, b, H))[:] = hs[:, T - 1]
            offset += n * b * H
        H_top = layout[S - 1, 1]
        Wy, by = _head_params(flat, H_top, K, dense)
        for r in range(1, rounds):
            for k in range(K):
                below = step_in[:b].reshape((1, b, 1))
                for i in range(b):
                    below[0, i, 0] = out[lo + i, (r - 1) * K + k]
                offset = 0
                for i in range(S):
                    H, n = layout[i, 1], layout[i, 2]
                    Wx, Wu, Wh, bh = _stack_params(flat, layout, i)
                    h = state[offset : offset + n * b * H].reshape((n, b, H))
                    _dense(below, Wx, pre[: b * H].reshape((1, b, H)))
                    _stack_step(pre[: b * H].reshape((b, H)), Wu, Wh, bh, h, tmp[: b * H].reshape((b, H)), act)
                    below = h[n - 1 :].reshape((1, b, H))
                    offset += n * b * H
            top = below.reshape((b, H_top))
            if dense:
                _linear(top, Wy, by, head)
            else:
                head[:] = top
            for i in range(b):
                out[lo + i, r * K : (r + 1) * K] = head[i]
