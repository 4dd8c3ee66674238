"""What the `charrnn series` commands call: train from a file, evaluate beside the baselines, forecast,
plot, describe. Files in, files and dicts out; the command line only parses and prints.

The task a model was trained for (its input window W, K steps ahead, sequence to sequence or not) and
how its data were read (window over one long series, column, split) are kept in its checkpoint, so
`evaluate`, `forecast` and `plot` cut a data file the same way without being told again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpointing import check_writable
from ..errors import CharrnnError
from . import build_model
from .baselines import LinearForecaster, errors, naive_forecast
from .data import SEED_SPLIT, SeriesData, load_data, make_task, one_series, read_csv, read_npz
from .fit import History, check_options
from .model import SeriesConfig, SeriesModel, load_model, save_model


def train_file(
    data_path: Path,
    output: Path,
    units: tuple[int, ...] = (20, 20),
    dense_head: bool = True,
    every_step: bool = False,
    ahead: int = 1,
    window: int | None = None,
    column: str | None = None,
    split: tuple[float, float, float] = SEED_SPLIT,
    activation: str = "tanh",
    dtype: str = "float32",
    on_start: Callable[[SeriesModel], None] | None = None,
    **fit_options: Any,
) -> tuple[SeriesModel, History, dict[str, Any]]:
    """Read series, train a model for `ahead` steps after a window of `window` values (default: each
    series but its last `ahead` values), save it to `output`. fit_options go to `fit` (epochs, lr, ...);
    `on_start` sees the fresh model before training (the command line prints its summary)."""
    output = Path(output)
    check_options(**fit_options)
    SeriesConfig(tuple(units), 1, ahead, dense_head, every_step, activation, dtype)  # checks the architecture
    check_writable(output)
    data = load_data(data_path, window, ahead, column, split)
    task_window = window if window is not None else data.length - ahead
    if task_window < 1:
        raise CharrnnError(f"{data_path}: series of {data.length} values leave no input window for {ahead} step(s) "
                           "ahead")  # fmt: skip
    X, y = make_task(data.train, task_window, ahead, every_step)
    validation = make_task(data.valid, task_window, ahead, every_step) if len(data.valid) else None
    model = build_model(units, ahead, dense_head, every_step, 1, activation, dtype, fit_options.get("seed", 0))
    if on_start is not None:
        on_start(model)
    history = model.fit(X, y, validation_data=validation, **fit_options)
    meta = {
        "task": {"window": task_window, "ahead": ahead, "every_step": every_step},
        "data": {"path": str(data_path), "window": window, "column": column, "split": list(split),
                 "source": data.source, "train_series": len(data.train), "valid_series": len(data.valid)},
        "history": history.to_dict(),
    }  # fmt: skip
    save_model(output, model, meta)
    return model, history, meta


def _data_like_training(data_path: Path, meta: dict[str, Any], ahead: int) -> SeriesData:
    """The data file read with the options the model was trained with (a long series windowed for
    W + `ahead` values)."""
    options = meta.get("data", {})
    split = tuple(options.get("split", SEED_SPLIT))
    return load_data(data_path, options.get("window"), ahead, options.get("column"), split)  # type: ignore[arg-type]


def evaluate_file(model_path: Path, data_path: Path, ahead: int | None = None, threads: int = 0) -> dict[str, Any]:
    """MSE and MAE of the model's `ahead`-step forecast (default: its K outputs; more than K: iterated)
    on the validation and test series, beside the naive and linear baselines (the linear model fitted
    by least squares on the training series for the same window and horizon)."""
    model, meta = load_model(model_path)
    window, K = meta["task"]["window"], model.config.outputs
    ahead = ahead or K
    data = _data_like_training(data_path, meta, ahead)
    X_train, y_train = make_task(data.train, window, ahead)
    linear = LinearForecaster.fit(X_train, y_train)
    report: dict[str, Any] = {
        "model": str(model_path), "data": str(data_path),
        "task": {"window": window, "ahead": ahead, "method": "direct" if ahead <= K else f"iterated ({K} at a time)",
                 "every_step": model.config.every_step},
        "parameters": int(model.flat.size),
        "splits": {},
    }  # fmt: skip
    for name in ("valid", "test"):
        series = data.split(name)
        if not len(series):
            continue
        X, y = make_task(series, window, ahead)
        report["splits"][name] = {
            "series": len(series),
            "model": errors(model.forecast(X, ahead, threads), y),
            "naive": errors(naive_forecast(X, ahead), y),
            "linear": errors(linear.predict(X), y),
        }
    if not report["splits"]:
        raise CharrnnError(f"{data_path} has no validation or test series to evaluate on")
    return report


def forecast_inputs(model_path: Path, data_path: Path, split: str = "test") -> tuple[SeriesModel, dict, np.ndarray]:
    """(model, meta, series (N, L)) to forecast from: a split of an .npz, every row of a CSV of rows, or
    the one long series of a CSV for a model trained with --window."""
    model, meta = load_model(model_path)
    data_path = Path(data_path)
    if data_path.suffix.lower() == ".npz":
        series = read_npz(data_path).split(split)
    elif meta.get("data", {}).get("window") is not None:
        series = one_series(data_path, read_csv(data_path), meta["data"].get("column"))[None, :]
    else:
        series = read_csv(data_path)
    window = meta["task"]["window"]
    if series.shape[1] < window:
        raise CharrnnError(f"{data_path}: series of {series.shape[1]} values are shorter than the model's window "
                           f"of {window}")  # fmt: skip
    if not len(series):
        raise CharrnnError(f"{data_path}: the {split} split has no series")
    return model, meta, series


def forecast_file(model_path: Path, data_path: Path, steps: int | None = None, split: str = "test",
                  limit: int | None = None, threads: int = 0) -> dict[str, Any]:  # fmt: skip
    """The `steps` values after the end of each series (its last W values are the input)."""
    model, meta, series = forecast_inputs(model_path, data_path, split)
    series = series[:limit] if limit else series
    window, K = meta["task"]["window"], model.config.outputs
    steps = steps or K
    values = model.forecast(series[:, -window:, None], steps, threads)
    return {"model": str(model_path), "data": str(data_path), "steps": steps, "window": window,
            "method": "direct" if steps <= K else f"iterated ({K} at a time)",
            "forecasts": values.astype(np.float64)}  # fmt: skip


def plot_file(model_path: Path, data_path: Path, output: Path, count: int = 3, split: str = "valid",
              steps: int | None = None, threads: int = 0) -> Path:  # fmt: skip
    """A PNG of `count` series of a split: the input window, the true continuation where the data have
    it, the model's forecast and the naive one. Needs matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
        import matplotlib.pyplot as plt
    except ImportError:
        raise CharrnnError("drawing a PNG needs matplotlib: pip install 'charrnn[plot]'") from None
    if count < 1:
        raise CharrnnError(f"--count must be >= 1, got {count}")
    check_writable(Path(output))
    model, meta, series = forecast_inputs(model_path, data_path, split)
    window, K = meta["task"]["window"], model.config.outputs
    steps = steps or K
    series = series[:count]
    truth_available = series.shape[1] >= window + steps
    X = series[:, :window, None] if truth_available else series[:, -window:, None]
    predicted = model.forecast(X, steps, threads)
    figure, axes = plt.subplots(len(series), 1, figsize=(8, 2.4 * len(series)), squeeze=False, sharex=True,
                                constrained_layout=True)  # fmt: skip
    past, future = np.arange(window), np.arange(window, window + steps)
    for row, ax in enumerate(axes[:, 0]):
        ax.plot(past, X[row, :, 0], ".-", color="0.3", label="input")
        if truth_available:
            ax.plot(future, series[row, window : window + steps], "o-", color="tab:blue", label="actual")
        ax.plot(future, predicted[row], "x-", color="tab:red", label="forecast")
        ax.plot(future, np.repeat(X[row, -1, 0], steps), ":", color="0.5", label="naive")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper left", fontsize="small", ncol=4)
    axes[-1, 0].set_xlabel("time step")
    axes[0, 0].set_title(f"{Path(model_path).name}: {steps} step(s) ahead on {Path(data_path).name}")
    from ..atomic import atomic_writer

    with atomic_writer(output) as handle:
        figure.savefig(handle, format="png", dpi=100)
    plt.close(figure)
    return Path(output)


def model_info(path: Path) -> dict[str, Any]:
    """What `charrnn info` shows for a series model: layers, parameters, task, data, training."""
    model, meta = load_model(path)
    history = meta.get("history", {})
    return {
        "path": str(path), "kind": "series", "format_version": meta["version"], "config": meta["config"],
        "layers": model.layers(), "total_parameters": int(model.flat.size), "summary": model.summary(),
        "task": meta.get("task"), "normalization": meta["normalization"], "data": meta.get("data"),
        "epochs": len(history.get("loss", [])), "final_loss": (history.get("loss") or [None])[-1],
        "final_val_loss": (history.get("val_loss") or [None])[-1], "train_config": history.get("config"),
    }  # fmt: skip
