"""Every compiled (Numba) function of charrnn lives here, and no other module imports numba.

Letters used in shapes, declared once:
    B batch (parallel streams) · T time steps in a chunk · H hidden units · V vocabulary size
    L layers · N = T·B positions in a chunk.

The model (row-vector convention, x_t one-hot so x_t·Wx is the row Wx[id]):
    layer 1:     h1_t = f(Wx[x_t] + h1_{t-1}·Wh[0] + bh[0])
    layer l > 1: hl_t = f(h(l-1)_t·Wu[l-2] + hl_{t-1}·Wh[l-1] + bh[l-1])
    output:      p_t  = softmax(hL_t·Wy + by)

Hidden states are stored time-major, (L, T, B, H), so each step's (B, H) slab is contiguous and every
product is a plain BLAS call (`_gemm`, below). Only the recurrence
h_{t-1} -> h_t is sequential; the input rows of upper layers, the output projection, the softmax and
every weight gradient are computed for all N positions at once.

Kernels are private (`_name`) and called only by typed wrappers in model.py / generate.py / score.py.
They read no globals except the compile-time constants below (numba freezes globals at compile time,
and `cache=True` persists them), allocate nothing inside time loops, and take every setting as an
argument.
"""

import contextlib
import ctypes
import math
from collections.abc import Iterator

import llvmlite.binding
import llvmlite.ir
import numba
import numpy as np
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload
from threadpoolctl import threadpool_info, threadpool_limits

# fastmath without 'nnan'/'ninf': NaN and inf must survive so the divergence guard can see them.
FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}

# Activation codes (an int argument, not a function argument, so kernels stay cacheable).
ACT_TANH = 0  # tanh by a rational approximation: vectorises, |error| < 3e-7 (float32 training)
ACT_RELU = 1
ACT_TANH_EXACT = 2  # libm tanh: exact to the last bit (float64, gradient checks)


# ---- matrix products: straight into numpy's own BLAS ----
#
# `np.dot` inside @njit goes to scipy's bundled OpenBLAS; numpy's wheels bundle a newer OpenBLAS whose
# sgemm is 1.3-1.9x faster on the small (32..64 x H)·(H x H) products of the recurrence (measured on
# this Zen 4 machine). We call its CBLAS gemm directly: the symbol is registered with LLVM under a fixed
# name at import, so compiled kernels stay cacheable (they refer to the name, not an address). Where
# numpy has no bundled scipy-openblas (e.g. a conda MKL build), a compiled fallback with the same
# signature serves the name through np.dot.

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
_GEMM_ARGS = (types.int32, types.int32, types.int32, types.int64, types.int64, types.int64)


def _gemm_signature(real):
    # pointers travel as 64-bit integers (same registers as pointers in the C calling convention)
    ptr, i64 = types.intp, types.int64
    return types.void(*_GEMM_ARGS, real, ptr, i64, ptr, i64, real, ptr, i64)


def _pointer_from_address(real):
    """An intrinsic turning a 64-bit address into a typed pointer (for the fallback's carray views)."""

    @intrinsic
    def as_pointer(typingctx, address):  # noqa: ARG001
        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(types.CPointer(real)))

        return types.CPointer(real)(types.intp), codegen

    return as_pointer


def _fallback_gemm(real) -> int:
    """Address of a compiled function with the CBLAS gemm signature (row-major only), built on np.dot."""
    as_pointer = _pointer_from_address(real)

    @numba.cfunc(_gemm_signature(real), cache=True)
    def gemm(order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):  # noqa: ARG001
        A = numba.carray(as_pointer(a), (k if trans_a == _TRANS else m, lda))
        B = numba.carray(as_pointer(b), (n if trans_b == _TRANS else k, ldb))
        C = numba.carray(as_pointer(c), (m, ldc))
        op_a = np.ascontiguousarray(A.T) if trans_a == _TRANS else A
        op_b = np.ascontiguousarray(B.T) if trans_b == _TRANS else B
        product = np.dot(op_a, op_b)
        for i in range(m):
            for j in range(n):
                C[i, j] = alpha * product[i, j] + (beta * C[i, j] if beta != 0 else 0)

    return gemm.address


