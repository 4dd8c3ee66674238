"""The typed wrappers around kernels/series.py: shape checks, normalisation, scratch kept between calls.

A `SeriesWorkspace` holds the per-shard scratch of one batch shape and the per-shard gradients, so a
training loop allocates them once (as charrnn/workspace.py does for the character model). The shard
count depends on the batch size and the machine, never on `threads`: 1 and 2 threads give bit-identical
results.
"""

from __future__ import annotations

import numpy as np

from ..errors import CharrnnError
from ..kernels import blas
from ..kernels import series as kernel
from .model import SeriesModel

PREDICT_ROWS = 4096  # series per kernel call when predicting: bounds the scratch for large inputs


def check_inputs(X: np.ndarray, dimensionality: int, name: str = "X") -> None:
    """X must be (batch, time steps, dimensionality) and finite: one line naming the problem if not."""
    if X.ndim != 3:
        raise CharrnnError(f"{name} must be (batch, time steps, dimensionality), got shape {X.shape}")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise CharrnnError(f"{name} is empty: shape {X.shape}")
    if X.shape[2] != dimensionality:
        raise CharrnnError(f"{name} has dimensionality {X.shape[2]}, the model takes {dimensionality}")
    if not np.isfinite(X).all():
        raise CharrnnError(f"{name} holds non-finite values (NaN or inf)")


class SeriesWorkspace:
    """Loss, gradients, predictions and forecasts of `model`, on shards of the batch in parallel."""

    def __init__(self, model: SeriesModel) -> None:
        self.model = model
        self.layout = model.config.layout()
        self._scratch: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._grads: np.ndarray | None = None

    def normalize(self, values: np.ndarray) -> np.ndarray:
        """(values - offset) / scale as a C-contiguous array of the model's dtype."""
        m = self.model
        if m.offset == 0.0 and m.scale == 1.0:
            return np.ascontiguousarray(values, dtype=m.dtype)
        return np.ascontiguousarray((np.asarray(values, np.float64) - m.offset) / m.scale, dtype=m.dtype)

    def loss_and_grads(self, X: np.ndarray, Y: np.ndarray, grad: np.ndarray) -> float:
        """Mean squared error of a batch and its gradient, written over grad (P,).

        X (B, T, D) and Y (B, T_out, K) already normalised, C-contiguous, in the model's dtype (fit
        prepares them once). Wraps `kernels.series._loss_and_grads_sharded`; the shards' gradients are
        summed here in a fixed order."""
        m, c = self.model, self.model.config
        bounds, scratch = self._buffers(X.shape[0], X.shape[1])
        if self._grads is None or self._grads.shape[0] != bounds.size - 1:
            self._grads = np.empty((bounds.size - 1, m.flat.size), m.dtype)
        total = kernel._loss_and_grads_sharded(X, Y, m.flat, self.layout, c.outputs, c.dense_head, c.every_step,
                                               bounds, scratch, self._grads, c.activation_code)  # fmt: skip
        np.sum(self._grads, axis=0, out=grad)
        return float(total) / Y.size

    def predict(self, X: np.ndarray, threads: int = 0, normalized: bool = False) -> np.ndarray:
        """(B, K) or, sequence to sequence, (B, T, K) outputs for X (B, T, D), in the data's units (in the
        normalised units when `normalized`, X then already prepared). Wraps `_predict_sharded`."""
        m, c = self.model, self.model.config
        if not normalized:
            X = np.asarray(X)
            check_inputs(X, c.inputs)
            X = self.normalize(X)
        out = np.empty((X.shape[0], X.shape[1] if c.every_step else 1, c.outputs), m.dtype)
        with blas.thread_limit(threads):
            for lo in range(0, X.shape[0], PREDICT_ROWS):
                chunk = X[lo : lo + PREDICT_ROWS]
                bounds, scratch = self._buffers(*chunk.shape[:2])
                kernel._predict_sharded(chunk, m.flat, self.layout, c.outputs, c.dense_head, c.every_step, bounds,
                                        scratch, out[lo : lo + PREDICT_ROWS], c.activation_code)  # fmt: skip
        out = out if c.every_step else out[:, 0]
        return out if normalized else self._denormalize(out)

    def forecast(self, X: np.ndarray, steps: int, threads: int = 0) -> np.ndarray:
        """(B, steps): the values after each series of X (B, T, 1), direct for the first K, iterated
        after (module docstring of model.py). Wraps `kernels.series._forecast_sharded`."""
        m, c = self.model, self.model.config
        if steps < 1:
            raise CharrnnError(f"forecast steps must be >= 1, got {steps}")
        X = np.asarray(X)
        check_inputs(X, c.inputs)
        rounds = -(-steps // c.outputs)
        if rounds > 1 and c.inputs != 1:
            raise CharrnnError(f"an iterated forecast feeds predictions back as inputs: it needs a univariate "
                               f"model, this one takes {c.inputs} values a step")  # fmt: skip
        X = self.normalize(X)
        out = np.empty((X.shape[0], rounds * c.outputs), m.dtype)
        with blas.thread_limit(threads):
            for lo in range(0, X.shape[0], PREDICT_ROWS):
                chunk = X[lo : lo + PREDICT_ROWS]
                bounds, scratch = self._buffers(*chunk.shape[:2])
                kernel._forecast_sharded(chunk, m.flat, self.layout, c.outputs, c.dense_head, c.every_step, rounds,
                                         bounds, scratch, out[lo : lo + PREDICT_ROWS], c.activation_code)  # fmt: skip
        return self._denormalize(out[:, :steps])

    def _denormalize(self, values: np.ndarray) -> np.ndarray:
        m = self.model
        if m.offset == 0.0 and m.scale == 1.0:
            return values
        return (values.astype(np.float64) * m.scale + m.offset).astype(m.dtype)

    def _buffers(self, batch_size: int, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
        """Shard bounds and per-shard scratch rows for this batch shape, allocated once and reused."""
        key = (batch_size, seq_len)
        if key not in self._scratch:
            if len(self._scratch) >= 2:  # a training epoch has two shapes: full batches and the last one
                self._scratch.clear()
            bounds = blas.shard_bounds(batch_size)
            rows = int(np.diff(bounds).max())
            c = self.model.config
            size = kernel.scratch_size(self.layout, seq_len, rows, c.outputs, c.every_step)
            self._scratch[key] = (bounds, np.empty((bounds.size - 1, size), self.model.dtype))
        return self._scratch[key]
