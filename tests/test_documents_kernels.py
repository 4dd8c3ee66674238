"""Documents through the shared kernels: per-position weights in the head and document resets in the
recurrence (kernels/heads.py, kernels/rnn.py, kernels/lm.py) against their NumPy twins, float64 central
differences, and the defining property: a packed batch's loss and gradients are the sums over its
documents, each scored alone from a zero state."""

import numpy as np
import pytest
import reference
from conftest import random_model

from charrnn import kernels
from charrnn.model import param_views
from charrnn.workspace import Workspace

ACT = {"tanh": kernels.ACT_TANH_EXACT, "relu": kernels.ACT_RELU}


def masked_case(batch, time, hidden, vocab, layers, activation, seed=0):
    """Random ids, a non-zero carried state, random document starts and some zero-weight positions."""
    model = random_model(vocab, hidden, layers, activation, "float64", seed=seed)
    rng = np.random.default_rng(seed + 1)
    inputs, targets = rng.integers(0, vocab, (batch, time)), rng.integers(0, vocab, (batch, time))
    h0 = rng.standard_normal((layers, batch, hidden)) * 0.5
    resets = (rng.random((batch, time)) < 0.3).astype(np.uint8)
    resets[0, 0] = 1  # a reset at t = 0 must ignore h0
    weights = (rng.random((batch, time)) < 0.8).astype(np.float64)
    weights[0, -1] = 1.0  # at least one real position
    return model, inputs, targets, h0, weights, resets


SHAPES = [(3, 6, 5, 4, 1, "tanh"), (2, 7, 6, 5, 2, "relu"), (4, 5, 4, 3, 3, "tanh"), (1, 1, 3, 2, 1, "tanh")]


@pytest.mark.parametrize("kind", ["tanh", "relu"])
def test_layer_step_with_resets_matches_twin(kind):
    rng = np.random.default_rng(1)
    pre, h_prev, Wh = rng.standard_normal((5, 4)), rng.standard_normal((5, 4)), rng.standard_normal((4, 4))
    reset = np.array([1, 0, 0, 1, 0], dtype=np.uint8)
    out = np.empty((5, 4))
    kernels.rnn._layer_step(pre, Wh, h_prev, out, ACT[kind], reset)
    np.testing.assert_allclose(out, reference.layer_step(pre, Wh, h_prev, kind, reset), atol=1e-13)
    np.testing.assert_allclose(out[0], reference.activation(pre[0], kind), atol=1e-13)  # as from a zero state


def test_softmax_xent_with_weights_matches_twin():
    rng = np.random.default_rng(2)
    B, T, V = 3, 4, 6
    logits, by, targets = rng.standard_normal((T * B, V)), rng.standard_normal(V), rng.integers(0, V, (B, T))
    weights = rng.random((B, T)) * (rng.random((B, T)) < 0.7)
    want_loss, want_grad = reference.softmax_xent(logits, by, targets, weights)
    got = logits.copy()
    assert abs(kernels.heads._softmax_xent(got, by, targets, 1.0, weights) - want_loss) < 1e-12
    np.testing.assert_allclose(got, want_grad, atol=1e-12)
    scratch = logits.copy()
    assert abs(kernels.heads._softmax_xent(scratch, by, targets, 0.0, weights) - want_loss) < 1e-12


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}-T{}-H{}-V{}-L{}-{}".format(*s))
def test_masked_loss_and_bptt_match_twins(shape):
    model, inputs, targets, h0, weights, resets = masked_case(*shape)
    loss, final = Workspace(model).loss(inputs, targets, h0, weights, resets)
    ref_loss, ref_final = reference.loss(model.params, inputs, targets, h0, shape[-1], weights, resets)
    assert abs(loss - ref_loss) < 1e-12
    np.testing.assert_allclose(final, ref_final, atol=1e-12)
    loss2, grad, _ = Workspace(model).loss_and_grads(inputs, targets, h0, weights=weights, resets=resets)
    assert abs(loss2 - ref_loss) < 1e-12
    ref = reference.grads(model.params, inputs, targets, h0, shape[-1], weights, resets)
    for name, value in param_views(grad, model.config).items():
        assert np.abs(value - ref[name]).max(initial=0.0) < 1e-10, name


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_masked_bptt_matches_finite_differences(layers, activation):
    """The gradient of the weighted mean with document resets, every parameter, against float64 central
    differences of the loss: relative error <= 1e-6."""
    model, inputs, targets, h0, weights, resets = masked_case(3, 6, 5, 4, layers, activation, seed=4)
    _, grad, _ = Workspace(model).loss_and_grads(inputs, targets, h0, weights=weights, resets=resets)
    numeric, eps = np.empty_like(model.flat), 1e-6
    for i in range(model.flat.size):
        saved = model.flat[i]
        model.flat[i] = saved + eps
        plus = Workspace(model).loss(inputs, targets, h0, weights, resets)[0]
        model.flat[i] = saved - eps
        minus = Workspace(model).loss(inputs, targets, h0, weights, resets)[0]
        model.flat[i] = saved
        numeric[i] = (plus - minus) / (2 * eps)
    for name, a in param_views(grad, model.config).items():
        n = param_views(numeric, model.config)[name]
        if a.size:
            relative = np.linalg.norm(a - n) / max(np.linalg.norm(a), np.linalg.norm(n), 1e-300)
            assert relative <= 1e-6, f"{name}: relative error {relative:.3e}"


