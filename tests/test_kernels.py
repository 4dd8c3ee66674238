"""The Numba kernels against the NumPy reference (tests/reference.py) and against finite differences."""

import numpy as np
import pytest
import reference
from conftest import random_model

from charrnn import kernels
from charrnn.model import param_views

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
    loss, final = model.loss(inputs, targets, h0)
    ref_loss, ref_final = reference.loss(model.params, inputs, targets, h0, shape[-1])
    assert abs(loss - ref_loss) < 1e-12
    np.testing.assert_allclose(final, ref_final, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}-T{}-H{}-V{}-L{}-{}".format(*s))
def test_bptt_matches_reference(shape):
    model, inputs, targets, h0 = case(*shape)
    loss, grad, final = model.loss_and_grads(inputs, targets, h0)
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
    _, grad, _ = model.loss_and_grads(inputs, targets, h0)
    numeric = np.empty_like(model.flat)
    eps = 1e-6
    for i in range(model.flat.size):
        saved = model.flat[i]
        model.flat[i] = saved + eps
        plus = model.loss(inputs, targets, h0)[0]
        model.flat[i] = saved - eps
        minus = model.loss(inputs, targets, h0)[0]
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
    loss64, grad64, _ = model64.loss_and_grads(inputs, targets, h0)
    loss32, grad32, _ = model32.loss_and_grads(inputs, targets, h0.astype(np.float32))
    assert abs(loss32 - loss64) < 1e-5
    assert np.linalg.norm(grad32 - grad64) / np.linalg.norm(grad64) < 1e-4


def test_tanh_approximation_error():
    x = np.linspace(-12, 12, 200001).astype(np.float32)
    out = np.empty_like(x)
    kernels._activate(x, out, kernels.ACT_TANH)
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
                kernels._adam_step(ours, grad, slots[0], slots[1], 0.01, 0.9, 0.999, 1e-8, step, 0.0)
            elif name == "rmsprop":
                kernels._rmsprop_step(ours, grad, slots[0], 0.01, 0.95, 1e-8, 0.0)
            elif name == "adagrad":
                kernels._adagrad_step(ours, grad, slots[0], 0.01, 1e-8, 0.0)
            else:
                kernels._sgd_step(ours, grad, slots[0], 0.01, 0.9, 0.0)
            ref_param = reference.optimizer_step(name, ref_param, grad, ref_slots, 0.01, step)
        np.testing.assert_allclose(ours, ref_param, rtol=1e-12, atol=1e-14, err_msg=name)


def test_clipping():
    grad = np.array([3.0, 4.0])
    norm = kernels._global_norm(grad)
    assert norm == 5.0
    kernels._clip(grad, 1.0, 0.0, norm)
    np.testing.assert_allclose(grad, [0.6, 0.8])
    grad = np.array([3.0, -4.0])
    kernels._clip(grad, 0.0, 3.5, 5.0)
    np.testing.assert_allclose(grad, [3.0, -3.5])
    assert not np.isfinite(kernels._global_norm(np.array([1.0, np.nan])))
