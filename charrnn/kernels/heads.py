"""Heads: the softmax head (the one log-normaliser, cross-entropy, the projection's gradient), and the
regression head of series models (a linear map and the squared error, at the end of this module).

Training, scoring, sampling and coding all turn a row of logits into probabilities through
`_bias_max` then `_log_normaliser`, so the same logits give the same log-probabilities bit for bit
wherever they are computed: log p(v) = (row[v] - top) - log Σ exp(row - top).
"""

import math

from numba import njit

from . import FAST
from .blas import _gemm
from .elementwise import _exp_sum


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _bias_max(row, by):
    """row (V,) += by (V,) in place; returns the new maximum. The bias rides along with the max: no
    separate pass over the logits."""
    top = row[0] + by[0]
    for j in range(row.size):
        v = row[j] + by[j]
        row[j] = v
        top = max(top, v)
    return top


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _log_normaliser(values, top):
    """values (V,) := exp(values - top) in place (top >= every value, usually their max); returns
    (log Σ exp(values - top) as float64, Σ in the values' dtype). The only log-sum-exp of charrnn."""
    total = _exp_sum(values, top)
    return math.log(float(total)), total


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _softmax_xent(logits, by, targets, grad_scale):
    """Row-wise softmax cross-entropy of (N, V) logits + by (V,), in place.

    targets (B, T) ids; the rows are time-major (row t·B + b is scored against targets[b, t]). Returns
    the summed loss in nats (float64). When grad_scale != 0 the logits are replaced by
    d(loss)/d(logits) * grad_scale, i.e. (p - onehot) * grad_scale; otherwise they are left as scratch.
    """
    B, T = targets.shape
    V = logits.shape[1]
    total_loss = 0.0
    for t in range(T):
        for b in range(B):
            row = logits[t * B + b]
            top = _bias_max(row, by)
            target = targets[b, t]
            # log p(target) = (logit - top) - log(total): no log of a rounded (maybe underflowed) probability
            shifted = float(row[target] - top)
            log_total, total = _log_normaliser(row, top)
            total_loss += log_total - shifted
            if grad_scale != 0.0:
                scale = logits.dtype.type(grad_scale / float(total))
                for j in range(V):
                    row[j] *= scale
                row[target] -= grad_scale
    return total_loss


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _softmax_grad_projection(top, logits, Wy, dWy, dby, dtop):
    """Backward through the output projection logits = top·Wy + by, for all N rows at once.

    top (N, H) the head's input; logits (N, V) hold d(loss)/d(logits); dWy (H, V), dby (V,) and
    dtop (N, H) (the gradient flowing into the layer stack) are overwritten."""
    N, V = logits.shape
    _gemm(top, logits, dWy, True, False, 0.0)
    dby[:] = 0.0
    for i in range(N):
        for v in range(V):
            dby[v] += logits[i, v]
    _gemm(logits, Wy, dtop, False, True, 0.0)


# ---- the regression head (series models): a linear map and the squared error ----
#
# Its backward through the projection is the softmax head's `_softmax_grad_projection`, which is nothing
# but the backward of rows·Wy + by: the two heads differ only in the loss.


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _linear(top, Wy, by, out):
    """out (N, K) = top (N, H)·Wy (H, K) + by (K,), all N rows in one product."""
    _gemm(top, Wy, out, False, False, 0.0)
    N, K = out.shape
    for i in range(N):
        for k in range(K):
            out[i, k] += by[k]


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _mse(out, targets, grad_scale):
    """Squared error of the rows of out (N, K) against targets (B, T, K), N = T·B.

    The rows are time-major, as the layer stack leaves them: row t·B + b is compared with targets[b, t]
    (T = 1 for a head on the last step only). Returns Σ (out - target)² as float64. When grad_scale != 0
    the rows are replaced by grad_scale · d/d(out) = grad_scale · 2 (out - target); grad_scale = 1/(B·T·K)
    gives the gradient of the mean over all outputs (Keras' "mse").
    """
    B, T, K = targets.shape
    total = 0.0
    two = out.dtype.type(2.0 * grad_scale)
    for t in range(T):
        for b in range(B):
            row, target = out[t * B + b], targets[b, t]
            for k in range(K):
                error = row[k] - target[k]
                total += float(error) * float(error)
                if grad_scale != 0.0:
                    row[k] = two * error
    return total