def _register_blas() -> str:
    """Bind charrnn_sgemm / charrnn_dgemm to numpy's bundled OpenBLAS (ILP64 CBLAS), or the fallback."""
    for info in threadpool_info():
        if info.get("internal_api") != "openblas":
            continue
        try:
            library = ctypes.CDLL(info["filepath"])
        except OSError:
            continue
        names = [("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_"), ("cblas_sgemm64_", "cblas_dgemm64_")]
        found = [(getattr(library, s), getattr(library, d)) for s, d in names if hasattr(library, s)]
        if not found:
            continue
        sgemm, dgemm = found[0]
        llvmlite.binding.add_symbol("charrnn_sgemm", ctypes.cast(sgemm, ctypes.c_void_p).value)
        llvmlite.binding.add_symbol("charrnn_dgemm", ctypes.cast(dgemm, ctypes.c_void_p).value)
        return info["filepath"]
    import scipy.linalg.cython_blas  # noqa: F401  the fallback's np.dot needs scipy's BLAS, loaded before limits

    llvmlite.binding.add_symbol("charrnn_sgemm", _fallback_gemm(types.float32))
    llvmlite.binding.add_symbol("charrnn_dgemm", _fallback_gemm(types.float64))
    return "numba np.dot fallback"


BLAS_LIBRARY = _register_blas()
_sgemm = types.ExternalFunction("charrnn_sgemm", _gemm_signature(types.float32))
_dgemm = types.ExternalFunction("charrnn_dgemm", _gemm_signature(types.float64))


def _gemm(a, b, c, trans_a, trans_b, beta):
    """c = op(a)·op(b) + beta·c for C-contiguous 2-D arrays; op transposes when trans_* is True."""
    raise NotImplementedError  # only the compiled overload below exists


@overload(_gemm, jit_options={"cache": True})
def _gemm_overload(a, b, c, trans_a, trans_b, beta):
    call = _sgemm if a.dtype == types.float32 else _dgemm

    def gemm(a, b, c, trans_a, trans_b, beta):
        m, n = c.shape
        k = a.shape[0] if trans_a else a.shape[1]
        if m < SMALL_GEMM_ROWS and not trans_a:
            _small_gemm(a, b, c, trans_b, beta)
            return
        call(
            _ROW_MAJOR, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS, m, n, k,
            c.dtype.type(1.0), a.ctypes.data, a.shape[1], b.ctypes.data, b.shape[1], c.dtype.type(beta),
            c.ctypes.data, n,
        )  # fmt: skip

    return gemm


# Below this many rows OpenBLAS forwards gemm to gemv kernels whose summation order depends on the
# operands' memory alignment: the same product could differ in the last bit between two calls (seen
# as a flaky seeded-sampling test). A plain loop with a fixed order is deterministic, and as fast there.
SMALL_GEMM_ROWS = 16


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _small_gemm(a, b, c, trans_b, beta):
    """c = a·op(b) + beta·c for few rows of a (fixed summation order)."""
    m, n = c.shape
    k = a.shape[1]
    for i in range(m):
        row = c[i]
        if trans_b:
            for j in range(n):
                total = row.dtype.type(0.0)
                for p in range(k):
                    total += a[i, p] * b[j, p]
                row[j] = total + (beta * row[j] if beta != 0.0 else 0.0)
        else:
            for j in range(n):
                row[j] = beta * row[j] if beta != 0.0 else 0.0
            for p in range(k):
                scale = a[i, p]
                weights = b[p]
                for j in range(n):
                    row[j] += scale * weights[j]


def available_threads() -> int:
    """Threads numba may use (all cores unless NUMBA_NUM_THREADS says otherwise)."""
    return numba.config.NUMBA_NUM_THREADS


