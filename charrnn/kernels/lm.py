"""The character language model's loss and gradients: ids → row lookup → layer stack → softmax head,
and the same over shards of the batch in parallel.

Documents (charrnn/documents.py) pass two optional (B, T) arrays along: `weights` for the head (0 on
padding) and `resets` for the recurrence (1 where a document starts); without them (None) the compiled
code is the stream code.

Each shard (a contiguous block of the batch's streams) runs the whole forward and backward pass on one
core with single-threaded BLAS; the caller sums the per-shard gradients in a fixed order. Each shard's
scratch memory is carved from one preallocated row of `scratch`, so steady-state training allocates
almost nothing (fresh multi-megabyte buffers cost page faults: ~15% of a step, measured).
"""

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from . import FAST
from .blas import _gemm
from .elementwise import _dropout_masks
from .heads import _softmax_grad_projection, _softmax_xent
from .inputs import _lookup, _lookup_grad
from .rnn import _backward_layers, _forward_layers


def _rows(a, lo, hi):
    """a[lo:hi] for an optional array (None stays None, so the shard's call compiles without it)."""
    raise NotImplementedError  # only the compiled overload below exists


@overload(_rows, jit_options={"cache": True})
def _rows_overload(a, lo, hi):
    if isinstance(a, (types.NoneType, types.Omitted)):
        return lambda a, lo, hi: None
    return lambda a, lo, hi: a[lo:hi]


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _loss(x, y, Wx, Wu, Wh, bh, Wy, by, h0, hs, pre, logits, act, weights=None, resets=None):
    """Forward pass only: summed cross-entropy (nats) of y given x, carrying h0. No dropout.

    x, y (B, T) ids; h0 (L, B, H); hs (L, T, B, H) receives the hidden states (the final state is
    hs[:, T-1]); pre (T, B, H) and logits (T·B, V) are scratch. weights, resets (B, T) optional (module
    docstring).
    """
    empty = pre[:0].reshape((0, 1, 1, 1))
    _lookup(x, Wx, pre)
    top = _forward_layers(pre, Wu, Wh, bh, h0, hs, empty, empty, act, resets)
    _gemm(top, Wy, logits, False, False, 0.0)  # + by inside the softmax
    return _softmax_xent(logits, by, y, 0.0, weights)


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _loss_and_grads(
    x, y, Wx, Wu, Wh, bh, Wy, by, h0, hs, pre, logits, dh_above, dh_next, masks, dropped,
    dWx, dWu, dWh, dbh, dWy, dby, act, grad_scale, weights=None, resets=None,
):  # fmt: skip
    """Forward, then truncated backpropagation through time over the chunk.

    Shapes and scratch as in `_loss` and rnn's `_forward_layers` (dropout when masks is non-empty,
    already filled); dh_above (T, B, H) and dh_next (B, H) are scratch. d* arrays have the shape of their
    parameter and are overwritten with grad_scale times the gradient of the summed cross-entropy
    (grad_scale = 1/positions gives the gradient of the mean). Returns the summed loss (nats).
    weights, resets (B, T) optional (module docstring).
    """
    B, T = x.shape
    H = pre.shape[2]
    _lookup(x, Wx, pre)
    top = _forward_layers(pre, Wu, Wh, bh, h0, hs, masks, dropped, act, resets)
    _gemm(top, Wy, logits, False, False, 0.0)  # + by inside the softmax
    loss = _softmax_xent(logits, by, y, grad_scale, weights)  # logits now hold dLoss/dlogits
    _softmax_grad_projection(top, logits, Wy, dWy, dby, dh_above.reshape((T * B, H)))
    _backward_layers(h0, hs, Wu, Wh, dh_above, dh_next, pre, masks, dropped, dWu, dWh, dbh, act, resets)
    _lookup_grad(x, pre, dWx)  # the forward scratch `pre` now holds d(layer-1 pre-activation)
    return loss


