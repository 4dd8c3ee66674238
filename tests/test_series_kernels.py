"""The series kernels (kernels/series.py: dense input → shared layer stack → regression head) against the
NumPy twins in tests/reference.py and against float64 central differences, through their wrappers."""

import numpy as np
import pytest
import reference

from charrnn.series import build_model
from charrnn.series.model import param_views
from charrnn.series.workspace import SeriesWorkspace

# (batch, time, dimensionality, units, outputs K, dense head, every step): the degenerate B=1, T=1, a
# 1-unit layer, several stacks (a width change: the dense input between stacks), K > 1, no head.
CASES = [
    (3, 4, 1, (5,), 1, True, False),
    (2, 5, 2, (4, 4), 3, True, False),
    (1, 1, 1, (3,), 1, True, False),
    (4, 6, 1, (1,), 1, False, False),
    (3, 5, 1, (4, 4, 1), 1, False, False),
    (2, 4, 3, (3, 6), 2, True, False),
    (3, 5, 1, (4, 4), 2, True, True),
    (2, 3, 1, (5, 2), 2, False, True),
    (1, 6, 1, (2, 3, 3), 1, True, True),
]
IDS = ["B{}-T{}-D{}-{}-K{}-{}-{}".format(B, T, D, "x".join(map(str, u)), K, "dense" if d else "nohead",
                                          "every" if e else "last") for B, T, D, u, K, d, e in CASES]  # fmt: skip


def case(B, T, D, units, K, dense, every, activation="tanh", dtype="float64", seed=0):
    """A model with random (not initial) weights and random data, so every gradient path is exercised."""
    model = build_model(units, K, dense, every, D, activation, dtype, seed)
    rng = np.random.default_rng(seed + 1)
    model.flat[:] = rng.standard_normal(model.flat.size) * 0.6
    X = rng.standard_normal((B, T, D))
    y = rng.standard_normal((B, T, K) if every else (B, K))
    return model, X, y


def loss_and_grads(model, X, y):
    workspace = SeriesWorkspace(model)
    grad = np.empty_like(model.flat)
    Y = np.ascontiguousarray(y.reshape(len(X), -1, model.config.outputs), dtype=model.dtype)
    loss = workspace.loss_and_grads(np.ascontiguousarray(X, dtype=model.dtype), Y, grad)
    return loss, grad


@pytest.mark.parametrize("shape", CASES, ids=IDS)
def test_series_loss_and_grads_match_reference(shape):
    model, X, y = case(*shape)
    units, dense, every = shape[3], shape[5], shape[6]
    loss, grad = loss_and_grads(model, X, y)
    assert abs(loss - reference.series_loss(model.params, units, X, y, "tanh", dense, every)) < 1e-12
    expected = reference.series_grads(model.params, units, X, y, "tanh", dense, every)
    for name, value in param_views(grad, model.config).items():
        difference = np.abs(value - expected[name]).max(initial=0.0)
        assert difference < 1e-10, f"{name}: max difference {difference:.3e}"


@pytest.mark.parametrize("shape", CASES, ids=IDS)
def test_series_predict_matches_reference(shape):
    model, X, _ = case(*shape)
    expected = reference.series_outputs(model.params, shape[3], X, "tanh", shape[5], shape[6])
    np.testing.assert_allclose(model.predict(X), expected, rtol=0, atol=1e-12)


UNIVARIATE = [(c, i) for c, i in zip(CASES, IDS, strict=True) if c[2] == 1]


@pytest.mark.parametrize("shape", [c for c, _ in UNIVARIATE], ids=[i for _, i in UNIVARIATE])
@pytest.mark.parametrize("steps", [1, 5])
def test_forecast_equals_rerunning_the_grown_series(shape, steps):
    """The iterated forecast carries the state with `_stack_step`; the twin re-runs the whole series grown
    by each round's predictions: the same numbers."""
    model, X, _ = case(*shape)
    expected = reference.series_forecast(model.params, shape[3], X, "tanh", shape[5], shape[6], steps)
    np.testing.assert_allclose(model.forecast(X, steps), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "shape",
    [
        (3, 5, 1, (4,), 1, True, False),  # sequence to vector, one output
        (2, 4, 2, (3, 3), 3, True, False),  # K outputs, two layers in one stack (Wu)
        (3, 4, 1, (4, 4), 2, True, True),  # every step
        (2, 5, 1, (3, 1), 1, False, False),  # no head; a width change: dense input between stacks
        (2, 4, 1, (4, 2), 2, False, True),  # no head, every step, two stacks
    ],
    ids=["last", "k-outputs", "every-step", "no-head", "no-head-every-step"],
)
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_series_grads_match_finite_differences(shape, activation):
    """Every parameter's gradient against float64 central differences: relative error <= 1e-6."""
    model, X, y = case(*shape, activation=activation, seed=3)
    _, grad = loss_and_grads(model, X, y)
    numeric = np.empty_like(model.flat)
    eps = 1e-6
    for i in range(model.flat.size):
        saved = model.flat[i]
        model.flat[i] = saved + eps
        plus = loss_and_grads(model, X, y)[0]
        model.flat[i] = saved - eps
        minus = loss_and_grads(model, X, y)[0]
        model.flat[i] = saved
        numeric[i] = (plus - minus) / (2 * eps)
    for name, value in param_views(grad, model.config).items():
        expected = param_views(numeric, model.config)[name]
        error = np.abs(value - expected).max(initial=0.0) / max(np.abs(expected).max(initial=0.0), 1e-8)
        assert error < 1e-6, f"{name}: relative error {error:.2e}"


def test_batched_predictions_equal_one_series_at_a_time():
    model, X, _ = case(9, 7, 1, (4, 4), 2, True, False)
    together = model.predict(X)
    alone = np.concatenate([model.predict(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-13)


def test_float32_matches_float64():
    model64, X, y = case(4, 8, 1, (6, 6), 2, True, False)
    model32 = build_model((6, 6), 2, dtype="float32")
    model32.flat[:] = model64.flat
    loss64, grad64 = loss_and_grads(model64, X, y)
    loss32, grad32 = loss_and_grads(model32, X, y)
    assert abs(loss32 - loss64) < 1e-5 * max(1.0, loss64)
    np.testing.assert_allclose(grad32, grad64, rtol=0, atol=1e-4 * np.abs(grad64).max())


def test_one_and_two_threads_train_bit_identically():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((70, 12, 1)) * 0.5, rng.standard_normal((70, 1)) * 0.5
    weights = []
    for threads in (1, 2):
        model = build_model((5, 5), seed=1)
        model.fit(X, y, epochs=2, batch_size=32, threads=threads, verbose=False)
        weights.append(model.flat.copy())
    assert weights[0].tobytes() == weights[1].tobytes()