@contextlib.contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """Run parallel kernels on `threads` threads (0: all) inside the block, and BLAS single-threaded:
    parallelism comes from shards (see below), and BLAS threads inside them would oversubscribe."""
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads or available_threads(), available_threads())))
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(previous)


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _activate_add(pre, acc, act):
    """acc = f(pre + acc) in place, elementwise over same-shaped contiguous arrays.
    The sum is fused into the activation pass: one sweep over memory instead of two. In place with two
    operands on purpose: with a separate output that aliases an input (out = pre_b, as the recurrence
    wants), LLVM's runtime overlap check fails and the scalar loop runs, 2.8 ns instead of 0.36 ns an
    element (float32, measured)."""
    flat_a = pre.reshape(pre.size)
    flat_out = acc.reshape(acc.size)
    if act == ACT_RELU:
        zero = flat_a.dtype.type(0.0)
        for i in range(flat_a.size):
            flat_out[i] = max(flat_a[i] + flat_out[i], zero)
    elif act == ACT_TANH_EXACT:
        for i in range(flat_a.size):
            flat_out[i] = math.tanh(flat_a[i] + flat_out[i])
    else:
        # Rational minimax approximation of tanh on [-7.9, 7.9] (as in Eigen's ptanh_float): only
        # multiply, add and one divide, so LLVM vectorises it (libm tanh costs ~20 ns a call here).
        # Constants are cast to the array's dtype so float32 stays float32 (twice the vector width).
        c = flat_a.dtype.type
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
        for i in range(flat_a.size):
            v = min(max(flat_a[i] + flat_out[i], -clamp), clamp)
            v2 = v * v
            p = ((((((v2 * a13 + a11) * v2 + a9) * v2 + a7) * v2 + a5) * v2 + a3) * v2 + a1) * v
            q = ((v2 * b6 + b4) * v2 + b2) * v2 + b0
            flat_out[i] = p / q


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _recurrence(pre, Wh, h0, hs, act):
    """Run one layer's recurrence over a chunk.

    pre (T, B, H): input part of the pre-activation (x·Wx + b).
    Wh (H, H), h0 (B, H) carried state, hs (T, B, H) output hidden states.
    """
    T = pre.shape[0]
    for t in range(T):
        h_prev = h0 if t == 0 else hs[t - 1]
        _gemm(h_prev, Wh, hs[t], False, False, 0.0)  # hs[t] serves as scratch: no allocation in the time loop
        _activate_add(pre[t], hs[t], act)


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _dropout_masks(masks, keep, rng_state):
    """Fill masks with 0 (dropped, probability 1-keep) or 1/keep (inverted dropout: no rescaling at
    evaluation). rng_state (1,) uint64 xorshift64* state, advanced in place. Each 64-bit draw gives four
    16-bit uniforms (keep is resolved to 1/65536), a quarter of the generator work per element."""
    flat = masks.reshape(masks.size)
    scale = masks.dtype.type(1.0 / keep)
    limit = np.uint64(round(keep * 65536.0)) - np.uint64(1)
    low16, one, top = np.uint64(0xFFFF), np.uint64(1), np.uint64(63)
    state = rng_state[0]
    n = flat.size
    for i in range(0, n, 4):
        state ^= state >> np.uint64(12)
        state ^= state << np.uint64(25)
        state ^= state >> np.uint64(27)
        bits = state * np.uint64(0x2545F4914F6CDD1D)
        for k in range(min(4, n - i)):
            uniform = (bits >> np.uint64(16 * k)) & low16
            # branch-free (an unpredictable branch cost 3x): 1 when uniform <= limit, i.e. kept
            kept = one - ((limit - uniform) >> top)
            flat[i + k] = scale * masks.dtype.type(kept)
    rng_state[0] = state


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _multiply(a, b, out):
    """out = a * b elementwise over same-shaped contiguous arrays (out may alias a)."""
    fa, fb, fo = a.reshape(a.size), b.reshape(b.size), out.reshape(out.size)
    for i in range(fa.size):
        fo[i] = fa[i] * fb[i]


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _forward_layers(x, Wx, Wu, Wh, bh, h0, hs, pre, masks, dropped, act):
    """Forward all layers over a chunk; returns the (T·B, H) input of the output layer.

    x (B, T) int ids; Wx (V, H); Wu (L-1, H, H); Wh (L, H, H); bh (L, H); h0 (L, B, H);
    hs (L, T, B, H) receives every hidden state (hs[:, T-1] is the final state); pre (T, B, H) scratch.
    Dropout on the non-recurrent connections when masks (L, T, B, H) is non-empty: masks[l-1] on what
    layer l passes up (to layer l+1, or to the output for l = L); dropped (L, T, B, H) receives those
    masked activations for the backward pass. The input character is never dropped: for a character
    model that would hide the one thing each step is about (tried: 0.3 input dropout slowed learning
    several-fold on tiny Shakespeare).
    """
    B, T = x.shape
    L, _, _, H = hs.shape
    dropout = masks.shape[0] > 0
    for t in range(T):
        for b in range(B):
            row = Wx[x[b, t]]  # one-hot input times Wx is a row lookup
            for j in range(H):
                pre[t, b, j] = row[j] + bh[0, j]
    _recurrence(pre, Wh[0], h0[0], hs[0], act)
    for layer in range(1, L + 1):
        below = hs[layer - 1]
        if dropout:
            _multiply(below, masks[layer - 1], dropped[layer - 1])
            below = dropped[layer - 1]
        if layer == L:
            return below.reshape((T * B, H))
        _gemm(below.reshape((T * B, H)), Wu[layer - 1], pre.reshape((T * B, H)), False, False, 0.0)
        for t in range(T):
            for b in range(B):
                for j in range(H):
                    pre[t, b, j] += bh[layer, j]
        _recurrence(pre, Wh[layer], h0[layer], hs[layer], act)
    return hs[L - 1].reshape((T * B, H))  # not reached: the loop returns at layer == L


