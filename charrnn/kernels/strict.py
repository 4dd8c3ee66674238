"""Strict twins: the same kernels, compiled so that every machine computes the same bits.

Arithmetic coding needs the encoder and the decoder to derive bit-identical integer frequencies from
the model, possibly on different CPUs (vector widths, FMA or not) and with other thread counts. The FAST kernels
cannot promise that: 'contract' lets LLVM fuse a·b + c into one FMA where the CPU has it (one rounding
instead of two), 'reassoc' lets it vectorise a sum in an order that depends on the vector width (AVX2 vs
AVX-512), 'afn' allows approximate functions, and BLAS picks its kernel (and summation order) by CPU.

`strict(kernel)` gives the twin of a compiled kernel: its own Python function (`py_func`, the ONE source
of its arithmetic) re-bound to the strict twins of every compiled function it calls, recursively, and
compiled with numba's defaults: IEEE semantics, no fast-math flag on any instruction (numba compiles
each callee with its own flags, which is why the whole call tree is rebuilt, not just the top). What is
left is deterministic by IEEE 754: +, -, ·, / and sqrt are correctly rounded, loops that LLVM
vectorises without 'reassoc' do the same operations per lane in the same order, and no reduction is
reordered. Three callees are not plain kernels and are swapped for strict stand-ins:

    blas._gemm               -> blas._fixed_gemm (a fixed-order loop for every shape; never BLAS)
    elementwise._mul_add     -> elementwise._mul_add_rounded (llvm.fmuladd is fused or not by CPU)
    elementwise._exp_remainder -> elementwise._exp_remainder_rounded (the same generator, no fastmath)

Callers must also avoid what no compile flag fixes: libm (math.log, math.exp, math.tanh differ between
C libraries; the coder needs no log, and codes tanh models with the rational tanh, ACT_TANH), threads
(the strict kernels are serial) and flush-to-zero (a process flag; codec checks it). A global that is
neither a kernel, a stand-in nor a known-safe helper makes `strict` refuse, so a later edit cannot slip a
fastmath callee into the strict tree unnoticed.

Each twin is cached under its own name (`<name>__strict`): numba keys a cache by the function's
qualified name and bytecode, not its compile flags, so a twin with the original's name would load the
fastmath machine code. (As for every numba cache, a change to a callee in another file does not
invalidate its callers' cached code: after editing this module or a stand-in, clear the __pycache__.)
"""

import types

from numba import njit
from numba.core.dispatcher import Dispatcher
from numba.core.extending import _Intrinsic

from . import blas, elementwise

STRICT_OPTIONS = {"cache": True, "error_model": "numpy"}  # no fastmath: numba's IEEE default

_STAND_INS = {
    blas._gemm: blas._fixed_gemm,
    elementwise._mul_add: elementwise._mul_add_rounded,
    elementwise._exp_remainder: elementwise._exp_remainder_rounded,
}
_SAFE_INTRINSICS = (elementwise._pow2,)  # integer bit manipulation only
_twins: dict[object, Dispatcher] = {}


def strict(kernel: Dispatcher) -> Dispatcher:
    """The strict twin of a compiled kernel (memoised: one twin per kernel per process)."""
    if kernel in _twins:
        return _twins[kernel]
    if not isinstance(kernel, Dispatcher):
        raise TypeError(f"strict() takes a compiled kernel, got {kernel!r}")
    if kernel.targetoptions.get("parallel"):
        raise TypeError(f"{kernel.py_func.__qualname__} is parallel: a strict kernel runs on one thread")
    source = kernel.py_func
    bound = dict(source.__globals__)
    for name in source.__code__.co_names:
        if name not in bound:
            continue  # an attribute name (.shape, .reshape), not a global
        value = bound[name]
        if _is_hashable(value) and value in _STAND_INS:
            replacement = _STAND_INS[value]
            bound[name] = strict(replacement) if isinstance(replacement, Dispatcher) else replacement
        elif isinstance(value, Dispatcher):
            bound[name] = strict(value)
        elif isinstance(value, _Intrinsic) and value not in _SAFE_INTRINSICS:
            raise TypeError(f"{source.__qualname__} calls intrinsic {name}, which has no strict stand-in")
        elif isinstance(value, types.FunctionType):
            raise TypeError(f"{source.__qualname__} calls {name}, which has no strict stand-in")
    twin = types.FunctionType(source.__code__, bound, source.__name__, source.__defaults__, source.__closure__)
    twin.__qualname__ = f"{source.__qualname__}__strict"
    twin.__doc__ = source.__doc__
    compiled = njit(**STRICT_OPTIONS)(twin)
    _twins[kernel] = compiled
    return compiled


def _is_hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
