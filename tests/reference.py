"""Slow, obviously-correct NumPy twins of the kernels, used only by tests.

Plain loops over time, dense one-hot inputs and textbook formulas: nothing clever, so a disagreement
with a kernel means the kernel is wrong.
"""

import numpy as np


def activation(pre, kind):
    return np.maximum(pre, 0.0) if kind == "relu" else np.tanh(pre)


def forward(params, inputs, h0, kind, resets=None):
    """inputs (B, T) ids; h0 (L, B, H). Returns hidden states as a list per layer of (B, T, H).
    resets (B, T): where set, that row's previous state is taken as zero (a document starts)."""
    Wx, Wu, Wh, bh = params["Wx"], params["Wu"], params["Wh"], params["bh"]
    B, T = inputs.shape
    V = Wx.shape[0]
    one_hot = np.eye(V)[inputs]  # (B, T, V): the dense form the kernels avoid
    layer_input = one_hot
    layers = []
    for layer in range(Wh.shape[0]):
        W_in = Wx if layer == 0 else Wu[layer - 1]
        h = h0[layer]
        states = []
        for t in range(T):
            if resets is not None:
                h = np.where(resets[:, t, None] > 0, 0.0, h)
            h = activation(layer_input[:, t] @ W_in + h @ Wh[layer] + bh[layer], kind)
            states.append(h)
        layer_input = np.stack(states, axis=1)
        layers.append(layer_input)
    return layers


