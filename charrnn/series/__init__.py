"""Time-series forecasting with the character model's Elman core: real values in, real values out.

    from charrnn.series import generate_time_series, build_model
    series = generate_time_series(10_000, 51, seed=42)            # (10000, 51, 1)
    X_train, y_train = series[:7000, :50], series[:7000, -1]      # (7000, 50, 1), (7000, 1)
    X_valid, y_valid = series[7000:9000, :50], series[7000:9000, -1]
    model = build_model(units=(20, 20))                           # SimpleRNN(20) → SimpleRNN(20) → Dense(1)
    print(model.summary())
    history = model.fit(X_train, y_train, epochs=20, validation_data=(X_valid, y_valid))
    model.evaluate(X_valid, y_valid)                              # {"mse": ..., "mae": ...}

Modules: data (generator, files, tasks), model (architecture, summary, checkpoints), workspace (the
kernel wrappers), fit (training), baselines (naive, linear, error measures), run (what `charrnn series`
commands call).
"""

from .baselines import LinearForecaster, errors, naive_forecast
from .data import SeriesData, generate_data, generate_time_series, load_data, make_task
from .fit import History, fit
from .model import SeriesConfig, SeriesModel, load_model, save_model

__all__ = [
    "History", "LinearForecaster", "SeriesConfig", "SeriesData", "SeriesModel", "build_model", "errors", "fit",
    "generate_data", "generate_time_series", "load_data", "load_model", "make_task", "naive_forecast", "save_model",
]  # fmt: skip


def build_model(
    units: tuple[int, ...] | list[int] = (20, 20),
    outputs: int = 1,
    dense_head: bool = True,
    every_step: bool = False,
    inputs: int = 1,
    activation: str = "tanh",
    dtype: str = "float32",
    seed: int = 0,
) -> SeriesModel:
    """A fresh model: recurrent layers of `units` (bottom first) over `inputs` values a step, then a
    linear head of `outputs` units on the last step (or on every step with `every_step`), or no head
    (`dense_head=False`: the top layer is the output, e.g. `build_model((1,), dense_head=False)` is
    Keras' SimpleRNN(1), 3 parameters). Keras' initialisation, drawn from `seed`."""
    config = SeriesConfig(tuple(units), inputs, outputs, dense_head, every_step, activation, dtype)
    return SeriesModel.initialize(config, seed)
