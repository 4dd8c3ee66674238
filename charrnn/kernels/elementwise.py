"""Elementwise kernels: the activations, a vectorisable exp, dropout masks.

Each runs over flat contiguous memory and writes in place: LLVM vectorises a loop only when it can
prove its output does not overlap its inputs, and a separate output that aliases an input (as the
recurrence would want) fails that check at run time and falls back to the scalar loop.
"""

import math

import llvmlite.ir
import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from . import ACT_RELU, ACT_TANH_EXACT, FAST


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


# The strict tree's stand-ins (kernels/strict.py) for the two callees above that fastmath or the CPU
# would otherwise decide: llvm.fmuladd is fused on a CPU with FMA and rounded twice on one without, so
# the strict exp rounds twice everywhere (without 'reassoc' the two-constant reduction survives as
# written: n·ln2_hi is exact, so only the n·ln2_lo step rounds); and the remainder polynomial is the same
# generator registered without fastmath (not cached on its own: a cached overload is keyed by its
# closure, which it would share with the fastmath one; its strict callers are cached with it inside).


@njit(cache=True, error_model="numpy")
def _mul_add_rounded(a, b, c):
    """a·b + c with two roundings, on every CPU (compiled without fastmath, so never contracted)."""
    return a * b + c


def _exp_remainder_rounded(r):
    """`_exp_remainder` compiled without fastmath."""


overload(_exp_remainder_rounded, jit_options={"error_model": "numpy"})(_exp_remainder_overload)


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
