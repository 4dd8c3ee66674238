"""Slow, obviously-correct NumPy twins of the kernels, used only by tests.

Plain loops over time, dense one-hot inputs and textbook formulas: nothing clever, so a disagreement
with a kernel means the kernel is wrong.
"""

import numpy as np


def activation(pre, kind):
    return np.maximum(pre, 0.0) if kind == "relu" else np.tanh(pre)


def forward(params, inputs, h0, kind):
    """inputs (B, T) ids; h0 (L, B, H). Returns hidden states as a list per layer of (B, T, H)."""
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
            h = activation(layer_input[:, t] @ W_in + h @ Wh[layer] + bh[layer], kind)
            states.append(h)
        layer_input = np.stack(states, axis=1)
        layers.append(layer_input)
    return layers


def loss(params, inputs, targets, h0, kind):
    """Mean cross-entropy in nats, and the final state (L, B, H)."""
    layers = forward(params, inputs, h0, kind)
    logits = layers[-1] @ params["Wy"] + params["by"]  # (B, T, V)
    logits = logits - logits.max(axis=-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_probs, targets[..., None], axis=-1)
    final = np.stack([layer[:, -1] for layer in layers])
    return -picked.mean(), final


def grads(params, inputs, targets, h0, kind):
    """Backpropagation written step by step over time, in float64."""
    layers = forward(params, inputs, h0, kind)
    B, T = inputs.shape
    N = B * T
    top = layers[-1]
    logits = top @ params["Wy"] + params["by"]
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    dlogits = probs.copy()
    for b in range(B):
        for t in range(T):
            dlogits[b, t, targets[b, t]] -= 1.0
    dlogits /= N
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
            out["Wh"][layer] += h_prev.T @ dpre
            out["bh"][layer] += dpre.sum(axis=0)
            grad_in = below[:, t].T @ dpre
            if layer == 0:
                out["Wx"] += grad_in
            else:
                out["Wu"][layer - 1] += grad_in
            d_below[:, t] = dpre @ W_in.T
            dh_next = dpre @ params["Wh"][layer].T
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
