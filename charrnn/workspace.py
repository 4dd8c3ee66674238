"""A Workspace: the scratch memory and per-shard gradients that evaluating or training a Model needs.

Kept apart from the Model so that a Model stays configuration + vocabulary + weights (cheap to pickle and
ship to another process), while a training loop keeps one Workspace for its whole run: the scratch is
allocated once per chunk shape and reused (fresh multi-megabyte buffers cost page faults: ~15% of a step).
"""

from __future__ import annotations

import numpy as np

from .errors import CharrnnError
from .kernels import blas, lm
from .model import Model, _ids, _state, param_views


class Workspace:
    """Loss and gradients of `model` over (B, T) chunks, on shards of the batch in parallel."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self._scratch: dict[tuple[int, int, bool], tuple[np.ndarray, np.ndarray]] = {}
        self._shard_grads: dict[str, np.ndarray] | None = None

    def loss(self, inputs: np.ndarray, targets: np.ndarray, state: np.ndarray, weights: np.ndarray | None = None,
             resets: np.ndarray | None = None) -> tuple[float, np.ndarray]:  # fmt: skip
        """Mean cross-entropy (nats/char) of targets given inputs, from hidden state `state`.

        inputs, targets (B, T) ids; state (L, B, H). Returns (loss, final state (L, B, H)).
        Documents (optional, both (B, T)): `weights` weigh each position's loss (0: padding; the mean is
        then over the weights' sum), `resets` mark where a document starts from a zero state.
        Wraps `kernels.lm._loss_sharded`. No dropout.
        """
        model = self.model
        bounds, scratch = self._buffers(*inputs.shape, dropout=False)
        final = model.initial_state(inputs.shape[0])
        p = model.params
        total = lm._loss_sharded(
            _ids(inputs), _ids(targets), p["Wx"], p["Wu"], p["Wh"], p["bh"], p["Wy"], p["by"],
            _state(state, model.dtype), final, bounds, scratch, model.config.activation_code,
            *_document_arrays(weights, resets, inputs.shape, model.dtype),
        )  # fmt: skip
        return float(total) / _positions(inputs, weights), final

    def loss_and_grads(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        state: np.ndarray,
        grad_flat: np.ndarray | None = None,
        dropout: float = 0.0,
        dropout_seed: int = 0,
        weights: np.ndarray | None = None,
        resets: np.ndarray | None = None,
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """Loss, its gradient (flat (P,), same layout as `model.flat`) and the final state (L, B, H).

        Truncated BPTT: the gradient does not flow into `state`. With dropout p > 0, each non-recurrent
        connection (between layers, and into the output layer; never the input character) is dropped with
        probability p, masks drawn from `dropout_seed`. `weights`, `resets` as in `loss`: the gradient is
        then that of the weighted mean, and no gradient crosses a document start. Wraps
        `kernels.lm._loss_and_grads_sharded`; the shards' gradients are summed here in a fixed order.
        """
        if not 0.0 <= dropout < 1.0:
            raise CharrnnError(f"dropout must be in [0, 1), got {dropout}")
        model = self.model
        if grad_flat is None:
            grad_flat = np.empty_like(model.flat)
        bounds, scratch = self._buffers(*inputs.shape, dropout=dropout > 0)
        shards = bounds.size - 1
        g = self._gradient_buffers(shards)
        seeds = np.random.SeedSequence([dropout_seed, 0xC4A2]).generate_state(shards, dtype=np.uint64) | np.uint64(1)
        final = model.initial_state(inputs.shape[0])
        p = model.params
        total = lm._loss_and_grads_sharded(
            _ids(inputs), _ids(targets), p["Wx"], p["Wu"], p["Wh"], p["bh"], p["Wy"], p["by"],
            _state(state, model.dtype), final, bounds, scratch, 1.0 - dropout, seeds,
            g["Wx"], g["Wu"], g["Wh"], g["bh"], g["Wy"], g["by"], model.config.activation_code,
            *_document_arrays(weights, resets, inputs.shape, model.dtype),
        )  # fmt: skip
        for name, view in param_views(grad_flat, model.config).items():
            np.sum(g[name], axis=0, out=view)
        return float(total) / _positions(inputs, weights), grad_flat, final

    def _buffers(self, batch_size: int, seq_len: int, dropout: bool) -> tuple[np.ndarray, np.ndarray]:
        """Shard bounds and per-shard scratch rows for this chunk shape, allocated once and reused."""
        key = (batch_size, seq_len, dropout)
        if key not in self._scratch:
            bounds = blas.shard_bounds(batch_size)
            rows = int(np.diff(bounds).max())
            c = self.model.config
            size = lm.scratch_size(c.num_layers, seq_len, rows, c.hidden_size, c.vocab_size, dropout)
            self._scratch.clear()  # one shape at a time: training and evaluation alternate rarely
            self._scratch[key] = (bounds, np.empty((bounds.size - 1, size), self.model.dtype))
        return self._scratch[key]

    def _gradient_buffers(self, shards: int) -> dict[str, np.ndarray]:
        if self._shard_grads is None or next(iter(self._shard_grads.values())).shape[0] != shards:
            shapes = self.model.config.param_shapes().items()
            self._shard_grads = {name: np.empty((shards,) + shape, self.model.dtype) for name, shape in shapes}
        return self._shard_grads


def _document_arrays(weights, resets, shape: tuple[int, int], dtype: np.dtype) -> tuple[np.ndarray, ...]:
    """The kernels' optional trailing (weights, resets) arguments: none for a stream chunk, both for documents
    (a missing one filled in: weight 1 everywhere, or no reset)."""
    if weights is None and resets is None:
        return ()
    for name, array in (("weights", weights), ("resets", resets)):
        if array is not None and array.shape != shape:
            raise CharrnnError(f"{name} must have the shape of the inputs {shape}, got {array.shape}")
    weights = np.ones(shape, dtype) if weights is None else np.ascontiguousarray(weights, dtype=dtype)
    resets = np.zeros(shape, np.uint8) if resets is None else np.ascontiguousarray(resets, dtype=np.uint8)
    return weights, resets


def _positions(inputs: np.ndarray, weights: np.ndarray | None) -> float:
    """What the mean loss divides by: every position, or the weights' sum (at least a tiny positive)."""
    return float(inputs.size) if weights is None else max(float(np.sum(weights, dtype=np.float64)), 1e-300)