# ---- a vectorisable exp for the softmax ----
#
# numba's math.exp is a libm call per element (~4 ns a logit with the float32 -> float64 round trip),
# which cost more than the whole output product. `_exp_sum` is the classic range reduction,
# x = n·ln2 + r with |r| <= ln2/2, then a polynomial for e^r and 2^n written straight into the exponent
# bits. Everything is multiply, add, round and integer ops, so LLVM vectorises it (8 floats at a time).
# Two details need LLVM-level help (the intrinsics below), because fastmath's 'reassoc' would otherwise
# fold the two-constant (Cody-Waite) reduction n·ln2_hi + n·ln2_lo back into one rounded n·ln2, an
# error growing with |x| (measured: 2e-14 relative in float64 at x = -700, 3e-7 in float32 at -80).


@intrinsic
def _mul_add(typingctx, a, b, c):  # noqa: ARG001
    """a·b + c via llvm.fmuladd (fused where the CPU has FMA). An intrinsic call, so fastmath
    reassociation does not merge it with neighbouring products."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        real = args[0].type
        name = "llvm.fmuladd.f32" if real == llvmlite.ir.FloatType() else "llvm.fmuladd.f64"
        function = cgutils.get_or_insert_function(builder.module, llvmlite.ir.FunctionType(real, [real] * 3), name)
        return builder.call(function, args)

    return a(a, b, c), codegen


@intrinsic
def _pow2(typingctx, n):  # noqa: ARG001
    """2**n for an integral float n in the normal exponent range, built from the exponent bits."""
    if not isinstance(n, types.Float):
        return None
    width, mantissa, bias = (32, 23, 127) if n.bitwidth == 32 else (64, 52, 1023)

    def codegen(context, builder, signature, args):
        integer = llvmlite.ir.IntType(width)
        biased = builder.add(builder.fptosi(args[0], integer), llvmlite.ir.Constant(integer, bias))
        return builder.bitcast(builder.shl(biased, llvmlite.ir.Constant(integer, mantissa)), args[0].type)

    return n(n), codegen


def _exp_remainder(r):
    """(e^r - 1 - r) / r² for |r| <= ln2/2, in r's precision (typed by the overload below)."""


