"""Every compiled kernel has a NumPy twin (tests/reference.py `TWINS`), and the kernels of the layer stack,
the inputs and the heads agree with theirs one by one. Model-level agreement (loss, BPTT, finite
differences) is in tests/test_kernels.py; sampling and scoring kernels in tests/test_kernels_sampling.py."""

import importlib

import numba
import numpy as np
import pytest
import reference
from tiny_models import random_model

from charrnn import kernels
from charrnn.batch import score_sequences
from charrnn.score import score_text

ACT = {"tanh": kernels.ACT_TANH_EXACT, "relu": kernels.ACT_RELU}


def compiled_kernels() -> set[str]:
    names = set()
    for module_name in kernels._MODULES:
        module = importlib.import_module(f"charrnn.kernels.{module_name}")
        for name, obj in vars(module).items():
            if isinstance(obj, numba.core.dispatcher.Dispatcher) and obj.py_func.__module__ == module.__name__:
                names.add(f"{module_name}.{name}")
    return names


def test_every_compiled_kernel_has_a_twin():
    missing = sorted(compiled_kernels() - set(reference.TWINS))
    assert not missing, f"compiled kernels without a NumPy twin in tests/reference.py TWINS: {missing}"
    assert "rnn._layer_step" in compiled_kernels()  # the enumeration itself finds kernels


def test_the_recurrence_and_the_log_normaliser_exist_once():
    """Only rnn.py calls the activation of the recurrence, and only heads.py calls the exp of the softmax."""
    import inspect

    for module_name in kernels._MODULES:
        source = inspect.getsource(importlib.import_module(f"charrnn.kernels.{module_name}"))
        if module_name not in ("rnn", "elementwise"):
            assert "_activate_add(" not in source, f"{module_name} runs its own recurrence"
        if module_name not in ("heads", "elementwise"):
            assert "_exp_sum(" not in source and "math.exp(" not in source, f"{module_name} normalises itself"


@pytest.mark.parametrize("kind", ["tanh", "relu"])
def test_layer_step_and_stack_step(kind):
    rng = np.random.default_rng(1)
    model = random_model(layers=3, activation=kind, seed=2)
    p, H = model.params, model.config.hidden_size
    pre, h_prev, out = rng.standard_normal((4, H)), rng.standard_normal((4, H)), np.empty((4, H))
    kernels.rnn._layer_step(pre, p["Wh"][0], h_prev, out, ACT[kind])
    np.testing.assert_allclose(out, reference.layer_step(pre, p["Wh"][0], h_prev, kind), atol=1e-12)
    ids = rng.integers(0, model.config.vocab_size, 4)
    h = rng.standard_normal((3, 4, H)) * 0.5
    want = reference.step(p, h.copy(), ids, kind)
    pre = p["Wx"][ids].copy()
    kernels.rnn._stack_step(pre, p["Wu"], p["Wh"], p["bh"], h, np.empty((4, H)), ACT[kind])
    np.testing.assert_allclose(h, want, atol=1e-12)


def test_add_bias():
    rng = np.random.default_rng(3)
    pre, b = rng.standard_normal((3, 2, 5)), rng.standard_normal(5)
    want = pre + b
    kernels.rnn._add_bias(pre, b)
    np.testing.assert_allclose(pre, want, atol=1e-15)


def test_lookup_and_its_gradient():
    rng = np.random.default_rng(4)
    W, x = rng.standard_normal((6, 5)), rng.integers(0, 6, (3, 4))
    out = np.empty((4, 3, 5))
    kernels.inputs._lookup(x, W, out)
    np.testing.assert_array_equal(out, reference.lookup(x, W))
    dpre, dW = rng.standard_normal((4, 3, 5)), np.full((6, 5), 7.0)  # stale contents must be overwritten
    kernels.inputs._lookup_grad(x, dpre, dW)
    np.testing.assert_allclose(dW, reference.lookup_grad(x, dpre, 6), atol=1e-12)


