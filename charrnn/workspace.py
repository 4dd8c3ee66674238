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

    def loss(self, inputs: np.ndarray, targets: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        """Mean cross-entropy (nats/char) of targets given inputs, from hidden state `state`.

        inputs, targets (B, T) ids; state (L, B, H). Returns (loss, final state (L, B, H)).
        Wraps `kernels.lm._loss_sharded`. No dropout.
        """
        model = self.model
        bounds, scratch = self._buffers(*inputs.shape, dropout=False)
        final = model.initial_state(inputs.shape[0])
        p = model.params
        total = lm._loss_sharded(
            _ids(inputs), _ids(targets), p["Wx"], p["Wu"], p["Wh"], p["bh"], p["Wy"], p["by"],
            _state(state, model.dtype), final, bounds, scratch, model.config.activation_code,
        )  # fmt: skip
        return float(total) / inputs.size, final

    def loss_and_grads(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        state: np.ndarray,
        grad_flat: np.ndarray | None = None,
        dropout: float = 0.0,
        dropout_seed: int = 0,
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """Loss, its gradient (flat (P,), same layout as `model.flat`) and the final state (L, B, H).

        Truncated BPTT: the gradient does not flow into `state`. With dropout p > 0, each non-recurrent
        connection (between layers, and into the output layer; never the input character) is dropped with
        probability p, masks drawn from `dropout_seed`. Wraps `kernels.lm._loss_and_grads_sharded`; the
        shards' gradients are summed here in a fixed order.
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
        )  # fmt: skip
        for name, view in param_views(grad_flat, model.config).items():
            np.sum(g[name], axis=0, out=view)
        return float(total) / inputs.size, grad_flat, final

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
