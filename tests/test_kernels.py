"""The Numba kernels against the NumPy reference (tests/reference.py) and against finite differences."""

import numpy as np
import pytest
import reference
from conftest import random_model

from charrnn import kernels
from charrnn.model import param_views
from charrnn.workspace import Workspace

# (batch, time, hidden, vocab, layers, activation); the degenerate shapes T=1, B=1, V=2 included
SHAPES = [
    (3, 4, 7, 5, 1, "tanh"),
    (3, 4, 7, 5, 1, "relu"),
    (2, 5, 6, 4, 2, "tanh"),
    (2, 5, 6, 4, 2, "relu"),
    (1, 1, 3, 2, 1, "tanh"),
    (1, 6, 4, 2, 3, "tanh"),
    (4, 1, 5, 3, 2, "relu"),
]


def case(batch, time, hidden, vocab, layers, activation, dtype="float64", seed=0):
    model = random_model(vocab, hidden, layers, activation, dtype, seed=seed)
    rng = np.random.default_rng(seed + 1)
    inputs = rng.integers(0, vocab, (batch, time))
    targets = rng.integers(0, vocab, (batch, time))
    h0 = (rng.standard_normal((layers, batch, hidden)) * 0.5).astype(dtype)  # a non-zero carried state
    return model, inputs, targets, h0


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}-T{}-H{}-V{}-L{}-{}".format(*s))
def test_loss_matches_reference(shape):
    model, inputs, targets, h0 = case(*shape)
    loss, final = Workspace(model).loss(inputs, targets, h0)
    ref_loss, ref_final = reference.loss(model.params, inputs, targets, h0, shape[-1])
    assert abs(loss - ref_loss) < 1e-12
    np.testing.assert_allclose(final, ref_final, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}-T{}-H{}-V{}-L{}-{}".format(*s))
def test_bptt_matches_reference(shape):
    model, inputs, targets, h0 = case(*shape)
    loss, grad, final = Workspace(model).loss_and_grads(inputs, targets, h0)
    ref = reference.grads(model.params, inputs, targets, h0, shape[-1])
    for name, value in param_views(grad, model.config).items():
        difference = np.abs(value - ref[name]).max(initial=0.0)
        assert difference < 1e-10, f"{name}: max difference {difference:.3e}"
    assert abs(loss - reference.loss(model.params, inputs, targets, h0, shape[-1])[0]) < 1e-12


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_bptt_matches_finite_differences(layers, activation):
    """Every parameter's gradient against float64 central differences: relative error <= 1e-6."""
    model, inputs, targets, h0 = case(3, 5, 6, 5, layers, activation, seed=3)
    _, grad, _ = Workspace(model).loss_and_grads(inputs, targets, h0)
    numeric = np.empty_like(model.flat)
    eps = 1e-6
    for i in range(model.flat.size):
        saved = model.flat[i]
        model.flat[i] = saved + eps
        plus = Workspace(model).loss(inputs, targets, h0)[0]
        model.flat[i] = saved - eps
        minus = Workspace(model).loss(inputs, targets, h0)[0]
        model.flat[i] = saved
        numeric[i] = (plus - minus) / (2 * eps)
    analytic_views, numeric_views = param_views(grad, model.config), param_views(numeric, model.config)
    for name in analytic_views:
        a, n = analytic_views[name], numeric_views[name]
        if a.size == 0:
            continue
        relative = np.linalg.norm(a - n) / max(np.linalg.norm(a), np.linalg.norm(n), 1e-300)
        assert relative <= 1e-6, f"{name}: relative error {relative:.3e}"


