"""The coding kernels (kernels/coding.py) and the strict twins (kernels/strict.py) against their NumPy
twins in tests/reference.py, and the strictness of the compiled coder itself (no fast-math flag, no FMA).

(Kernel-level tests: with tests/test_kernels.py and tests/test_kernels_sampling.py, the only files that
import `_` kernels.)
"""

import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest
import reference
from tiny_models import random_model

from charrnn import kernels
from charrnn.kernels import coding
from charrnn.kernels.strict import strict


def encode_symbols(symbols):
    rc = np.array(coding.ENCODER_START, np.int64)
    out = np.zeros(16 + 4 * len(symbols), np.uint8)
    for cum, freq, total in symbols:
        coding._encode(rc, out, cum, freq, total)
    if symbols:
        coding._flush(rc, out)
    return out[: max(int(rc[4]), 0)].tobytes()


def decode_symbols(data, tables):
    """Decode one symbol from each of `tables` (lists of frequencies); returns (symbols, decoder state)."""
    buffer = np.frombuffer(data, np.uint8)
    rd = np.zeros(4, np.int64)
    coding._start_decoder(buffer, rd)
    decoded = []
    for freqs in tables:
        total = sum(freqs)
        target, r = coding._decode_target(rd, total)
        symbol, cum = 0, 0
        while target >= cum + freqs[symbol]:
            cum += freqs[symbol]
            symbol += 1
        coding._decode_update(rd, buffer, r, cum, freqs[symbol], total)
        decoded.append(symbol)
    return decoded, rd


def random_tables(rng, count, skew):
    """(tables, chosen symbols): totals from 2 to 2^24 (and the code-point table), symbols drawn from
    each table's own distribution, or (skew) mostly the last symbol near the top of the range, which makes
    long runs of 0xFF bytes and carries through them."""
    tables, chosen = [], []
    for _ in range(count):
        kind = rng.integers(3)
        if kind == 0:
            freqs = [int(f) for f in rng.integers(1, 50, rng.integers(2, 9))]
        elif kind == 1:
            weights = rng.dirichlet(np.full(65, 0.1))
            freqs = [int(f) for f in 1 + np.floor(weights * (coding.TOTAL - 65))]
            freqs[-1] += coding.TOTAL - sum(freqs)
        else:
            freqs = [1] * 7 + [coding.CODE_POINTS - 7]
        if skew:
            symbol = len(freqs) - 1 if rng.random() < 0.9 else int(rng.integers(len(freqs)))
        else:
            symbol = int(rng.choice(len(freqs), p=np.array(freqs) / sum(freqs)))
        tables.append(freqs)
        chosen.append(symbol)
    return tables, chosen