def pack(documents, rows, width, end):
    """Documents laid out in `rows` rows of `width` positions, each as inputs [end, d...] and targets
    [d..., end], one after another, padding (weight 0) after the last; random junk in the padding."""
    rng = np.random.default_rng(5)
    x, y = rng.integers(0, end + 1, (rows, width)), rng.integers(0, end + 1, (rows, width))
    weights, resets = np.zeros((rows, width)), np.zeros((rows, width), np.uint8)
    fill = [0] * rows
    for k, doc in enumerate(documents):
        r, n = k % rows, len(doc) + 1
        s = fill[r]
        x[r, s : s + n], y[r, s : s + n] = [end, *doc], [*doc, end]
        weights[r, s : s + n], resets[r, s] = 1.0, 1
        fill[r] = s + n
    assert max(fill) <= width
    return x, y, weights, resets


@pytest.mark.parametrize("layers", [1, 2])
def test_packed_batch_equals_the_sum_of_its_documents_alone(layers):
    """Summed loss and summed-loss gradients of a packed, padded batch (any carried state, which every
    row's first document ignores) equal the sums over its documents, each a batch of its own from a zero
    state: no state, loss or gradient crosses a document boundary. float64, 1e-10."""
    V, H = 6, 5
    end = V - 1
    model = random_model(V, H, layers, "tanh", "float64", seed=6)
    rng = np.random.default_rng(7)
    documents = [rng.integers(0, end, n).tolist() for n in (0, 1, 3, 5, 2, 7, 4, 1, 6)]
    x, y, weights, resets = pack(documents, rows=3, width=20, end=end)
    h0 = rng.standard_normal((layers, 3, H))
    count = weights.sum()
    loss, grad, _ = Workspace(model).loss_and_grads(x, y, h0, weights=weights, resets=resets)
    total_loss, total_grad = 0.0, np.zeros_like(grad)
    for doc in documents:
        inputs, targets = np.array([[end, *doc]]), np.array([[*doc, end]])
        n = inputs.size
        one_loss, one_grad, _ = Workspace(model).loss_and_grads(inputs, targets, model.initial_state(1))
        total_loss += one_loss * n
        total_grad += one_grad * n
    assert abs(loss * count - total_loss) < 1e-10
    np.testing.assert_allclose(grad * count, total_grad, rtol=0, atol=1e-10)


def test_all_ones_weights_and_no_resets_equal_the_stream_path():
    model, inputs, targets, h0, _, _ = masked_case(3, 5, 6, 4, 2, "tanh", seed=8)
    plain = Workspace(model).loss_and_grads(inputs, targets, h0)
    ones, zeros = np.ones(inputs.shape), np.zeros(inputs.shape, np.uint8)
    masked = Workspace(model).loss_and_grads(inputs, targets, h0, weights=ones, resets=zeros)
    assert abs(plain[0] - masked[0]) < 1e-14
    np.testing.assert_allclose(plain[1], masked[1], atol=1e-14)
    np.testing.assert_allclose(plain[2], masked[2], atol=1e-14)


def test_dropout_with_documents_is_deterministic_and_finite():
    model, inputs, targets, h0, weights, resets = masked_case(4, 6, 5, 4, 2, "tanh", seed=9)
    a = Workspace(model).loss_and_grads(inputs, targets, h0, dropout=0.3, dropout_seed=3, weights=weights,
                                        resets=resets)  # fmt: skip
    b = Workspace(model).loss_and_grads(inputs, targets, h0, dropout=0.3, dropout_seed=3, weights=weights,
                                        resets=resets)  # fmt: skip
    assert a[0] == b[0] and np.array_equal(a[1], b[1]) and np.isfinite(a[1]).all()