def test_float32_matches_float64():
    """The float32 path (vectorised tanh approximation) tracks the exact float64 computation."""
    model64, inputs, targets, h0 = case(4, 16, 32, 6, 2, "tanh", seed=5)
    model32 = type(model64)(model64.config.__class__(6, 32, 2, "tanh", "float32"), model64.vocab,
                            model64.flat.astype(np.float32))  # fmt: skip
    loss64, grad64, _ = Workspace(model64).loss_and_grads(inputs, targets, h0)
    loss32, grad32, _ = Workspace(model32).loss_and_grads(inputs, targets, h0.astype(np.float32))
    assert abs(loss32 - loss64) < 1e-5
    assert np.linalg.norm(grad32 - grad64) / np.linalg.norm(grad64) < 1e-4


def test_tanh_approximation_error():
    x = np.linspace(-12, 12, 200001).astype(np.float32)
    out = np.zeros_like(x)
    kernels.elementwise._activate_add(x, out, kernels.ACT_TANH)
    assert np.abs(out.astype(np.float64) - np.tanh(x.astype(np.float64))).max() < 5e-7
    assert np.all(np.abs(out) <= 1.0)


def test_optimizers_match_reference():
    rng = np.random.default_rng(0)
    param, grad = rng.standard_normal(50), rng.standard_normal(50)
    for name, state_count in (("adam", 2), ("rmsprop", 1), ("adagrad", 1), ("sgd", 1)):
        ours, slots = param.copy(), [np.zeros(50) for _ in range(state_count)]
        ref_param, ref_slots = param.copy(), [np.zeros(50) for _ in range(state_count)]
        for step in range(1, 4):
            if name == "adam":
                kernels.optim._adam_step(ours, grad, slots[0], slots[1], 0.01, 0.9, 0.999, 1e-8, step, 0.0)
            elif name == "rmsprop":
                kernels.optim._rmsprop_step(ours, grad, slots[0], 0.01, 0.95, 1e-8, 0.0)
            elif name == "adagrad":
                kernels.optim._adagrad_step(ours, grad, slots[0], 0.01, 1e-8, 0.0)
            else:
                kernels.optim._sgd_step(ours, grad, slots[0], 0.01, 0.9, 0.0)
            ref_param = reference.optimizer_step(name, ref_param, grad, ref_slots, 0.01, step)
        np.testing.assert_allclose(ours, ref_param, rtol=1e-12, atol=1e-14, err_msg=name)


def test_clipping():
    grad = np.array([3.0, 4.0])
    norm = kernels.optim._global_norm(grad)
    assert norm == 5.0
    kernels.optim._clip(grad, 1.0, 0.0, norm)
    np.testing.assert_allclose(grad, [0.6, 0.8])
    grad = np.array([3.0, -4.0])
    kernels.optim._clip(grad, 0.0, 3.5, 5.0)
    np.testing.assert_allclose(grad, [3.0, -3.5])
    assert not np.isfinite(kernels.optim._global_norm(np.array([1.0, np.nan])))


@pytest.mark.parametrize("layers", [1, 2])
def test_dropout_gradient_matches_finite_differences(layers):
    """With the masks fixed by the seed, the loss is a smooth function of the weights: check its gradient."""
    model, inputs, targets, h0 = case(4, 5, 6, 5, layers, "tanh", seed=11)
    loss, grad, _ = Workspace(model).loss_and_grads(inputs, targets, h0, dropout=0.3, dropout_seed=5)
    no_dropout = Workspace(model).loss_and_grads(inputs, targets, h0)[0]
    assert loss != no_dropout
    numeric = np.empty_like(model.flat)
    eps = 1e-6
    for i in range(model.flat.size):
        saved = model.flat[i]
        model.flat[i] = saved + eps
        plus = Workspace(model).loss_and_grads(inputs, targets, h0, dropout=0.3, dropout_seed=5)[0]
        model.flat[i] = saved - eps
        minus = Workspace(model).loss_and_grads(inputs, targets, h0, dropout=0.3, dropout_seed=5)[0]
        model.flat[i] = saved
        numeric[i] = (plus - minus) / (2 * eps)
    for name, a in param_views(grad, model.config).items():
        n = param_views(numeric, model.config)[name]
        if a.size:
            relative = np.linalg.norm(a - n) / max(np.linalg.norm(a), np.linalg.norm(n), 1e-300)
            assert relative <= 1e-6, f"{name}: relative error {relative:.3e}"


