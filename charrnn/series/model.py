"""A series model: configuration, parameters, Keras-like summary, predictions, forecasts, checkpoints.

The network is a stack of Elman layers (Keras SimpleRNN) of `units` widths over real-valued inputs
X (batch, time steps, dimensionality), with a linear head (Keras Dense) on the last step, on every
step (`every_step`, sequence to sequence), or none (the top layer's units are the outputs, as in
Géron's SimpleRNN(1)). `outputs` K > 1 predicts K steps ahead at once. The kernels are the character
model's layer stack behind a dense input (charrnn/kernels/series.py explains the layout).

Initialisation is Keras' (it is what the published figures were trained from): input and output
kernels Glorot-uniform, recurrent kernels orthogonal, biases zero.

An optional affine normalisation (`offset`, `scale`) is part of the model: inputs and targets are
(x - offset) / scale inside, predictions come back in the data's units. It is the identity by default.

Checkpoint: one `.npz` written atomically, readable with `np.load(path, allow_pickle=False)`: the
parameters under their names and `meta`, a JSON string (format, version, config, normalisation and
whatever the caller adds: task, data, training history).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_writer
from ..errors import CharrnnError
from ..kernels import ACT_RELU, ACT_TANH, ACT_TANH_EXACT

CHECKPOINT_FORMAT = "charrnn-series-checkpoint"
CHECKPOINT_VERSION = 1
ACTIVATIONS = ("tanh", "relu")
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class SeriesConfig:
    """Architecture: recurrent widths bottom to top, input dimensionality D, outputs K, the head."""

    units: tuple[int, ...] = (20, 20)
    inputs: int = 1
    outputs: int = 1
    dense_head: bool = True
    every_step: bool = False
    activation: str = "tanh"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", tuple(int(u) for u in self.units))
        checks = [
            (len(self.units) >= 1 and all(u >= 1 for u in self.units), f"units must be >= 1, got {self.units}"),
            (self.inputs >= 1, f"inputs (dimensionality) must be >= 1, got {self.inputs}"),
            (self.outputs >= 1, f"outputs must be >= 1, got {self.outputs}"),
            (self.activation in ACTIVATIONS, f"activation must be one of {', '.join(ACTIVATIONS)}"),
            (self.dtype in DTYPES, f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}"),
            (
                self.dense_head or self.units[-1] == self.outputs,
                f"without a dense head the top layer's {self.units[-1]} units are the outputs, "
                f"so it needs {self.outputs} (the number of outputs)",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise CharrnnError(message)

    def layout(self) -> np.ndarray:
        """(S, 3) int64 rows (D_s, H_s, n_s): runs of equal widths become one layer stack each."""
        rows: list[list[int]] = []
        for width in self.units:
            if rows and rows[-1][1] == width:
                rows[-1][2] += 1
            else:
                rows.append([rows[-1][1] if rows else self.inputs, width, 1])
        return np.array(rows, dtype=np.int64)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name → shape, in the order of the flat vector (kernels/series.py)."""
        shapes: dict[str, tuple[int, ...]] = {}
        for s, (D, H, n) in enumerate(self.layout().tolist()):
            shapes.update({f"Wx{s}": (D, H), f"Wu{s}": (n - 1, H, H), f"Wh{s}": (n, H, H), f"bh{s}": (n, H)})
        if self.dense_head:
            shapes.update({"Wy": (self.units[-1], self.outputs), "by": (self.outputs,)})
        return shapes

    @property
    def activation_code(self) -> int:
        """float64 uses libm tanh (gradient checks), float32 the vectorised approximation (as the
        character model does)."""
        if self.activation == "relu":
            return ACT_RELU
        return ACT_TANH_EXACT if self.dtype == "float64" else ACT_TANH


def param_views(flat: np.ndarray, config: SeriesConfig) -> dict[str, np.ndarray]:
    """Split a flat (P,) vector into named, shaped views (no copies)."""
    views, offset = {}, 0
    for name, shape in config.param_shapes().items():
        size = int(np.prod(shape))
        views[name] = flat[offset : offset + size].reshape(shape)
        offset += size
    return views


