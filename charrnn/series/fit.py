"""Training a series model: Keras-style epochs of shuffled mini-batches, the character model's optimizers.

One step = one batch: forward, backpropagation through time over the whole window, optional clipping,
an optimizer update (`charrnn.train.apply_update`: Adam, RMSprop, Adagrad or SGD, the same kernels the
character model uses). Each epoch visits every training series once in a fresh order drawn from `seed`,
the last batch smaller when the batch size does not divide the series count (as Keras does). After each
epoch the validation loss is computed; the weights returned are the last epoch's (as Keras' are).

Adam's epsilon is Keras' 1e-7, so "Adam at lr 1e-3" means what it meant for the published figures.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from ..checkpointing import TrainState, optimizer_slots
from ..errors import CharrnnError
from ..kernels import blas
from ..train import LR_SCHEDULES, OPTIMIZERS, TrainConfig, apply_update, schedule_factor
from .model import SeriesModel
from .workspace import SeriesWorkspace, check_inputs

NORMALIZE = ("none", "standard", "auto")


@dataclass
class History:
    """Per-epoch losses (mean squared error in the data's units) and how the run ended."""

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    stop_reason: str = "epochs"  # "epochs" | "interrupted"
    seconds: float = 0.0  # training steps only (validation excluded)
    series_per_second: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def targets_shape(model: SeriesModel, X: np.ndarray, y: np.ndarray, name: str = "y") -> np.ndarray:
    """y as (B, T_out, K): (B, K) for a model with a head on the last step ((B,) too when K = 1),
    (B, T, K) for a sequence-to-sequence model."""
    c = model.config
    y = np.asarray(y)
    if y.ndim == 1 and c.outputs == 1 and not c.every_step:
        y = y[:, None]
    expected = (X.shape[0], X.shape[1], c.outputs) if c.every_step else (X.shape[0], c.outputs)
    if y.shape != expected:
        raise CharrnnError(f"{name} must have shape {expected} for this model, got {y.shape}")
    if not np.isfinite(y).all():
        raise CharrnnError(f"{name} holds non-finite values (NaN or inf)")
    return y.reshape(X.shape[0], -1, c.outputs)


def normalization(X: np.ndarray, how: str, bounded: bool = False) -> tuple[float, float]:
    """(offset, scale) for `how`: "none" (0, 1); "standard" (mean, standard deviation of X); "auto":
    standard for a model with a dense head (measured on the seed's setup, 3 seeds: 10-ahead direct
    0.0084 standardised vs 0.0085 raw, one step 0.0025 both); for a `bounded` model (no head: the top
    tanh layer is the output, |y| < 1) no offset and a scale that brings the values into [-1, 1]."""
    if how not in NORMALIZE:
        raise CharrnnError(f"normalize must be one of {', '.join(NORMALIZE)}, got {how!r}")
    values = np.asarray(X, np.float64)
    if how == "none":
        return 0.0, 1.0
    if how == "auto" and bounded:
        return 0.0, max(1.0, float(np.abs(values).max()))
    scale = float(values.std())
    return float(values.mean()), scale if scale > 0 else 1.0


def check_options(epochs: int = 20, batch_size: int = 32, optimizer: str = "adam", schedule: str = "constant",
                  normalize: str = "none", lr: float = 1e-3, clip: float = 0.0, **_: Any) -> None:  # fmt: skip
    """Every training option that can be checked before any data is read: one line if one is wrong."""
    checks = [
        (epochs >= 1, f"epochs must be >= 1, got {epochs}"),
        (batch_size >= 1, f"batch size must be >= 1, got {batch_size}"),
        (optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}"),
        (schedule in LR_SCHEDULES, f"schedule must be one of {', '.join(LR_SCHEDULES)}, got {schedule!r}"),
        (normalize in NORMALIZE, f"normalize must be one of {', '.join(NORMALIZE)}, got {normalize!r}"),
        (lr > 0 and math.isfinite(lr), f"learning rate must be a positive number, got {lr}"),
        (clip >= 0, f"clip must be >= 0, got {clip}"),
    ]
    for ok, message in checks:
        if not ok:
            raise CharrnnError(message)


def fit(
    model: SeriesModel,
    X: np.ndarray,
    y: np.ndarray,
    epochs: int = 20,
    batch_size: int = 32,
    validation_data: tuple[np.ndarray, np.ndarray] | None = None,
    optimizer: str = "adam",
    lr: float = 1e-3,
    clip: float = 0.0,
    schedule: str = "constant",
    normalize: str = "none",
    seed: int = 0,
    threads: int = 0,
    verbose: bool = True,
) -> History:
    """Train `model` in place on X (B, T, D) → y ((B, K), or (B, T, K) sequence to sequence).

    validation_data (X_valid, y_valid) is scored after every epoch. `normalize` sets the model's
    normalisation from X before training (`normalization`). `clip` > 0 clips the gradient's global norm.
    A tqdm bar per epoch on stderr unless verbose is False. Ctrl-C stops after the current batch (the
    weights are always a consistent state); the History says "interrupted".
    """
    check_options(epochs, batch_size, optimizer, schedule, normalize, lr, clip)
    X = np.asarray(X)
    check_inputs(X, model.config.inputs)
    Y = targets_shape(model, X, y)
    bounded = not model.config.dense_head and model.config.activation == "tanh"
    model.offset, model.scale = normalization(X, normalize, bounded)
    workspace = SeriesWorkspace(model)
    X, Y = workspace.normalize(X), workspace.normalize(Y)
    valid = None
    if validation_data is not None:
        X_valid = np.asarray(validation_data[0])
        check_inputs(X_valid, model.config.inputs, "validation X")
        Y_valid = targets_shape(model, X_valid, validation_data[1], "validation y")
        valid = workspace.normalize(X_valid), workspace.normalize(Y_valid)
    config = TrainConfig(lr=lr, optimizer=optimizer, eps=1e-7, clip=clip, dropout=0.0, batch_size=batch_size,
                         lr_schedule=schedule, seed=seed, threads=threads)  # fmt: skip
    state = TrainState(lr=lr, optimizer={slot: np.zeros_like(model.flat) for slot in optimizer_slots(optimizer)})
    history = History(config={"epochs": epochs, "batch_size": batch_size, "optimizer": optimizer, "lr": lr,
                              "clip": clip, "schedule": schedule, "normalize": normalize, "seed": seed})  # fmt: skip
    rng = np.random.default_rng(seed)
    grad = np.empty_like(model.flat)
    units = model.scale**2  # squared errors back in the data's units
    total_steps = epochs * -(-len(X) // batch_size)
    try:
        with blas.thread_limit(threads):
            for epoch in range(1, epochs + 1):
                order = rng.permutation(len(X))
                bar = tqdm(total=len(X), desc=f"epoch {epoch}/{epochs}", unit=" series", disable=not verbose,
                           leave=True, dynamic_ncols=True)  # fmt: skip
                total, started = 0.0, time.perf_counter()
                for start in range(0, len(X), batch_size):
                    rows = order[start : start + batch_size]
                    loss = workspace.loss_and_grads(X[rows], Y[rows], grad)
                    if not math.isfinite(loss):
                        raise CharrnnError(f"training diverged in epoch {epoch} (loss {loss}); "
                                           "try a smaller learning rate or --clip")  # fmt: skip
                    apply_update(model, grad, state, config, schedule_factor(config, state.step / total_steps))
                    state.step += 1
                    total += loss * len(rows)
                    bar.update(len(rows))
                history.seconds += time.perf_counter() - started
                history.loss.append(total / len(X) * units)
                postfix = {"loss": f"{history.loss[-1]:.5f}"}
                if valid is not None:
                    predictions = workspace.predict(valid[0], threads, normalized=True)
                    history.val_loss.append(float(np.mean((predictions.astype(np.float64)
                                                           - valid[1].reshape(predictions.shape)) ** 2)) * units)
                    postfix["val_loss"] = f"{history.val_loss[-1]:.5f}"
                bar.set_postfix(postfix)
                bar.close()
    except KeyboardInterrupt:
        history.stop_reason = "interrupted"
    epochs_done = len(history.loss)
    history.series_per_second = epochs_done * len(X) / history.seconds if history.seconds > 0 else 0.0
    return history