def test_dropout_keeps_the_expected_fraction():
    masks = np.empty((4, 50, 20, 10))
    kernels.elementwise._dropout_masks(masks, 0.7, np.array([12345], dtype=np.uint64))
    assert set(np.unique(masks)) == {0.0, 1 / 0.7}
    assert abs((masks > 0).mean() - 0.7) < 0.01


def test_one_and_two_threads_are_bit_identical():
    model, inputs, targets, h0 = case(6, 7, 16, 5, 2, "tanh", dtype="float32", seed=2)
    results = []
    for threads in (1, 2):
        with kernels.blas.thread_limit(threads):
            loss, grad, final = Workspace(model).loss_and_grads(inputs, targets, h0, dropout=0.1, dropout_seed=3)
            results.append((loss, grad.copy(), final))
    assert results[0][0] == results[1][0]
    assert np.array_equal(results[0][1], results[1][1]) and np.array_equal(results[0][2], results[1][2])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fallback_gemm_matches_numpy(dtype):
    """The compiled stand-in used where numpy bundles no OpenBLAS, called through its C signature."""
    import ctypes

    from numba import types

    real, c_real = (types.float32, ctypes.c_float) if dtype == "float32" else (types.float64, ctypes.c_double)
    i32, i64, ptr = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p
    signature = ctypes.CFUNCTYPE(None, i32, i32, i32, i64, i64, i64, c_real, ptr, i64, ptr, i64, c_real, ptr, i64)
    gemm = signature(kernels.blas._fallback_gemm(real))
    rng = np.random.default_rng(0)
    for trans_a in (False, True):
        for trans_b in (False, True):
            a = rng.random((3, 4) if trans_a else (4, 3)).astype(dtype)
            b = rng.random((5, 3) if trans_b else (3, 5)).astype(dtype)
            c = rng.random((4, 5)).astype(dtype)
            expected = (a.T if trans_a else a) @ (b.T if trans_b else b) + 0.5 * c
            gemm(101, 112 if trans_a else 111, 112 if trans_b else 111, 4, 5, 3, 1.0, a.ctypes.data, a.shape[1],
                 b.ctypes.data, b.shape[1], 0.5, c.ctypes.data, 5)  # fmt: skip
            np.testing.assert_allclose(c, expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_exp_sum_matches_numpy(dtype):
    """The vectorised exp of the softmax: within 2 ulp of the exact value down to the smallest normal
    number, 0 below it, NaN kept; the returned sum matches."""
    info = np.finfo(dtype)
    lowest = np.log(info.tiny)
    x = np.concatenate([np.linspace(1.2 * lowest, 0.0, 400001), -np.logspace(-30, 1, 1001), [0.0, -np.inf]])
    x = x.astype(dtype)
    values = x.copy()
    total = kernels.elementwise._exp_sum(values, x.dtype.type(0.0))
    exact = np.exp(x.astype(np.longdouble))
    normal = exact >= info.tiny * 1.001
    relative = np.abs(values[normal] - exact[normal]) / exact[normal]
    assert relative.max() < 2 * info.eps, relative.max()
    assert np.all(values[exact < info.tiny * 0.999] == 0.0)
    assert abs(total - exact.sum()) <= (1e-6 if dtype == "float32" else 1e-14) * exact.sum()
    shifted = np.array([3.0, 1.0, np.nan, 2.5], dtype=dtype)  # the shift is subtracted first; NaN survives
    kernels.elementwise._exp_sum(shifted, shifted.dtype.type(3.0))
    assert np.isnan(shifted[2]) and shifted[0] == 1.0
    np.testing.assert_allclose(shifted[[1, 3]], np.exp([-2.0, -0.5]), rtol=2 * info.eps)