def scratch_size(layers: int, seq_len: int, rows: int, hidden: int, vocab: int, dropout: bool) -> int:
    """Elements of one shard's scratch row (see `_carve_scratch`)."""
    slab = seq_len * rows * hidden
    size = (layers + 2) * slab + seq_len * rows * vocab + rows * hidden
    return size + 2 * layers * slab if dropout else size


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _carve_scratch(buffer, L, T, B, H, V, dropout):
    """Views of one shard's scratch row: hs (L,T,B,H), pre (T,B,H), dh_above (T,B,H), logits (T·B,V),
    dh_next (B,H), masks (L,T,B,H) and dropped (L,T,B,H) (both empty without dropout)."""
    slab = T * B * H
    hs = buffer[: L * slab].reshape((L, T, B, H))
    offset = L * slab
    pre = buffer[offset : offset + slab].reshape((T, B, H))
    offset += slab
    dh_above = buffer[offset : offset + slab].reshape((T, B, H))
    offset += slab
    logits = buffer[offset : offset + T * B * V].reshape((T * B, V))
    offset += T * B * V
    dh_next = buffer[offset : offset + B * H].reshape((B, H))
    offset += B * H
    n_masks = L if dropout else 0
    masks = buffer[offset : offset + n_masks * slab].reshape((n_masks, T, B, H))
    offset += n_masks * slab
    dropped = buffer[offset : offset + n_masks * slab].reshape((n_masks, T, B, H))
    return hs, pre, dh_above, logits, dh_next, masks, dropped


@njit(cache=True, fastmath=FAST, error_model="numpy", parallel=True)
def _loss_sharded(x, y, Wx, Wu, Wh, bh, Wy, by, h0, h_final, bounds, scratch, act, weights=None, resets=None):
    """`_loss` over shards of the batch in parallel. bounds (S+1,) shard row boundaries; scratch (S, n)
    rows of `scratch_size(..., dropout=False)`; h_final (L, B, H) receives the final state; weights,
    resets (B, T) optional. Returns the summed (weighted) loss (nats)."""
    S = bounds.size - 1
    L, _, H = h0.shape
    T = x.shape[1]
    V = Wy.shape[1]
    losses = np.zeros(S)
    for s in prange(S):
        lo, hi = bounds[s], bounds[s + 1]
        hs, pre, _, logits, _, _, _ = _carve_scratch(scratch[s], L, T, hi - lo, H, V, False)
        h0_shard = np.ascontiguousarray(h0[:, lo:hi])
        losses[s] = _loss(x[lo:hi], y[lo:hi], Wx, Wu, Wh, bh, Wy, by, h0_shard, hs, pre, logits, act,
                          _rows(weights, lo, hi), _rows(resets, lo, hi))  # fmt: skip
        h_final[:, lo:hi] = hs[:, T - 1]
    return losses.sum()


@njit(cache=True, fastmath=FAST, error_model="numpy", parallel=True)
def _loss_and_grads_sharded(
    x, y, Wx, Wu, Wh, bh, Wy, by, h0, h_final, bounds, scratch, keep, seeds, gWx, gWu, gWh, gbh, gWy, gby, act,
    weights=None, resets=None,
):  # fmt: skip
    """`_loss_and_grads` over shards in parallel; g* (S, ...) receive each shard's gradient of the mean
    loss over the whole batch (over the weights' sum when weights (B, T) are given), to be summed over S
    by the caller. Dropout when keep < 1, shard s drawing its masks from seeds[s] (so masks do not depend
    on the thread count). resets (B, T) optional. Returns the summed (weighted) loss."""
    S = bounds.size - 1
    L, _, H = h0.shape
    B, T = x.shape
    V = Wy.shape[1]
    dropout = keep < 1.0
    count = float(B * T) if weights is None else float(weights.sum())
    grad_scale = 1.0 / count if count > 0.0 else 0.0
    losses = np.zeros(S)
    for s in prange(S):
        lo, hi = bounds[s], bounds[s + 1]
        hs, pre, dh_above, logits, dh_next, masks, dropped = _carve_scratch(scratch[s], L, T, hi - lo, H, V, dropout)
        if dropout:
            _dropout_masks(masks, keep, seeds[s : s + 1].copy())
        losses[s] = _loss_and_grads(
            x[lo:hi], y[lo:hi], Wx, Wu, Wh, bh, Wy, by, np.ascontiguousarray(h0[:, lo:hi]), hs, pre, logits,
            dh_above, dh_next, masks, dropped, gWx[s], gWu[s], gWh[s], gbh[s], gWy[s], gby[s], act, grad_scale,
            _rows(weights, lo, hi), _rows(resets, lo, hi),
        )  # fmt: skip
        h_final[:, lo:hi] = hs[:, T - 1]
    return losses.sum()
