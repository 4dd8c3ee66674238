"""Gradient norm, clipping and the optimizers: elementwise updates over the flat parameter vector."""

import math

from numba import njit

from . import FAST


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _global_norm(grad):
    """sqrt(sum(grad²)) accumulated in float64; NaN or inf if any gradient is non-finite."""
    total = 0.0
    for i in range(grad.size):
        total += float(grad[i]) * float(grad[i])
    return math.sqrt(total)


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _clip(grad, max_norm, max_value, norm):
    """Clip in place: scale to global norm `max_norm` (if > 0, given the current `norm`), then clamp each
    element to [-max_value, max_value] (if > 0)."""
    if max_norm > 0.0 and norm > max_norm:
        scale = max_norm / norm
        for i in range(grad.size):
            grad[i] *= scale
    if max_value > 0.0:
        for i in range(grad.size):
            grad[i] = min(max(grad[i], -max_value), max_value)


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _adam_step(param, grad, m, v, lr, beta1, beta2, eps, step, weight_decay):
    """Adam (Kingma & Ba 2015) with bias correction; `step` counts from 1. Decoupled weight decay
    (AdamW) when weight_decay > 0."""
    correction1 = 1.0 - beta1**step
    correction2 = 1.0 - beta2**step
    step_size = lr * math.sqrt(correction2) / correction1
    for i in range(param.size):
        g = grad[i]
        m[i] = beta1 * m[i] + (1.0 - beta1) * g
        v[i] = beta2 * v[i] + (1.0 - beta2) * g * g
        param[i] -= step_size * m[i] / (math.sqrt(v[i]) + eps * math.sqrt(correction2)) + lr * weight_decay * param[i]


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _rmsprop_step(param, grad, cache, lr, decay, eps, weight_decay):
    """RMSprop (Tieleman & Hinton 2012), as in char-rnn: cache = decay·cache + (1-decay)·g²."""
    for i in range(param.size):
        g = grad[i] + weight_decay * param[i]
        cache[i] = decay * cache[i] + (1.0 - decay) * g * g
        param[i] -= lr * g / (math.sqrt(cache[i]) + eps)


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _adagrad_step(param, grad, cache, lr, eps, weight_decay):
    """Adagrad (Duchi et al. 2011), as in min-char-rnn: cache += g²."""
    for i in range(param.size):
        g = grad[i] + weight_decay * param[i]
        cache[i] += g * g
        param[i] -= lr * g / (math.sqrt(cache[i]) + eps)


@njit(cache=True, fastmath=FAST, error_model="numpy")
def _sgd_step(param, grad, velocity, lr, momentum, weight_decay):
    """SGD with (heavy-ball) momentum: velocity = momentum·velocity + g; param -= lr·velocity."""
    for i in range(param.size):
        g = grad[i] + weight_decay * param[i]
        velocity[i] = momentum * velocity[i] + g
        param[i] -= lr * velocity[i]