@overload(_exp_remainder, jit_options={"cache": True, "fastmath": FAST, "error_model": "numpy"})
def _exp_remainder_overload(r):
    if r.bitwidth == 32:  # Cephes expf: degree-5 minimax polynomial
        c = np.float32
        q5, q4, q3 = c(1.9875691500e-4), c(1.3981999507e-3), c(8.3334519073e-3)
        q2, q1 = c(4.1665795894e-2), c(1.6666665459e-1)

        def remainder(r):
            return ((((q5 * r + q4) * r + q3) * r + q2) * r + q1) * r + c(0.5)

        return remainder
    # float64: Taylor series to r^13 (remainder < 1e-17 for |r| <= ln2/2)
    k = tuple(1.0 / math.factorial(n) for n in range(2, 14))  # 1/2!, 1/3!, ..., 1/13!

    def remainder(r):
        p = k[11] * r + k[10]
        p = (((p * r + k[9]) * r + k[8]) * r + k[7]) * r
        p = (((p + k[6]) * r + k[5]) * r + k[4]) * r + k[3]
        return ((p * r + k[2]) * r + k[1]) * r + k[0]

    return remainder


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _exp_sum(values, shift):
    """values[j] = exp(values[j] - shift) in place for values <= shift (1-D, contiguous); returns their sum
    in the array's dtype. Within 1 ulp of the exact exp (float32 and float64, measured); results below
    the smallest normal number are flushed to 0; NaN stays NaN (the divergence guard must see it).
    In place on purpose: a separate output aliasing the input would defeat LLVM's overlap check."""
    c = values.dtype.type
    # ln2 split so that n·ln2_hi is exact (Cephes for float32, fdlibm for float64); the normal range
    if values.itemsize == 4:
        ln2_hi, ln2_lo, lowest, n_min, n_max = c(0.693359375), c(-2.12194440e-4), c(-87.33654), c(-126.0), c(127.0)
    else:
        ln2_hi, ln2_lo = c(6.93147180369123816490e-01), c(1.90821492927058770002e-10)
        lowest, n_min, n_max = c(-708.3964), c(-1022.0), c(1023.0)
    log2e = c(1.4426950408889634)
    total = c(0.0)
    for j in range(values.size):
        x = values[j] - shift
        n = np.rint(x * log2e)
        r = _mul_add(-n, ln2_lo, _mul_add(-n, ln2_hi, x))
        # clamp written constant-first: max(lo, NaN) is lo, so the integer conversion never sees a NaN
        e = (_exp_remainder(r) * (r * r) + r + c(1.0)) * _pow2(min(n_max, max(n_min, n)))
        e = c(0.0) if x < lowest else e
        values[j] = e
        total += e
    return total


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _softmax_xent(logits, by, targets, grad_scale):
    """Row-wise softmax cross-entropy of (N, V) logits + by (V,), in place.

    targets (B, T) ids; the rows are time-major (row t·B + b is scored against targets[b, t]). Returns
    the summed loss in nats (float64). When grad_scale != 0 the logits are replaced by
    d(loss)/d(logits) * grad_scale, i.e. (p - onehot) * grad_scale; otherwise they are left as scratch.
    The max is subtracted before exponentiating, so no temperature or scale overflows.
    """
    N, V = logits.shape
    B, T = targets.shape
    total_loss = 0.0
    for t in range(T):
        for b in range(B):
            row = logits[t * B + b]
            top = row[0] + by[0]
            for j in range(V):  # the output bias rides along with the max: no separate pass over N·V
                v = row[j] + by[j]
                row[j] = v
                top = max(top, v)
            target = targets[b, t]
            # log p(target) = (logit - top) - log(total): no log of a rounded (maybe underflowed) probability
            shifted = float(row[target] - top)
            total = _exp_sum(row, top)
            total_loss += math.log(float(total)) - shifted
            if grad_scale != 0.0:
                scale = logits.dtype.type(grad_scale / float(total))
                for j in range(V):
                    row[j] *= scale
                row[target] -= grad_scale
    return total_loss


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _loss(x, y, Wx, Wu, Wh, bh, Wy, by, h0, hs, pre, logits, act):
    """Forward pass only: summed cross-entropy (nats) of y given x, carrying h0. No dropout.

    x, y (B, T) ids; h0 (L, B, H); hs (L, T, B, H) receives the hidden states (the final state is
    hs[:, T-1]); pre (T, B, H) and logits (T·B, V) are scratch.
    """
    empty = pre[:0].reshape((0, 1, 1, 1))
    top = _forward_layers(x, Wx, Wu, Wh, bh, h0, hs, pre, empty, empty, act)
    _gemm(top, Wy, logits, False, False, 0.0)  # + by inside the softmax
    return _softmax_xent(logits, by, y, 0.0)


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _loss_and_grads(
    x, y, Wx, Wu, Wh, bh, Wy, by, h0, hs, pre, logits, dh_above, dh_next, masks, dropped,
    dWx, dWu, dWh, dbh, dWy, dby, act, grad_scale,
):  # fmt: skip
    """Forward, then truncated backpropagation through time over the chunk.

    Shapes and scratch as in `_loss` and `_forward_layers` (dropout when masks is non-empty, already
    filled); dh_above (T, B, H) and dh_next (B, H) are scratch. d* arrays have the shape of their
    parameter and are overwritten with grad_scale times the gradient of the summed cross-entropy
    (grad_scale = 1/positions gives the gradient of the mean). The gradient stops at h0 (truncated
    BPTT). Returns the summed loss (nats).
    """
    B, T = x.shape
    L, _, _, H = hs.shape
    N = T * B
    dropout = masks.shape[0] > 0
    top = _forward_layers(x, Wx, Wu, Wh, bh, h0, hs, pre, masks, dropped, act)

    # Output layer for all N positions at once.
    _gemm(top, Wy, logits, False, False, 0.0)  # + by inside the softmax
    loss = _softmax_xent(logits, by, y, grad_scale)  # logits now hold dLoss/dlogits
    _gemm(top, logits, dWy, True, False, 0.0)
    dby[:] = 0.0
    for i in range(N):
        for v in range(logits.shape[1]):
            dby[v] += logits[i, v]
    _gemm(logits, Wy, dh_above.reshape((N, H)), False, True, 0.0)  # dLoss/dh of the layer being processed
    if dropout:
        _multiply(dh_above, masks[L - 1], dh_above)

    one, zero = hs.dtype.type(1.0), hs.dtype.type(0.0)
    dpre = pre  # the forward scratch is free now
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
        # Weight gradients for all positions at once: h_{t-1} is h0 at t = 0, hs[t-1] after.
        dpre_flat = dpre.reshape((N, H))
        _gemm(h0[layer], dpre[0], dWh[layer], True, False, 0.0)
        if T > 1:
            h_prev = h[: T - 1].reshape(((T - 1) * B, H))
            _gemm(h_prev, dpre[1:].reshape(((T - 1) * B, H)), dWh[layer], True, False, 1.0)
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
        else:
            dWx[:] = 0.0
            for t in range(T):
                for b in range(B):
                    row = dWx[x[b, t]]  # the row lookup's gradient is a scatter-add
                    for j in range(H):
                        row[j] += dpre[t, b, j]
    return loss


