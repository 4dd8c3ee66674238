"""What feeds layer 1: the input part of its pre-activation, written time-major into (T, B, H) — and the
gradient of the input weights from d(pre-activation). The recurrence (rnn.py) adds the bias and never
knows which input kind it was given.

    one-hot ids  x (B, T) int:     pre[t, b] = Wx[x[b, t]]   (a row lookup, never a dense product)
    dense values X (T, B, D) real: pre[t, b] = X[t, b]·Wx    (one product over all T·B rows)
"""

from numba import njit

from . import FAST
from .blas import _gemm


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _lookup(x, W, out):
    """out (T, B, H): out[t, b] = W[x[b, t]] for ids x (B, T) and W (V, H): one-hot times W is a row lookup."""
    B, T = x.shape
    H = W.shape[1]
    for t in range(T):
        for b in range(B):
            row = W[x[b, t]]
            target = out[t, b]
            for j in range(H):
                target[j] = row[j]


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _lookup_grad(x, dpre, dW):
    """dW (V, H) = gradient of the lookup: the rows of dpre (T, B, H) scatter-added at the ids x (B, T)."""
    B, T = x.shape
    H = dW.shape[1]
    dW[:] = 0.0
    for t in range(T):
        for b in range(B):
            row = dW[x[b, t]]
            for j in range(H):
                row[j] += dpre[t, b, j]


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _dense(X, W, out):
    """out (T, B, H) = X (T, B, D) · W (D, H), all T·B rows in one product."""
    T, B, D = X.shape
    _gemm(X.reshape((T * B, D)), W, out.reshape((T * B, W.shape[1])), False, False, 0.0)


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _dense_grad(X, dpre, dW):
    """dW (D, H) = Xᵀ·dpre over all T·B rows, for X (T, B, D) and dpre (T, B, H)."""
    T, B, D = X.shape
    H = dpre.shape[2]
    _gemm(X.reshape((T * B, D)), dpre.reshape((T * B, H)), dW, True, False, 0.0)


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _dense_input_grad(dpre, W, dX):
    """dX (T, B, D) = dpre (T, B, H) · Wᵀ, the gradient flowing into dense inputs (W (D, H))."""
    T, B, H = dpre.shape
    _gemm(dpre.reshape((T * B, H)), W, dX.reshape((T * B, W.shape[0])), False, True, 0.0)
