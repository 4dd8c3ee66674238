"""Matrix products straight into numpy's own BLAS, one small-product path, thread control, shards.

`np.dot` inside @njit goes to scipy's bundled OpenBLAS; numpy's wheels bundle a newer OpenBLAS whose
sgemm is 1.3-1.9x faster on the small (32..64 x H)·(H x H) products of the recurrence (measured on
this Zen 4 machine). We call its CBLAS gemm directly: the symbol is registered with LLVM under a fixed
name at import, so compiled kernels stay cacheable (they refer to the name, not an address). Where
numpy has no bundled scipy-openblas (e.g. a conda MKL build), a compiled fallback with the same
signature serves the name through np.dot.
"""

import contextlib
import ctypes
from collections.abc import Iterator

import llvmlite.binding
import numba
import numpy as np
from numba import njit, types
from numba.extending import intrinsic, overload
from threadpoolctl import threadpool_info, threadpool_limits

from . import FAST

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


# The one small-product path. Below this many rows OpenBLAS forwards gemm to gemv kernels whose summation
# order depends on the operands' memory alignment: the same product could differ in the last bit between
# two calls (seen as a flaky seeded-sampling test), and its fixed cost per call (~45 µs for 2 <= rows < 16
# at H = 256) is more than the hand-written loop. So every product with few rows — the sampler's and the
# coder's single steps, one-stream scoring — runs this loop, with a fixed order.
SMALL_GEMM_ROWS = 16


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _small_gemm(a, b, c, trans_b, beta):
    """c = a·op(b) + beta·c for few rows of a (fixed summation order).

    Without transpose, four rows of b per pass over a row of c cut its loads and stores fourfold and the
    inner loop vectorises (CPU time, one row at H = 256: 3.2 µs vs 3.7 µs for gemv, 4.4 µs one row of b
    at a time)."""
    m, n = c.shape
    k = a.shape[1]
    for i in range(m):
        row = c[i]
        x = a[i]
        if trans_b:
            for j in range(n):
                total = row.dtype.type(0.0)
                for p in range(k):
                    total += x[p] * b[j, p]
                row[j] = total + (beta * row[j] if beta != 0.0 else 0.0)
            continue
        for j in range(n):
            row[j] = beta * row[j] if beta != 0.0 else 0.0
        p = 0
        while p + 4 <= k:
            x0, x1, x2, x3 = x[p], x[p + 1], x[p + 2], x[p + 3]
            r0, r1, r2, r3 = b[p], b[p + 1], b[p + 2], b[p + 3]
            for j in range(n):
                row[j] += x0 * r0[j] + x1 * r1[j] + x2 * r2[j] + x3 * r3[j]
            p += 4
        while p < k:
            xp, weights = x[p], b[p]
            for j in range(n):
                row[j] += xp * weights[j]
            p += 1


# The strict tree's product (kernels/strict.py): a fixed order for every shape and never BLAS, whose
# kernel and summation order depend on the CPU. Compiled without fastmath (the strict twin rebinds
# `_small_gemm` to its strict twin too). Every element is a plain sum in order of the inner index. a·b
# goes through `_small_gemm`; the transposed products, used only by the adaptive coder's gradient,
# avoid one serial chain at a time (a strict sum cannot be vectorised, so a lone chain runs at the
# adder's latency): aᵀ·b as rank-1 updates over rows of c, a·bᵀ eight elements of c at once (12 µs
# instead of 20 µs for one row against 256 x 256, float32).
@njit(cache=True, error_model="numpy")
def _fixed_gemm(a, b, c, trans_a, trans_b, beta):
    """c = op(a)·op(b) + beta·c for C-contiguous 2-D arrays in a fixed order (op transposes when trans_*)."""
    m, n = c.shape
    zero = c.dtype.type(0.0)
    if trans_a:  # c[i] += a[p, i]·op(b)[p] for p = 0, 1, ...
        k = a.shape[0]
        for i in range(m):
            for j in range(n):
                c[i, j] = beta * c[i, j] if beta != 0.0 else zero
        for p in range(k):
            for i in range(m):
                x = a[p, i]
                row = c[i]
                if trans_b:
                    for j in range(n):
                        row[j] += x * b[j, p]
                else:
                    weights = b[p]
                    for j in range(n):
                        row[j] += x * weights[j]
        return
    if not trans_b:
        _small_gemm(a, b, c, False, beta)
        return
    k = a.shape[1]
    for i in range(m):
        x = a[i]
        j = 0
        while j < n:
            width = min(8, n - j)
            s0, s1, s2, s3, s4, s5, s6, s7 = zero, zero, zero, zero, zero, zero, zero, zero
            if width == 8:
                r0, r1, r2, r3 = b[j], b[j + 1], b[j + 2], b[j + 3]
                r4, r5, r6, r7 = b[j + 4], b[j + 5], b[j + 6], b[j + 7]
                for p in range(k):
                    xp = x[p]
                    s0 += xp * r0[p]
                    s1 += xp * r1[p]
                    s2 += xp * r2[p]
                    s3 += xp * r3[p]
                    s4 += xp * r4[p]
                    s5 += xp * r5[p]
                    s6 += xp * r6[p]
                    s7 += xp * r7[p]
                sums = (s0, s1, s2, s3, s4, s5, s6, s7)
                for r in range(8):
                    c[i, j + r] = sums[r] + (beta * c[i, j + r] if beta != 0.0 else zero)
            else:
                for r in range(width):
                    total = zero
                    y = b[j + r]
                    for p in range(k):
                        total += x[p] * y[p]
                    c[i, j + r] = total + (beta * c[i, j + r] if beta != 0.0 else zero)
            j += width


# ---- threads and shards ----
#
# The B streams of a chunk are independent until the weight gradients are summed, so each shard (a
# contiguous block of streams) runs the whole forward and backward pass on one core, with
# single-threaded BLAS, and the per-shard gradients are summed in a fixed order afterwards. Compared
# with two BLAS threads per product, this needs no synchronisation per time step, so a core that is
# briefly busy elsewhere delays a chunk, not each of its 2·T·L small products. The shard count depends
# on the batch size and the machine, never on --threads, so 1 and 2 threads give bit-identical results.


def available_threads() -> int:
    """Threads numba may use (all cores unless NUMBA_NUM_THREADS says otherwise)."""
    return numba.config.NUMBA_NUM_THREADS


@contextlib.contextmanager
def thread_limit(threads: int) -> Iterator[None]:
    """Run parallel kernels on `threads` threads (0: all) inside the block, and BLAS single-threaded:
    parallelism comes from shards, and BLAS threads inside them would oversubscribe."""
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(threads or available_threads(), available_threads())))
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(previous)


def shard_bounds(batch_size: int) -> np.ndarray:
    """(S+1,) row boundaries splitting a batch into S near-equal shards, S = min(B, cores)."""
    shards = max(1, min(batch_size, available_threads()))
    return np.linspace(0, batch_size, shards + 1).round().astype(np.int64)