def num_params(config: SeriesConfig) -> int:
    return sum(int(np.prod(shape)) for shape in config.param_shapes().values())


def _orthogonal(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random orthogonal (size, size) matrix (Keras' Orthogonal: QR of a Gaussian, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((size, size)))
    return q * np.sign(np.diag(r))


def _glorot(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out))


@dataclass
class SeriesModel:
    """Configuration + weights + normalisation. Scratch lives in a `SeriesWorkspace` (workspace.py)."""

    config: SeriesConfig
    flat: np.ndarray  # (P,) all parameters, in the config's dtype
    offset: float = 0.0
    scale: float = 1.0
    params: dict[str, np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.params = param_views(self.flat, self.config)

    @classmethod
    def initialize(cls, config: SeriesConfig, seed: int = 0) -> SeriesModel:
        """Fresh Keras-style weights (module docstring) drawn from `seed`."""
        rng = np.random.default_rng(seed)
        flat = np.zeros(num_params(config))
        params = param_views(flat, config)
        for s, (D, H, n) in enumerate(config.layout().tolist()):
            params[f"Wx{s}"][...] = _glorot(rng, D, H)
            for layer in range(n):
                if layer > 0:
                    params[f"Wu{s}"][layer - 1] = _glorot(rng, H, H)
                params[f"Wh{s}"][layer] = _orthogonal(rng, H)
        if config.dense_head:
            params["Wy"][...] = _glorot(rng, config.units[-1], config.outputs)
        return cls(config, flat.astype(config.dtype))

    @property
    def dtype(self) -> np.dtype:
        return self.flat.dtype

    def layers(self) -> list[dict[str, Any]]:
        """One row per Keras layer: name, type, output shape (None for the batch and time dimensions)
        and parameter count. A recurrent layer of H units over D inputs has H·(D + H + 1)."""
        c = self.config
        rows, below = [], c.inputs
        for index, width in enumerate(c.units):
            sequences = index < len(c.units) - 1 or c.every_step
            shape = [None, None, width] if sequences else [None, width]
            rows.append({"name": f"simple_rnn_{index + 1}", "type": "SimpleRNN", "output_shape": shape,
                         "units": width, "parameters": width * (below + width + 1)})  # fmt: skip
            below = width
        if c.dense_head:
            shape = [None, None, c.outputs] if c.every_step else [None, c.outputs]
            kind = "TimeDistributed(Dense)" if c.every_step else "Dense"
            rows.append({"name": "dense", "type": kind, "output_shape": shape, "units": c.outputs,
                         "parameters": below * c.outputs + c.outputs})  # fmt: skip
        return rows

    def summary(self) -> str:
        """A table like Keras' model.summary(): layers, output shapes, parameter counts and the total."""
        lines = [f"{'Layer (type)':<40}{'Output Shape':<20}{'Param #':>10}", "=" * 70]
        for row in self.layers():
            shape = "(" + ", ".join("None" if d is None else str(d) for d in row["output_shape"]) + ")"
            lines.append(f"{row['name'] + ' (' + row['type'] + ')':<40}{shape:<20}{row['parameters']:>10,}")
        lines += ["=" * 70, f"Total params: {self.flat.size:,}"]
        return "\n".join(lines)

    # ---- arrays in, arrays out (the wrappers around the kernels live in workspace.py) ----

    def predict(self, X: np.ndarray, threads: int = 0) -> np.ndarray:
        """Outputs for X (B, T, D): (B, K), or (B, T, K) for a sequence-to-sequence model, in the data's
        units. Wraps `kernels.series._predict_sharded`."""
        from .workspace import SeriesWorkspace

        return SeriesWorkspace(self).predict(X, threads)

    def forecast(self, X: np.ndarray, steps: int | None = None, threads: int = 0) -> np.ndarray:
        """(B, steps) values following each series of X (B, T, 1) (steps: K by default).

        A direct forecast when steps <= K (the model's K outputs after the last step); beyond K an
        iterated one: the model's own predictions are fed back as inputs, K at a time. Wraps
        `kernels.series._forecast_sharded`."""
        from .workspace import SeriesWorkspace

        return SeriesWorkspace(self).forecast(X, steps or self.config.outputs, threads)

    def fit(self, X: np.ndarray, y: np.ndarray, **options: Any):
        """Train in place; see `charrnn.series.fit.fit` for the options. Returns a `History`."""
        from .fit import fit

        return fit(self, X, y, **options)

    def evaluate(self, X: np.ndarray, y: np.ndarray, threads: int = 0) -> dict[str, float]:
        """{"mse", "mae"} of the model's outputs against y (the shape `predict` returns)."""
        from .baselines import errors

        return errors(self.predict(X, threads), y)

    def copy(self) -> SeriesModel:
        return SeriesModel(self.config, self.flat.copy(), self.offset, self.scale)


# ---- checkpoint I/O ----


def save_model(path: str | Path, model: SeriesModel, meta: dict[str, Any] | None = None) -> None:
    """Write the model (and the caller's JSON-able `meta`) as one .npz, atomically."""
    path = Path(path)
    meta = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": asdict(model.config),
            "normalization": {"offset": model.offset, "scale": model.scale}, **(meta or {})}  # fmt: skip
    contents = {name: np.ascontiguousarray(a) for name, a in model.params.items()}
    contents["meta"] = np.array(json.dumps(meta))
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise CharrnnError(f"cannot write {path}: directory {directory} does not exist")
    try:
        with atomic_writer(path) as handle:
            np.savez(handle, **contents)
    except OSError as error:  # from np.savez (disk full); atomic_writer translates its own failures
        raise CharrnnError(f"cannot write {path}: {error.strerror or error}") from None


def read_meta(path: str | Path) -> dict[str, Any] | None:
    """The JSON metadata of any charrnn .npz checkpoint, or None if the file has none (not a checkpoint,
    unreadable). Reads only the `meta` member."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "meta" not in archive.files:
                return None
            meta = json.loads(str(archive["meta"]))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, json.JSONDecodeError):
        return None
    return meta if isinstance(meta, dict) else None


def is_series_checkpoint(path: str | Path) -> bool:
    meta = read_meta(path) if Path(path).is_file() else None
    return meta is not None and meta.get("format") == CHECKPOINT_FORMAT


def load_model(path: str | Path) -> tuple[SeriesModel, dict[str, Any]]:
    """(model, meta) from a file written by `save_model`; every way it can be wrong is a CharrnnError."""
    path = Path(path)
    if not path.is_file():
        raise CharrnnError(f"model file {path} " + ("is a directory" if path.is_dir() else "does not exist"))
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise CharrnnError(f"{path} is not a readable series model (.npz): {str(error).splitlines()[0]}") from None
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (KeyError, json.JSONDecodeError):
        raise CharrnnError(f"{path} is not a series model: no readable 'meta' array") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CharrnnError(f"{path} is not a charrnn series model (format field missing or wrong)")
    if meta.get("version") != CHECKPOINT_VERSION:
        raise CharrnnError(f"{path}: series model version {meta.get('version')} is not supported "
                           f"(this charrnn reads version {CHECKPOINT_VERSION})")  # fmt: skip
    try:
        config = SeriesConfig(**meta["config"])
        offset, scale = float(meta["normalization"]["offset"]), float(meta["normalization"]["scale"])
    except (KeyError, TypeError, ValueError) as error:
        raise CharrnnError(f"{path}: series model config is invalid: {error}") from None
    flat = np.empty(num_params(config), dtype=config.dtype)
    for name, view in param_views(flat, config).items():
        array = arrays.get(name)
        if array is None:
            raise CharrnnError(f"{path}: parameter {name} is missing")
        if array.shape != view.shape or array.dtype != view.dtype:
            raise CharrnnError(f"{path}: parameter {name} is {array.dtype} {array.shape}, "
                               f"expected {view.dtype} {view.shape}")  # fmt: skip
        view[...] = array
    return SeriesModel(config, flat, offset, scale), meta