def loss(params, inputs, targets, h0, kind, weights=None, resets=None):
    """Mean cross-entropy in nats (weighted by weights (B, T) when given), and the final state (L, B, H)."""
    layers = forward(params, inputs, h0, kind, resets)
    logits = layers[-1] @ params["Wy"] + params["by"]  # (B, T, V)
    logits = logits - logits.max(axis=-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    final = np.stack([layer[:, -1] for layer in layers])
    if weights is None:
        return -picked.mean(), final
    return -(weights * picked).sum() / weights.sum(), final


def grads(params, inputs, targets, h0, kind, weights=None, resets=None):
    """Backpropagation written step by step over time, in float64 (weighted mean when weights (B, T) are
    given; a row's state is cut to zero, and its gradient stopped, where resets (B, T) is set)."""
    layers = forward(params, inputs, h0, kind, resets)
    B, T = inputs.shape
    N = B * T if weights is None else weights.sum()
    weights = np.ones((B, T)) if weights is None else weights
    resets = np.zeros((B, T)) if resets is None else resets
    top = layers[-1]
    logits = top @ params["Wy"] + params["by"]
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    dlogits = probs.copy()
    for b in range(B):
        for t in range(T):
            dlogits[b, t, targets[b, t]] -= 1.0
    dlogits *= weights[..., None] / N
    out = {name: np.zeros_like(value) for name, value in params.items()}
    out["Wy"] = np.einsum("bth,btv->hv", top, dlogits)
    out["by"] = dlogits.sum(axis=(0, 1))
    dh_from_above = dlogits @ params["Wy"].T  # (B, T, H)
    V = params["Wx"].shape[0]
    one_hot = np.eye(V)[inputs]
    for layer in reversed(range(params["Wh"].shape[0])):
        h = layers[layer]
        below = one_hot if layer == 0 else layers[layer - 1]
        W_in = params["Wx"] if layer == 0 else params["Wu"][layer - 1]
        d_below = np.zeros_like(below)
        dh_next = np.zeros_like(h0[layer])
        for t in reversed(range(T)):
            dh = dh_from_above[:, t] + dh_next
            dpre = dh * (h[:, t] > 0) if kind == "relu" else dh * (1 - h[:, t] ** 2)
            h_prev = h0[layer] if t == 0 else h[:, t - 1]
            h_prev = np.where(resets[:, t, None] > 0, 0.0, h_prev)
            out["Wh"][layer] += h_prev.T @ dpre
            out["bh"][layer] += dpre.sum(axis=0)
            grad_in = below[:, t].T @ dpre
            if layer == 0:
                out["Wx"] += grad_in
            else:
                out["Wu"][layer - 1] += grad_in
            d_below[:, t] = dpre @ W_in.T
            dh_next = np.where(resets[:, t, None] > 0, 0.0, dpre @ params["Wh"][layer].T)
        dh_from_above = d_below
    return out


def optimizer_step(name, param, grad, slots, lr, step):
    """Textbook optimizer updates (no weight decay), returning the new parameters."""
    if name == "adam":
        m, v = slots
        m[:] = 0.9 * m + 0.1 * grad
        v[:] = 0.999 * v + 0.001 * grad**2
        m_hat, v_hat = m / (1 - 0.9**step), v / (1 - 0.999**step)
        return param - lr * m_hat / (np.sqrt(v_hat) + 1e-8)
    if name == "rmsprop":
        slots[0][:] = 0.95 * slots[0] + 0.05 * grad**2
        return param - lr * grad / (np.sqrt(slots[0]) + 1e-8)
    if name == "adagrad":
        slots[0][:] += grad**2
        return param - lr * grad / (np.sqrt(slots[0]) + 1e-8)
    slots[0][:] = 0.9 * slots[0] + grad
    return param - lr * slots[0]


# ---- sampling and scoring ----

MASK64 = (1 << 64) - 1


def rotl(x, k):
    """Rotate a 64-bit integer left by k bits."""
    return ((x << k) | (x >> (64 - k))) & MASK64


def next_uniform(state):
    """xoshiro256** (https://prng.di.unimi.it/xoshiro256starstar.c) on a list of 4 Python ints, advanced in
    place: a float in [0, 1) from the top 53 bits."""
    s0, s1, s2, s3 = state
    result = (rotl((s1 * 5) & MASK64, 7) * 9) & MASK64
    t = (s1 << 17) & MASK64
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = rotl(s3, 45)
    state[:] = [s0, s1, s2, s3]
    return (result >> 11) / 2.0**53


def rank(probs):
    """Ids by probability, highest first; ties: lower id first."""
    return sorted(range(len(probs)), key=lambda v: (-probs[v], v))


def draw(row, temperature, top_k, top_p, greedy, state):
    """The next id from logits row (V,), as (id, log q, log p): q the filtered, renormalised sampling
    distribution, p = softmax(row). Inverse CDF over the kept ids in rank order (all ids in id order when
    nothing is filtered)."""
    row = np.asarray(row, dtype=np.float64)
    log_p = row - row.max() - np.log(np.exp(row - row.max()).sum())
    if greedy:
        best = int(np.argmax(row))
        return best, 0.0, float(log_p[best])
    weights = np.exp((row - row.max()) / temperature)
    V = len(row)
    if (0 < top_k < V) or top_p < 1.0:
        order = rank(weights)
        keep = order[:top_k] if 0 < top_k < V else order
        if top_p < 1.0:
            cumulative = np.cumsum(weights[keep])
            keep = keep[: int(np.searchsorted(cumulative, top_p * cumulative[-1])) + 1]
    else:
        keep = list(range(V))
    mass = weights[keep]
    u = next_uniform(state) * mass.sum()
    position = min(int(np.searchsorted(np.cumsum(mass), u, side="right")), len(keep) - 1)
    pick = keep[position]
    return pick, float(np.log(weights[pick] / mass.sum())), float(log_p[pick])


def gemm(a, b, c, trans_b, beta):
    """a·op(b) + beta·c."""
    return a @ (b.T if trans_b else b) + beta * c


def step(params, h, ids, kind):
    """One recurrence step of every layer for ids (K,), from h (L, K, H); returns the new state."""
    new = []
    for layer in range(params["Wh"].shape[0]):
        from_below = params["Wx"][ids] if layer == 0 else new[-1] @ params["Wu"][layer - 1]
        new.append(activation(from_below + h[layer] @ params["Wh"][layer] + params["bh"][layer], kind))
    return np.stack(new)


def sample_block(params, h, kind, n, temperature, top_k, top_p, greedy, states, stop_ids):
    """K samples of up to n ids from state h (L, K, H), one Python step at a time. states: K lists of 4 ints.
    Returns (ids per sample, log q per sample, log p per sample, final state); a sample ends after stop_ids."""
    K = h.shape[1]
    out, log_q, log_p = [[] for _ in range(K)], np.zeros(K), np.zeros(K)
    done = [False] * K
    for _ in range(n):
        if all(done):
            break
        logits = h[-1] @ params["Wy"] + params["by"]
        picks = np.zeros(K, dtype=np.int64)
        for k in range(K):
            if done[k]:
                continue
            picks[k], q, p = draw(logits[k], temperature, top_k, top_p, greedy, states[k])
            out[k].append(int(picks[k]))
            log_q[k] += q
            log_p[k] += p
            if len(stop_ids) and out[k][-len(stop_ids) :] == list(stop_ids):
                done[k] = True
        h = step(params, h, picks, kind)
    return out, log_q, log_p, h


def score_chunk(params, ids, h0, kind, top):
    """log p(ids[t+1] | ids[:t+1]) for t < len(ids) - 1 from state h0 (L, 1, H), and the `top` most likely
    next ids (logit order, ties to the lower id) with their log-probabilities."""
    layers = forward(params, np.asarray(ids)[None, :-1], h0, kind)
    logits = layers[-1][0] @ params["Wy"] + params["by"]  # (T, V)
    log_probs = logits - logits.max(axis=1, keepdims=True)
    log_probs -= np.log(np.exp(log_probs).sum(axis=1, keepdims=True))
    picked = log_probs[np.arange(len(ids) - 1), np.asarray(ids)[1:]]
    top_ids = np.array([rank(row)[:top] for row in logits], dtype=np.int64).reshape(len(ids) - 1, top)
    return picked, top_ids, np.take_along_axis(log_probs, top_ids, axis=1)


# ---- the layer-stack pieces, one twin per kernel (tests/test_kernel_twins.py) ----


def layer_step(pre, Wh, h_prev, kind, reset=None):
    """h = f(pre + h_prev·Wh) for one layer and one step; rows with reset (B,) set use h_prev = 0."""
    if reset is not None:
        h_prev = np.where(reset[:, None] > 0, 0.0, h_prev)
    return activation(pre + h_prev @ Wh, kind)


def lookup(x, W):
    """(T, B, H) rows of W at the ids x (B, T), time-major: the one-hot product written out densely."""
    return np.transpose(np.eye(W.shape[0])[x] @ W, (1, 0, 2))


def lookup_grad(x, dpre, V):
    """Gradient of `lookup` with respect to W (V, H): one-hotᵀ · dpre."""
    one_hot = np.transpose(np.eye(V)[x], (1, 0, 2))  # (T, B, V)
    return np.einsum("tbv,tbh->vh", one_hot, dpre)


def dense(X, W):
    return X @ W


def dense_grad(X, dpre):
    return np.einsum("tbd,tbh->dh", X, dpre)


def dense_input_grad(dpre, W):
    return dpre @ W.T


def log_softmax(row):
    """log softmax of one row of logits, max-shifted."""
    shifted = row - row.max()
    return shifted - np.log(np.exp(shifted).sum())


def softmax_xent(logits, by, targets, weights=None):
    """(summed loss, gradient (N, V)) of time-major rows logits + by against targets (B, T), each position
    weighted by weights (B, T) when given."""
    B, T = targets.shape
    z = logits + by
    flat_targets = targets.T.reshape(-1)  # row t·B + b is scored against targets[b, t]
    flat_weights = np.ones(B * T) if weights is None else weights.T.reshape(-1)
    log_probs = np.array([log_softmax(row) for row in z])
    grad = np.exp(log_probs)
    grad[np.arange(B * T), flat_targets] -= 1.0
    grad *= flat_weights[:, None]
    return -(flat_weights * log_probs[np.arange(B * T), flat_targets]).sum(), grad


def softmax_grad_projection(top, dlogits, Wy):
    """(dWy, dby, dtop) of logits = top·Wy + by given dlogits."""
    return top.T @ dlogits, dlogits.sum(axis=0), dlogits @ Wy.T


def score_rows(params, sequences, kind):
    """Each sequence of ids scored alone from a zero state: log p(ids[t+1] | ids[:t+1])."""
    L, H = params["Wh"].shape[0], params["Wh"].shape[1]
    return [score_chunk(params, np.asarray(ids), np.zeros((L, 1, H)), kind, 0)[0] if len(ids) > 1 else np.empty(0)
            for ids in sequences]


def exp_sum(values, shift):
    e = np.exp(values - shift)
    return e, e.sum()


# Every compiled kernel and its twin (a reference function, or the model-level twin that covers it).
# tests/test_kernel_twins.py fails when a kernel of charrnn.kernels is missing here.
TWINS = {
    "blas._gemm": gemm, "blas._small_gemm": gemm,
    "elementwise._activate_add": activation, "elementwise._exp_sum": exp_sum,
    "elementwise._multiply": np.multiply, "elementwise._dropout_masks": "tests/test_kernels.py dropout statistics",
    "elementwise._exp_remainder": exp_sum,
    "inputs._lookup": lookup, "inputs._lookup_grad": lookup_grad, "inputs._dense": dense,
    "inputs._dense_grad": dense_grad, "inputs._dense_input_grad": dense_input_grad,
    "rnn._layer_step": layer_step, "rnn._add_bias": np.add, "rnn._forward_layers": forward,
    "rnn._backward_layers": grads, "rnn._stack_step": step,
    "heads._bias_max": np.max, "heads._log_normaliser": log_softmax, "heads._softmax_xent": softmax_xent,
    "heads._softmax_grad_projection": softmax_grad_projection,
    "lm._loss": loss, "lm._loss_and_grads": grads, "lm._loss_sharded": loss, "lm._loss_and_grads_sharded": grads,
    "lm._carve_scratch": "tests/test_kernel_twins.py carve test",
    "lm._rows": "a slice (tests/test_documents_kernels.py)",
    "optim._global_norm": np.linalg.norm, "optim._clip": "tests/test_kernels.py clipping",
    "optim._adam_step": optimizer_step, "optim._rmsprop_step": optimizer_step,
    "optim._adagrad_step": optimizer_step, "optim._sgd_step": optimizer_step,
    "sampling._rotl": rotl, "sampling._next_uniform": next_uniform, "sampling._rank": rank, "sampling._draw": draw,
    "sampling._sample_block": sample_block,
    "scoring._score_row": log_softmax, "scoring._score_chunk": score_chunk, "scoring._score_steps": score_chunk,
    "scoring._score_rows": score_rows,
}  # fmt: skip
# ---- series models: dense inputs, layer stacks of several widths, the linear head, squared error ----


def series_forward(params, units, X, kind):
    """X (B, T, D) real values. Returns the hidden states of every layer, a list of (B, T, H), bottom first.
    Layer l's input weights are the stack's Wx for its first layer and Wu after (kernels/series.py)."""
    layers, below = [], X
    stack, index = 0, 0
    for width_index, width in enumerate(units):
        if width_index > 0 and width != units[width_index - 1]:
            stack, index = stack + 1, 0
        W_in = params[f"Wx{stack}"] if index == 0 else params[f"Wu{stack}"][index - 1]
        Wh, bh = params[f"Wh{stack}"][index], params[f"bh{stack}"][index]
        h = np.zeros((X.shape[0], width))
        states = []
        for t in range(X.shape[1]):
            h = activation(below[:, t] @ W_in + h @ Wh + bh, kind)
            states.append(h)
        below = np.stack(states, axis=1)
        layers.append((below, W_in, Wh, stack, index))
        index += 1
    return layers


def series_outputs(params, units, X, kind, dense, every):
    """The head's outputs: (B, T, K) at every step or (B, K) at the last."""
    top = series_forward(params, units, X, kind)[-1][0]
    top = top if every else top[:, -1]
    return top @ params["Wy"] + params["by"] if dense else top


def series_loss(params, units, X, Y, kind, dense, every):
    """Mean squared error over all outputs; Y (B, K) or (B, T, K)."""
    return np.mean((series_outputs(params, units, X, kind, dense, every) - Y) ** 2)


def series_grads(params, units, X, Y, kind, dense, every):
    """Backpropagation through time written step by step, layer by layer, in float64."""
    layers = series_forward(params, units, X, kind)
    top = layers[-1][0]
    B, T, _ = X.shape
    out = series_outputs(params, units, X, kind, dense, every)
    dout = 2.0 * (out - Y) / Y.size
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    dtop = np.zeros_like(top)
    if dense:
        rows = top if every else top[:, -1]
        grads["Wy"] = rows.reshape(-1, rows.shape[-1]).T @ dout.reshape(-1, dout.shape[-1])
        grads["by"] = dout.reshape(-1, dout.shape[-1]).sum(axis=0)
        dout = dout @ params["Wy"].T
    if every:
        dtop[:] = dout
    else:
        dtop[:, -1] = dout
    for position in reversed(range(len(layers))):
        h, W_in, Wh, stack, index = layers[position]
        below = X if position == 0 else layers[position - 1][0]
        d_below = np.zeros_like(below)
        dh_next = np.zeros((B, h.shape[2]))
        input_name = f"Wx{stack}" if index == 0 else f"Wu{stack}"
        for t in reversed(range(T)):
            dh = dtop[:, t] + dh_next
            dpre = dh * (h[:, t] > 0) if kind == "relu" else dh * (1 - h[:, t] ** 2)
            h_prev = np.zeros_like(h[:, 0]) if t == 0 else h[:, t - 1]
            grads[f"Wh{stack}"][index] += h_prev.T @ dpre
            grads[f"bh{stack}"][index] += dpre.sum(axis=0)
            if index == 0:
                grads[input_name] += below[:, t].T @ dpre
            else:
                grads[input_name][index - 1] += below[:, t].T @ dpre
            d_below[:, t] = dpre @ W_in.T
            dh_next = dpre @ Wh.T
        dtop = d_below
    return grads


def series_forecast(params, units, X, kind, dense, every, steps):
    """Iterated forecast the slow way: predict, append the K predictions to the series, re-run it all."""
    forecast = []
    while len(forecast) < steps:
        out = series_outputs(params, units, X, kind, dense, every)
        values = out[:, -1] if every else out
        forecast.extend(values.T)
        X = np.concatenate([X, values[:, :, None]], axis=1)
    return np.stack(forecast, axis=1)[:, :steps]


# the series driver's kernels (charrnn/kernels/series.py) and its head (heads._linear, heads._mse)
TWINS.update({
    "heads._linear": series_outputs, "heads._mse": series_loss,
    "series._forward": series_forward, "series._predict_sharded": series_outputs,
    "series._loss_and_grads": series_grads, "series._loss_and_grads_sharded": series_grads,
    "series._forecast_sharded": series_forecast,
    "series._common_scratch": "tests/test_series_kernels.py (every driver result above runs on its views)",
    "series._stack_scratch": "tests/test_series_kernels.py (every driver result above runs on its views)",
    "series._head_params": "tests/test_series_kernels.py (parameter views of the flat vector)",
    "series._stack_params": "tests/test_series_kernels.py (parameter views of the flat vector)",
})  # fmt: skip


# ---- coding ----

CODING_TOTAL = 1 << 24


def frequencies(params, h_top, escape, total=CODING_TOTAL):
    """The coder's integer frequencies (V+1,) at the top layer's state h_top (H,): the vocabulary's
    1 + floor(p·(total - escape - V)), the floors' remainder to the most likely character, then `escape`."""
    logits = h_top @ params["Wy"] + params["by"]
    weights = np.exp(logits - logits.max())
    budget = total - escape
    freq = 1 + np.floor(weights * ((budget - len(weights)) / weights.sum())).astype(np.int64)
    freq[np.argmax(freq)] += budget - freq.sum()
    return np.append(freq, escape)


def range_encode(symbols):
    """The range coder in unbounded integers, no carry handling needed: symbols are (cum, freq, total).
    The interval [low, low + width) narrows to [low + r·cum, + r·freq) with r = width // total (the
    table's last symbol takes the whole rest), widened by bytes to keep width >= 2^48; the stream is the
    multiple of 2^48 inside the final interval, in bytes, without its leading zero byte and trailing zeros."""
    low, width, shifts = 0, 2**56 - 1, 0
    for cum, freq, total in symbols:
        r = width // total
        low += r * cum
        width = r * freq if cum + freq < total else width - r * cum
        while width < 2**48:
            low, width, shifts = low << 8, width << 8, shifts + 1
    if not symbols:
        return b""
    point = -(-low // 2**48) * 2**48
    return point.to_bytes(7 + shifts, "big")[: shifts + 1]


def fixed_gemm(a, b, c, trans_a, trans_b, beta):
    """op(a)·op(b) + beta·c."""
    return (a.T if trans_a else a) @ (b.T if trans_b else b) + beta * c


def mul_add(a, b, c):
    return a * b + c


def escape_frequency(escapes, coded, total=CODING_TOTAL):
    """Units of `total` for the coder's escape symbol: total·escapes/(coded + 1), at least 1, at most 63/64."""
    return max(1, min(total - total // 64, total * escapes // (coded + 1)))


# the coder (charrnn/kernels/coding.py) and the strict tree's stand-ins (blas._fixed_gemm, the exp's rounded
# multiply-add); the coder's Python-level twins are the range coder and the frequencies above, and the
# model-level ones the recurrence and the gradient
_DECODER = "tests/test_kernels_coding.py (decodes what range_encode writes, symbol for symbol)"
_TEXT = "tests/test_codec.py (size = score's surprisal; any text round-trips; unknown characters)"
TWINS.update({
    "blas._fixed_gemm": fixed_gemm, "elementwise._mul_add_rounded": mul_add,
    "coding._frequencies": frequencies, "coding._escape_frequency": escape_frequency,
    "coding._advance": step, "coding._learn": grads,
    "coding._shift_low": range_encode, "coding._encode": range_encode, "coding._flush": range_encode,
    "coding._start_decoder": _DECODER, "coding._next_byte": _DECODER, "coding._decode_target": _DECODER,
    "coding._decode_update": _DECODER,
    "coding._remember": _TEXT, "coding._encode_oov": _TEXT, "coding._decode_oov": _TEXT,
    "coding._encode_block": _TEXT, "coding._decode_block": _TEXT,
})  # fmt: skip
