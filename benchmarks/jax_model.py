"""The JAX baseline: charrnn's model in JAX the way a user who wants speed would write it.

Parameters are charrnn's own (Wx (V, H) looked up by id, Wh (H, H), bh (H,), Wy (H, V), by (V,)), so the
same weights give the same function. One jitted training step: `value_and_grad` of the mean cross-entropy
over a (B, T) chunk, the recurrence as `lax.scan`, global-norm clipping to 5 and Adam (optax, lr 2e-3,
as charrnn's default), the hidden state carried from chunk to chunk (truncated BPTT: the carried state
is an input, so no gradient flows into it). Scoring is the jitted forward with the loss at every
position; sampling is one jitted `lax.scan` over the characters with `jax.random.categorical`.

Threads: XLA's CPU backend sizes its thread pool from the process's CPU affinity mask, so the worker
restricts the mask (os.sched_setaffinity) before importing jax.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

LR, CLIP = 2e-3, 5.0


def init_params(vocab: int, hidden: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(hidden)
    f32 = np.float32
    return {
        "Wx": jnp.asarray(rng.uniform(-bound, bound, (vocab, hidden)).astype(f32)),
        "Wh": jnp.asarray(rng.uniform(-bound, bound, (hidden, hidden)).astype(f32)),
        "bh": jnp.zeros(hidden, jnp.float32),
        "Wy": jnp.asarray(rng.uniform(-bound, bound, (hidden, vocab)).astype(f32)),
        "by": jnp.zeros(vocab, jnp.float32),
    }


def forward(params: dict, inputs: jnp.ndarray, state: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """inputs (B, T) ids, state (B, H) -> (logits (B, T, V), final state (B, H))."""
    embedded = params["Wx"][inputs.T] + params["bh"]  # (T, B, H): the one-hot product is a lookup

    def step(h, x):
        h = jnp.tanh(x + h @ params["Wh"])
        return h, h

    final, hs = jax.lax.scan(step, state, embedded)
    return jnp.swapaxes(hs @ params["Wy"] + params["by"], 0, 1), final


def loss_fn(params: dict, inputs, targets, state) -> tuple[jnp.ndarray, jnp.ndarray]:
    logits, final = forward(params, inputs, state)
    return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean(), final


def jax_train_step(params: dict, next_chunk: Callable, batch: int) -> Callable[[], float]:
    """One training step per call (the jitted step; the loss is fetched, which waits for the step)."""
    optimizer = optax.chain(optax.clip_by_global_norm(CLIP), optax.adam(LR))

    @jax.jit
    def train_step(params, opt_state, inputs, targets, state):
        (loss, final), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, inputs, targets, state)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, final

    chunks = [tuple(jnp.asarray(a) for a in next_chunk()) for _ in range(8)]
    carried = {"params": params, "opt": optimizer.init(params), "state": jnp.zeros((batch, params["Wh"].shape[0])),
               "position": 0}  # fmt: skip

    def step() -> float:
        inputs, targets = chunks[carried["position"] % len(chunks)]
        carried["position"] += 1
        carried["params"], carried["opt"], loss, carried["state"] = train_step(
            carried["params"], carried["opt"], inputs, targets, carried["state"]
        )
        return float(loss)

    return step


def jax_score_step(params: dict, next_chunk: Callable, batch: int) -> Callable[[], float]:
    score = jax.jit(loss_fn)
    chunks = [tuple(jnp.asarray(a) for a in next_chunk()) for _ in range(8)]
    carried = {"state": jnp.zeros((batch, params["Wh"].shape[0])), "position": 0}

    def step() -> float:
        inputs, targets = chunks[carried["position"] % len(chunks)]
        carried["position"] += 1
        loss, carried["state"] = score(params, inputs, targets, carried["state"])
        return float(loss)

    return step


def jax_sampler(params: dict, batch: int, length: int) -> Callable[[], np.ndarray]:
    """`length` characters for `batch` streams in one jitted lax.scan (a fresh key per call)."""
    hidden = params["Wh"].shape[0]

    @jax.jit
    def run(params, key):
        def step(carry, key):
            h, ids = carry
            h = jnp.tanh(params["Wx"][ids] + params["bh"] + h @ params["Wh"])
            ids = jax.random.categorical(key, h @ params["Wy"] + params["by"])
            return (h, ids), ids

        keys = jax.random.split(key, length)
        _, out = jax.lax.scan(step, (jnp.zeros((batch, hidden)), jnp.zeros(batch, jnp.int32)), keys)
        return out

    counter = [0]

    def sample() -> np.ndarray:
        counter[0] += 1
        return np.asarray(run(params, jax.random.PRNGKey(counter[0])))

    return sample


def gradients(params: dict, inputs: np.ndarray, targets: np.ndarray, state: np.ndarray) -> tuple[float, dict]:
    """Loss and gradients (NumPy) of one chunk, for the check against charrnn's on the same weights."""
    (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, jnp.asarray(inputs),
                                                                 jnp.asarray(targets), jnp.asarray(state))  # fmt: skip
    return float(loss), {name: np.asarray(value) for name, value in grads.items()}