@pytest.mark.parametrize("skew", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_range_coder_matches_reference_and_decodes(seed, skew):
    rng = np.random.default_rng(seed)
    tables, chosen = random_tables(rng, 3000, skew)
    symbols = [(sum(t[:s]), t[s], sum(t)) for t, s in zip(tables, chosen, strict=True)]
    data = encode_symbols(symbols)
    assert data == reference.range_encode(symbols)
    decoded, rd = decode_symbols(data, tables)
    assert decoded == chosen
    assert rd[3] == 0 and rd[2] == len(data) + coding.CODER_BYTES - 1  # read exactly 6 bytes past the end


def test_range_coder_carries_through_ff_runs():
    """A stream that is mostly 0xFF bytes: every carry has to travel back through the pending run."""
    top = [1, coding.TOTAL - 2, 1]
    symbols = [(1, top[1], coding.TOTAL)] * 40 + [(coding.TOTAL - 1, 1, coding.TOTAL)] * 30
    symbols = symbols * 20 + [(0, 1, coding.TOTAL)] + symbols
    data = encode_symbols(symbols)
    assert data == reference.range_encode(symbols)
    assert data.count(b"\xff\xff\xff") > 10
    decoded, rd = decode_symbols(data, [top] * len(symbols))
    assert decoded == [{1: 1, coding.TOTAL - 1: 2, 0: 0}[cum] for cum, _, _ in symbols]


def test_decoder_flags_a_code_outside_the_interval():
    """Every byte string decodes to some symbols (damage is caught by the file's checksum), except a code
    that no encoder can write (here the window's all-ones value): flagged, and the arithmetic stays in range."""
    decoded, rd = decode_symbols(b"\xff" * 20, [[1, 2, 3]] * 10)
    assert rd[3] == 1
    _, rd = decode_symbols(encode_symbols([(1, 2, 6)] * 10), [[1, 2, 3]] * 10)
    assert rd[3] == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_frequencies_match_reference(dtype):
    model = random_model(hidden=12, seed=5, dtype=dtype)
    p, V = model.params, model.config.vocab_size
    rng = np.random.default_rng(0)
    for escape in (1, 1000, coding.ESCAPE_CAP):
        h = rng.standard_normal((1, 12)).astype(dtype)
        freq = np.empty(V + 1, np.int64)
        coding._frequencies(h, p["Wy"], p["by"], np.empty((1, V), dtype), freq, escape)
        twin = reference.frequencies(p, h[0].astype(np.float64), escape)
        assert freq.sum() == coding.TOTAL and freq.min() >= 1 and freq[V] == escape
        # the exps agree to an ulp or so: a floor may land one unit apart, and the remainder moves with it
        assert np.abs(freq - twin).max() <= (2 if dtype == "float64" else 200), np.abs(freq - twin).max()


def test_escape_frequency_matches_reference():
    for escapes, coded in [(0, 0), (0, 10**9), (1, 0), (1, 9), (3, 1000), (10**6, 10**6), (5, 5)]:
        counters = np.array([coded, escapes, 0, 0], np.int64)
        assert coding._escape_frequency(counters) == reference.escape_frequency(escapes, coded)


def test_frequencies_of_a_diverged_model_are_uniform():
    model = random_model(hidden=6, seed=1)
    p, V = model.params, model.config.vocab_size
    Wy = p["Wy"].copy()
    Wy[0, 2] = np.nan
    freq = np.empty(V + 1, np.int64)
    coding._frequencies(np.ones((1, 6)), Wy, p["by"], np.empty((1, V)), freq, 7)
    assert freq.sum() == coding.TOTAL and freq[V] == 7 and freq[1:V].max() - freq[1:V].min() == 0


@pytest.mark.parametrize(("trans_a", "trans_b"), [(False, False), (False, True), (True, False), (True, True)])
@pytest.mark.parametrize("inner", [1, 8, 13, 35])
def test_fixed_gemm_matches_numpy(trans_a, trans_b, inner):
    rng = np.random.default_rng(inner)
    a = rng.standard_normal((inner, 5) if trans_a else (5, inner))
    b = rng.standard_normal((6, inner) if trans_b else (inner, 6))
    start = rng.standard_normal((5, 6))
    for beta in (0.0, 0.5):
        c = start.copy()
        kernels.blas._fixed_gemm(a, b, c, trans_a, trans_b, beta)
        want = (a.T if trans_a else a) @ (b.T if trans_b else b) + beta * start
        np.testing.assert_allclose(c, want, atol=1e-12)
        twin = start.copy()  # the strict twin (whose _small_gemm is strict too: not bit-equal to the above)
        strict(kernels.blas._fixed_gemm)(a, b, twin, trans_a, trans_b, beta)
        np.testing.assert_allclose(twin, want, atol=1e-12)


@pytest.mark.parametrize(("layers", "activation"), [(1, "tanh"), (2, "relu"), (3, "tanh")])
def test_strict_step_matches_reference(layers, activation):
    """The strict twin of the sampler's step is the same recurrence: float64 against NumPy to 1e-12, and
    float32 against the fastmath step to float32 rounding."""
    act = {"tanh": kernels.ACT_TANH_EXACT, "relu": kernels.ACT_RELU}[activation]
    model = random_model(layers=layers, activation=activation, seed=layers)
    p, H = model.params, model.config.hidden_size
    h = np.random.default_rng(0).standard_normal((layers, 1, H)) * 0.5
    want = reference.step(p, h, np.array([3]), activation)
    pre = p["Wx"][[3]].copy()
    strict(kernels.rnn._stack_step)(pre, p["Wu"], p["Wh"], p["bh"], h, np.empty((1, H)), act)
    np.testing.assert_allclose(h, want, atol=1e-12)

    model32 = random_model(layers=layers, activation=activation, seed=layers, dtype="float32")
    q = model32.params
    states = [np.random.default_rng(0).standard_normal((layers, 1, H)).astype(np.float32) * 0.5 for _ in range(2)]
    act32 = kernels.ACT_TANH if activation == "tanh" else kernels.ACT_RELU
    for step, state in zip((kernels.rnn._stack_step, strict(kernels.rnn._stack_step)), states, strict=True):
        step(q["Wx"][[3]].copy(), q["Wu"], q["Wh"], q["bh"], state, np.empty((1, H), np.float32), act32)
    np.testing.assert_allclose(states[1], states[0], atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_strict_exp_sum_matches_numpy(dtype):
    """The strict exp (two roundings where the fast one may fuse) keeps the fast one's accuracy."""
    info = np.finfo(dtype)
    x = np.concatenate([np.linspace(1.2 * np.log(info.tiny), 0.0, 100001), -np.logspace(-30, 1, 1001)]).astype(dtype)
    values = x.copy()
    total = strict(kernels.elementwise._exp_sum)(values, x.dtype.type(0.0))
    exact = np.exp(x.astype(np.longdouble))
    normal = exact >= info.tiny * 1.001
    assert (np.abs(values[normal] - exact[normal]) / exact[normal]).max() < 2 * info.eps
    assert np.all(values[exact < info.tiny * 0.999] == 0.0)
    assert abs(total - exact.sum()) <= (1e-6 if dtype == "float32" else 1e-14) * exact.sum()


@pytest.mark.parametrize(("scale", "clipped"), [(0.1, False), (2.0, True)])
def test_learn_is_one_sgd_step_on_the_reference_gradient(scale, clipped):
    """Adaptive coding's update: after window + 1 characters, the weights move by -lr times the (clipped)
    gradient of the mean cross-entropy of characters 2..W+1 given 1..W, from the state before the first."""
    from charrnn.codec import Adaptation
    from charrnn.codec.coder import _State
    from charrnn.model import param_views

    model = random_model(hidden=6, layers=2, seed=3, scale=scale)
    window, lr = 4, 0.05
    state = _State(model, Adaptation(lr, window))
    _, _, learner = state.adapt
    flat = learner[0]
    before = flat.copy()
    ids = [1, 3, 0, 4, 2]
    h0 = np.random.default_rng(4).standard_normal((2, 1, 6)) * 0.5
    for k, char in enumerate(ids):
        h = h0.copy() if k == 0 else np.zeros_like(h0)  # only the window's first state matters
        coding._learn(char, *state.weights, h, kernels.ACT_TANH_EXACT, state.counters, window, lr, learner)
        assert np.array_equal(flat, before) == (k < window)
    grads = reference.grads(param_views(before.copy(), model.config), np.array([ids[:-1]]), np.array([ids[1:]]),
                            h0, "tanh")  # fmt: skip
    flat_grad = np.concatenate([grads[name].ravel() for name in model.config.param_shapes()])
    assert (np.linalg.norm(flat_grad) > coding.ADAPT_CLIP) == clipped
    flat_grad *= min(1.0, coding.ADAPT_CLIP / np.linalg.norm(flat_grad))
    np.testing.assert_allclose(flat, before - lr * flat_grad, atol=1e-12)
    assert not np.array_equal(model.flat, flat)  # a copy learns, not the caller's model


def _plain_python(x):
    return x + 1


def test_strict_refuses_what_it_cannot_make_strict():
    @numba.njit
    def calls_python(x):
        return _plain_python(x)

    with pytest.raises(TypeError, match="_plain_python"):
        strict(calls_python)

    @numba.njit(parallel=True)
    def parallel(x):
        return x.sum()

    with pytest.raises(TypeError, match="parallel"):
        strict(parallel)
    assert strict(kernels.rnn._stack_step) is strict(kernels.rnn._stack_step)  # one twin per kernel


INSPECT = textwrap.dedent(
    """
    import re, sys, numpy as np
    sys.path.insert(0, {tests!r})
    from tiny_models import random_model
    from charrnn import kernels
    from charrnn.codec import coder
    from charrnn.kernels import coding
    model = random_model("abc", hidden=8, layers=2, dtype="float32")
    state = coder._State(model)
    rc = np.array(coding.ENCODER_START, np.int64)
    out = np.zeros(64, np.uint8)
    coding._encode_block(np.array([0, 1, -100]), *state.weights, state.h, state.act, state.counters, state.oov,
                         state.oov_counts, rc, out, *state.scratch, *state.adapt)
    coding._flush(rc, out)
    data = out[: rc[4]].copy()
    state = coder._State(model)
    rd = np.zeros(4, np.int64)
    coding._start_decoder(data, rd)
    coding._decode_block(data, np.zeros(3, np.int64), *state.weights, state.h, state.act, state.counters, state.oov,
                         state.oov_counts, rd, *state.scratch, *state.adapt)
    for kernel in (coding._encode_block, coding._decode_block):
        ir = "".join(kernel.inspect_llvm().values())
        asm = "".join(kernel.inspect_asm().values())
        assert "define" in ir and len(ir) > 100000, "the linked module was not inspected"
        op = r"= (?:fadd|fsub|fmul|fdiv|frem|fneg|fcmp|call|select|phi)\\s+"
        flags = re.findall(op + r"((?:fast|reassoc|contract|afn|arcp|nsz|nnan|ninf)\\b)", ir)
        assert not flags, ("fast-math flags", sorted(set(flags)))
        assert "llvm.fmuladd" not in ir and "llvm.fma." not in ir, "a fused multiply-add intrinsic"
        assert not re.search(r"\\bv?f(n)?m(add|sub)\\d", asm), "an FMA instruction"
    print("strict")
    """
)


def test_the_compiled_coder_is_strict(tmp_path):
    """Compile the coder afresh (an empty numba cache, so the machine code can be inspected) and check the
    whole linked module: no fast-math flag on any instruction, no fused multiply-add in IR or machine code."""
    tests = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    result = subprocess.run([sys.executable, "-c", INSPECT.format(tests=tests)], capture_output=True, text=True,
                            env=env, timeout=600)  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip() == "strict", result.stderr[-3000:]