@pytest.mark.parametrize("rows", [(1, 2), (4, 8)])  # (T, B): the small-product path and BLAS
def test_dense_input_and_its_gradients(rows):
    rng = np.random.default_rng(5)
    T, B = rows
    X, W = rng.standard_normal((T, B, 3)), rng.standard_normal((3, 5))
    out = np.empty((T, B, 5))
    kernels.inputs._dense(X, W, out)
    np.testing.assert_allclose(out, reference.dense(X, W), atol=1e-12)
    dpre, dW, dX = rng.standard_normal((T, B, 5)), np.empty((3, 5)), np.empty((T, B, 3))
    kernels.inputs._dense_grad(X, dpre, dW)
    kernels.inputs._dense_input_grad(dpre, W, dX)
    np.testing.assert_allclose(dW, reference.dense_grad(X, dpre), atol=1e-12)
    np.testing.assert_allclose(dX, reference.dense_input_grad(dpre, W), atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bias_max_and_log_normaliser(dtype):
    rng = np.random.default_rng(6)
    row, by = (rng.standard_normal(9) * 5).astype(dtype), rng.standard_normal(9).astype(dtype)
    want = reference.log_softmax(row.astype(np.float64) + by)
    top = kernels.heads._bias_max(row, by)
    assert top == row.max()
    logits = row.copy()
    log_total, total = kernels.heads._log_normaliser(row, row.dtype.type(top))
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose((logits - top) - log_total, want, atol=tolerance)
    np.testing.assert_allclose(row / total, np.exp(want), atol=tolerance)


def test_softmax_xent_and_projection_gradient():
    rng = np.random.default_rng(7)
    B, T, V, H = 3, 4, 6, 5
    logits, by, targets = rng.standard_normal((T * B, V)), rng.standard_normal(V), rng.integers(0, V, (B, T))
    want_loss, want_grad = reference.softmax_xent(logits, by, targets)
    got = logits.copy()
    assert abs(kernels.heads._softmax_xent(got, by, targets, 1.0) - want_loss) < 1e-12
    np.testing.assert_allclose(got, want_grad, atol=1e-12)
    top, Wy = rng.standard_normal((T * B, H)), rng.standard_normal((H, V))
    dWy, dby, dtop = np.empty((H, V)), np.empty(V), np.empty((T * B, H))
    kernels.heads._softmax_grad_projection(top, got, Wy, dWy, dby, dtop)
    for mine, theirs in zip((dWy, dby, dtop), reference.softmax_grad_projection(top, want_grad, Wy), strict=True):
        np.testing.assert_allclose(mine, theirs, atol=1e-12)


def test_carve_scratch_views_tile_the_row_without_overlap():
    L, T, B, H, V = 2, 3, 4, 5, 6
    size = kernels.lm.scratch_size(L, T, B, H, V, True)
    buffer = np.zeros(size)
    views = kernels.lm._carve_scratch(buffer, L, T, B, H, V, True)
    assert [v.shape for v in views] == [(L, T, B, H), (T, B, H), (T, B, H), (T * B, V), (B, H), (L, T, B, H),
                                         (L, T, B, H)]  # fmt: skip
    for index, view in enumerate(views):
        view[...] = index + 1
    assert sorted(np.unique(buffer).tolist()) == list(range(1, 8))  # every view wrote its own cells
    assert sum(v.size for v in views) == size


@pytest.mark.parametrize("layers", [1, 2])
def test_score_rows_matches_each_sequence_scored_alone(layers):
    model = random_model(layers=layers, seed=8)
    rng = np.random.default_rng(9)
    sequences = [rng.integers(0, model.config.vocab_size, n) for n in (0, 1, 2, 5, 17, 40, 3, 40)]
    got = score_sequences(model, sequences, batch_rows=5, chunk_len=6)
    want = reference.score_rows(model.params, [s for s in sequences], "tanh")
    for mine, theirs, ids in zip(got, want, sequences, strict=True):
        assert mine.shape == (max(ids.size - 1, 0),)
        np.testing.assert_allclose(mine, theirs, atol=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_score_equals_the_sum_of_the_sampler_steps(dtype):
    """`score` of a text equals the sum of the per-step log-probabilities that the sampler's step function
    (`rnn._stack_step` + the one log-normaliser) gives on the same text from the same zero state: the
    property the compressor relies on. Equal to float32 rounding (the chunk's upper-layer products run in
    BLAS, the step's in the small-product loop)."""
    model = random_model(layers=2, hidden=24, dtype=dtype, seed=10)
    ids = np.random.default_rng(11).integers(0, model.config.vocab_size, 300)
    text = model.vocab.decode(ids)
    chunked = score_text(model, text).log_probs
    stepped = np.empty(ids.size - 1)
    h = model.initial_state(1)
    p = model.params
    kernels.scoring._score_steps(ids[:-1].copy(), ids[1:].copy(), p["Wx"], p["Wu"], p["Wh"], p["bh"], p["Wy"],
                                 p["by"], h, stepped, model.config.activation_code)  # fmt: skip
    tolerance = 2e-5 if dtype == "float32" else 1e-11
    np.testing.assert_allclose(stepped, chunked, rtol=tolerance, atol=tolerance)
    assert abs(stepped.sum() - chunked.sum()) <= tolerance * abs(chunked.sum())
    np.testing.assert_allclose(h, model.hidden_states(ids[:-1], model.initial_state(1))[:, -1], atol=tolerance)