# ---- data parallelism: the batch is split into shards, one per core ----
#
# The B streams of a chunk are independent until the weight gradients are summed, so each shard (a
# contiguous block of streams) runs the whole forward and backward pass on one core, with
# single-threaded BLAS, and the per-shard gradients are summed in a fixed order afterwards. Compared
# with two BLAS threads per product, this needs no synchronisation per time step, so a core that is
# briefly busy elsewhere delays a chunk, not each of its 2·T·L small products. The shard count depends
# on the batch size and the machine, never on --threads, so 1 and 2 threads give bit-identical results.
# Each shard's scratch memory is carved from one preallocated row of `scratch`, so steady-state training
# allocates almost nothing (fresh multi-megabyte buffers cost page faults: ~15% of a step, measured).


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
    n_dropped = L if dropout else 0
    masks = buffer[offset : offset + n_masks * slab].reshape((n_masks, T, B, H))
    offset += n_masks * slab
    dropped = buffer[offset : offset + n_dropped * slab].reshape((n_dropped, T, B, H))
    return hs, pre, dh_above, logits, dh_next, masks, dropped


@njit(cache=True, fastmath=FAST, error_model="numpy", parallel=True)
def _loss_sharded(x, y, Wx, Wu, Wh, bh, Wy, by, h0, h_final, bounds, scratch, act):
    """`_loss` over shards of the batch in parallel. bounds (S+1,) shard row boundaries; scratch (S, n)
    rows of `scratch_size(..., dropout=False)`; h_final (L, B, H) receives the final state. Returns the
    summed loss (nats)."""
    S = bounds.size - 1
    L, _, H = h0.shape
    T = x.shape[1]
    V = Wy.shape[1]
    losses = np.zeros(S)
    for s in prange(S):
        lo, hi = bounds[s], bounds[s + 1]
        hs, pre, _, logits, _, _, _ = _carve_scratch(scratch[s], L, T, hi - lo, H, V, False)
        h0_shard = np.ascontiguousarray(h0[:, lo:hi])
        losses[s] = _loss(x[lo:hi], y[lo:hi], Wx, Wu, Wh, bh, Wy, by, h0_shard, hs, pre, logits, act)
        h_final[:, lo:hi] = hs[:, T - 1]
    return losses.sum()


