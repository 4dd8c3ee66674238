"""What a series model has to beat: the naive forecast and a linear model, and the error measures.

naive   every future value is the last value seen (the seed's first baseline: 0.020 one step ahead)
linear  each of the K future values is an affine function of the W values seen (Géron's Flatten →
        Dense(K), 0.0042 one step ahead). Fitted here by least squares in closed form (float64), so it
        is the best such model on the training set rather than whatever 20 epochs of Adam reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import CharrnnError


def errors(predictions: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """{"mse", "mae"} over all values, accumulated in float64."""
    predictions, targets = np.asarray(predictions, np.float64), np.asarray(targets, np.float64)
    if predictions.shape != targets.shape:
        raise CharrnnError(f"predictions {predictions.shape} and targets {targets.shape} differ in shape")
    difference = predictions - targets
    return {"mse": float(np.mean(difference**2)), "mae": float(np.mean(np.abs(difference)))}


def naive_forecast(X: np.ndarray, steps: int) -> np.ndarray:
    """(B, steps): the last value of each series of X (B, T, 1) repeated."""
    return np.repeat(np.asarray(X, np.float64)[:, -1, :1], steps, axis=1)


@dataclass
class LinearForecaster:
    """y (B, K) ≈ [X (B, W), 1] · weights ((W + 1), K)."""

    weights: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray) -> LinearForecaster:
        """Least squares on X (B, W, 1) → y (B, K)."""
        design = _design(X)
        if design.shape[0] < 1:
            raise CharrnnError("the linear baseline needs at least one training series")
        weights, *_ = np.linalg.lstsq(design, np.asarray(y, np.float64).reshape(len(design), -1), rcond=None)
        return cls(weights)

    def predict(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] + 1 != self.weights.shape[0]:
            raise CharrnnError(f"the linear baseline was fitted on windows of {self.weights.shape[0] - 1} "
                               f"values, got {X.shape[1]}")  # fmt: skip
        return _design(X) @ self.weights


def _design(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, np.float64).reshape(len(X), -1)
    return np.hstack([X, np.ones((len(X), 1))])
