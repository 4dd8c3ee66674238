"""The recurrence, written once.

`_layer_step` is one time step of one layer, h_t = f(pre_t + h_{t-1}·Wh). Everything else calls it:
`_forward_layers` runs it over a chunk for every layer (training, evaluation, scoring, warm-up), and
`_stack_step` runs it for one step through all layers (sampling, step-by-step scoring, coding). Both add
the bias to the input part the same way and sum in the same order, so a text scored in chunks and the
same text fed one character at a time differ only by the rounding of the input products of upper layers
(BLAS over T·B rows in a chunk, the small-product loop for one row).

The input part of layer 1's pre-activation comes precomputed (inputs.py: a row lookup or a dense
product), so a character model and a real-valued series model share every kernel here.

Documents (independent sequences packed one after another into the rows of a chunk) ride on the same
kernels through optional `resets` (B, T): where resets[b, t] is set, row b starts a new document at t, so
its state before t counts as zero — in the forward pass (`_layer_step` drops the recurrent product of
that row) and in the backward pass (no gradient flows from t into t-1, and h_{t-1} adds nothing to
dWh). Without `resets` (None, the default) numba compiles the branches away: stream training pays nothing.
"""

from numba import njit

from . import ACT_RELU, FAST
from .blas import _gemm
from .elementwise import _activate_add, _multiply


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _layer_step(pre, Wh, h_prev, h_out, act, reset=None):
    """h_out = f(pre + h_prev·Wh) for one layer and one time step. pre, h_prev, h_out (B, H), Wh (H, H);
    h_out must not alias h_prev (it receives the product first). reset (B,) (optional): rows where it is
    set start a document, h_out = f(pre), as if h_prev were zero."""
    _gemm(h_prev, Wh, h_out, False, False, 0.0)
    if reset is not None:
        for b in range(reset.size):
            if reset[b]:
                h_out[b, :] = 0.0
    _activate_add(pre, h_out, act)


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _add_bias(pre, b):
    """pre (..., H) += b (H,), in place."""
    H = b.size
    flat = pre.reshape(pre.size)
    for i in range(0, flat.size, H):
        for j in range(H):
            flat[i + j] += b[j]


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _forward_layers(pre, Wu, Wh, bh, h0, hs, masks, dropped, act, resets=None):
    """Forward all layers over a chunk; returns the (T·B, H) input of the head.

    pre (T, B, H): on entry layer 1's input part (from inputs.py), then scratch. Wu (L-1, H, H);
    Wh (L, H, H); bh (L, H); h0 (L, B, H) carried state; hs (L, T, B, H) receives every hidden state
    (hs[:, T-1] is the final state). Dropout on the non-recurrent connections when masks (L, T, B, H) is
    non-empty: masks[l-1] on what layer l passes up (to layer l+1, or to the head for l = L); dropped
    (L, T, B, H) receives those masked activations for the backward pass. The input is never dropped: for
    a character model that would hide the one thing each step is about (tried: 0.3 input dropout slowed
    learning several-fold on tiny Shakespeare). resets (B, T) (optional): document starts (module docstring).
    """
    T, B, H = pre.shape
    L = hs.shape[0]
    dropout = masks.shape[0] > 0
    for layer in range(L):
        if layer > 0:
            below = hs[layer - 1]
            if dropout:
                _multiply(below, masks[layer - 1], dropped[layer - 1])
                below = dropped[layer - 1]
            _gemm(below.reshape((T * B, H)), Wu[layer - 1], pre.reshape((T * B, H)), False, False, 0.0)
        _add_bias(pre, bh[layer])
        for t in range(T):
            h_prev = h0[layer] if t == 0 else hs[layer, t - 1]
            if resets is None:
                _layer_step(pre[t], Wh[layer], h_prev, hs[layer, t], act)
            else:
                _layer_step(pre[t], Wh[layer], h_prev, hs[layer, t], act, resets[:, t])
    if dropout:
        _multiply(hs[L - 1], masks[L - 1], dropped[L - 1])
        return dropped[L - 1].reshape((T * B, H))
    return hs[L - 1].reshape((T * B, H))


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _backward_layers(h0, hs, Wu, Wh, dh_above, dh_next, dpre, masks, dropped, dWu, dWh, dbh, act, resets=None):
    """Truncated backpropagation through time over the chunk, top layer down.

    dh_above (T, B, H): on entry the loss gradient at the head's input (dropout mask not yet applied);
    used as scratch after. dh_next (B, H) scratch. dpre (T, B, H) receives, on return, the gradient of
    layer 1's pre-activation — what inputs.py turns into the input weights' gradient. Other arrays as in
    `_forward_layers`; dWu, dWh, dbh are overwritten. The gradient stops at h0, and, with `resets`, at
    every document start.
    """
    T, B, H = dpre.shape
    L = hs.shape[0]
    N = T * B
    dropout = masks.shape[0] > 0
    if dropout:
        _multiply(dh_above, masks[L - 1], dh_above)
    one, zero = hs.dtype.type(1.0), hs.dtype.type(0.0)
    flat_next = dh_next.reshape(B * H)
    for layer in range(L - 1, -1, -1):
        h = hs[layer]
        # Backward through time: the only sequential part of the backward pass.
        dh_next[:] = 0.0
        for t in range(T - 1, -1, -1):
            flat_dpre, flat_above, flat_h = dpre[t].reshape(B * H), dh_above[t].reshape(B * H), h[t].reshape(B * H)
            if act == ACT_RELU:
                for i in range(B * H):
                    flat_dpre[i] = flat_above[i] + flat_next[i] if flat_h[i] > zero else zero
            else:  # tanh' = 1 - tanh²
                for i in range(B * H):
                    flat_dpre[i] = (flat_above[i] + flat_next[i]) * (one - flat_h[i] * flat_h[i])
            if t > 0:
                _gemm(dpre[t], Wh[layer], dh_next, False, True, 0.0)
                if resets is not None:  # a document starting at t owes nothing to t-1
                    for b in range(B):
                        if resets[b, t]:
                            dh_next[b, :] = 0.0
        # Weight gradients for all positions at once: h_{t-1} is h0 at t = 0, hs[t-1] after.
        dpre_flat = dpre.reshape((N, H))
        if resets is None:
            _gemm(h0[layer], dpre[0], dWh[layer], True, False, 0.0)
            if T > 1:
                h_prev = h[: T - 1].reshape(((T - 1) * B, H))
                _gemm(h_prev, dpre[1:].reshape(((T - 1) * B, H)), dWh[layer], True, False, 1.0)
        else:
            # h_{t-1} with the rows that start a document zeroed, in dh_above (read up to here, written
            # next): one product over all positions, as without resets.
            for t in range(T):
                for b in range(B):
                    if resets[b, t]:
                        dh_above[t, b, :] = 0.0
                    else:
                        dh_above[t, b, :] = h0[layer, b] if t == 0 else h[t - 1, b]
            _gemm(dh_above.reshape((N, H)), dpre_flat, dWh[layer], True, False, 0.0)
        dbh[layer] = 0.0
        for i in range(N):
            for j in range(H):
                dbh[layer, j] += dpre_flat[i, j]
        if layer > 0:
            below = dropped[layer - 1] if dropout else hs[layer - 1]
            _gemm(below.reshape((N, H)), dpre_flat, dWu[layer - 1], True, False, 0.0)
            _gemm(dpre_flat, Wu[layer - 1], dh_above.reshape((N, H)), False, True, 0.0)
            if dropout:
                _multiply(dh_above, masks[layer - 1], dh_above)


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _stack_step(pre, Wu, Wh, bh, h, tmp, act):
    """Advance K streams one step through all layers, in place: the single step of sampling, step-by-step
    scoring and coding. pre (K, H): on entry layer 1's input part (inputs.py), then scratch; h (L, K, H)
    the state, updated; tmp (K, H) scratch. Same bias addition and order of sums as `_forward_layers`."""
    L = h.shape[0]
    for layer in range(L):
        if layer > 0:
            _gemm(h[layer - 1], Wu[layer - 1], pre, False, False, 0.0)
        _add_bias(pre, bh[layer])
        _layer_step(pre, Wh[layer], h[layer], tmp, act)
        h[layer][:] = tmp