@njit(cache=True, fastmath=FAST, error_model="numpy", parallel=True)
def _loss_and_grads_sharded(
    x, y, Wx, Wu, Wh, bh, Wy, by, h0, h_final, bounds, scratch, keep, seeds, gWx, gWu, gWh, gbh, gWy, gby, act
):  # fmt: skip
    """`_loss_and_grads` over shards in parallel; g* (S, ...) receive each shard's gradient of the mean
    loss over the whole batch, to be summed over S by the caller. Dropout when keep < 1, shard s drawing
    its masks from seeds[s] (so masks do not depend on the thread count). Returns the summed loss."""
    S = bounds.size - 1
    L, _, H = h0.shape
    B, T = x.shape
    V = Wy.shape[1]
    dropout = keep < 1.0
    losses = np.zeros(S)
    for s in prange(S):
        lo, hi = bounds[s], bounds[s + 1]
        hs, pre, dh_above, logits, dh_next, masks, dropped = _carve_scratch(scratch[s], L, T, hi - lo, H, V, dropout)
        if dropout:
            _dropout_masks(masks, keep, seeds[s : s + 1].copy())
        losses[s] = _loss_and_grads(
            x[lo:hi], y[lo:hi], Wx, Wu, Wh, bh, Wy, by, np.ascontiguousarray(h0[:, lo:hi]), hs, pre, logits,
            dh_above, dh_next, masks, dropped, gWx[s], gWu[s], gWh[s], gbh[s], gWy[s], gby[s], act, 1.0 / (B * T),
        )  # fmt: skip
        h_final[:, lo:hi] = hs[:, T - 1]
    return losses.sum()


def shard_bounds(batch_size: int) -> np.ndarray:
    """(S+1,) row boundaries splitting a batch into S near-equal shards, S = min(B, cores)."""
    shards = max(1, min(batch_size, available_threads()))
    return np.linspace(0, batch_size, shards + 1).round().astype(np.int64)


# ---- optimizers: elementwise updates over the flat parameter vector ----


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _global_norm(grad):
    """sqrt(sum(grad²)) accumulated in float64; NaN or inf if any gradient is non-finite."""
    total = 0.0
    for i in range(grad.size):
        total += float(grad[i]) * float(grad[i])
    return math.sqrt(total)


@njit(cache=True, fastmath=FAST, error_model="numpy")
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


@njit(cache=True, fastmath=FAST, error_model="numpy")
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


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _rmsprop_step(param, grad, cache, lr, decay, eps, weight_decay):
    """RMSprop (Tieleman & Hinton 2012), as in char-rnn: cache = decay·cache + (1-decay)·g²."""
    for i in range(param.size):
        g = grad[i] + weight_decay * param[i]
        cache[i] = decay * cache[i] + (1.0 - decay) * g * g
        param[i] -= lr * g / (math.sqrt(cache[i]) + eps)


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _adagrad_step(param, grad, cache, lr, eps, weight_decay):
    """Adagrad (Duchi et al. 2011), as in min-char-rnn: cache += g²."""
    for i in range(param.size):
        g = grad[i] + weight_decay * param[i]
        cache[i] += g * g
        param[i] -= lr * g / (math.sqrt(cache[i]) + eps)


@njit(cache=True, fastmath=FAST, error_model="numpy")
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


@njit(cache=True, fastmath=FAST, error_model="numpy")
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


@njit(cache=True, fastmath=FAST, error_model="numpy")
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


@njit(cache=True, fastmath=FAST, error_model="numpy")
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


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _matmul_rows(X, W, out):
    """out (K, N) = X (K, H) · W (H, N): `_vecmat` per row for few rows, BLAS for many."""
    if X.shape[0] < BLAS_MIN_ROWS:
        for k in range(X.shape[0]):
            _vecmat(X[k], W, out[k])
    else:
        _gemm(X, W, out, False, False, 0.0)


@njit(cache=True, fastmath=FAST, error_model="numpy")
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
        # the same sums in the same order as training's forward: f((input part + b) + h·Wh)
        _matmul_rows(h[0], Wh[0], tmp)
        for k in range(K):
            emb = Wx[out[k, step]]
            for j in range(H):
                pre[k, j] = emb[j] + bh[0, j]
        _activate_add(pre, tmp, act)
        h[0][:] = tmp
        for layer in range(1, L):
            _matmul_rows(h[layer - 1], Wu[layer - 1], pre)
            _matmul_rows(h[layer], Wh[layer], tmp)
            for k in range(K):
                for j in range(H):
                    pre[k, j] += bh[layer, j]
            _activate_add(pre, tmp, act)
            h[layer][:] = tmp
    return n


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
    A = top_ids.shape[1]
    pre = np.empty((T, 1, H), dtype=hs.dtype)
    empty = pre[:0].reshape((0, 1, 1, 1))
    top_hidden = _forward_layers(x, Wx, Wu, Wh, bh, h0, hs, pre, empty, empty, act)
    _gemm(top_hidden, Wy, logits, False, False, 0.0)
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
