"""The model: configuration, parameters, initialisation, checkpoint I/O.

Parameters (row-vector convention: activations are rows, weights sit on the right of each product):

    name  shape         role
    Wx    (V, H)        layer-1 input weights; x_t one-hot, so x_t·Wx is the row Wx[id]
    Wu    (L-1, H, H)   input weights of layers 2..L: h(l-1)_t · Wu[l-2]
    Wh    (L, H, H)     recurrent weights: h_{t-1} · Wh[l-1]
    bh    (L, H)        hidden biases
    Wy    (H, V)        output weights: hL_t · Wy
    by    (V,)          output biases

All parameters are views into one flat vector (`Model.flat`), so the optimizer, gradient clipping and
the divergence check each run over a single array.

Initialisation (documented in the README): every weight matrix uniform in ±1/sqrt(H) (PyTorch's nn.RNN
scheme), biases zero. A random orthogonal Wh (gain 1) was the default before: measured on tiny
Shakespeare (H=256, 3000 steps, same seed) it learned more slowly (validation 1.727 vs 1.713); the
uniform Wh's spectral radius is about 1/sqrt(3), a contracting start.

The checkpoint is one `.npz` (see `save_checkpoint`) readable with `np.load(path, allow_pickle=False)`.
Format versions: 1, and 2 = a vocabulary that ends with the end-of-document symbol (code point 0x110000,
documents models, vocab.py). A model without it is still written as version 1, so an older charrnn reads
every checkpoint it can understand, and refuses a documents model in one line (unsupported version).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import kernels
from .atomic import atomic_writer
from .errors import CharrnnError
from .vocab import Vocab

CHECKPOINT_FORMAT = "charrnn-checkpoint"
CHECKPOINT_VERSION = 2  # 2: the vocabulary may end with the end-of-document symbol (documents models)
READABLE_VERSIONS = (1, 2)
PARAM_NAMES = ("Wx", "Wu", "Wh", "bh", "Wy", "by")
ACTIVATIONS = ("tanh", "relu")
DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture. `vocab_size` comes from the vocabulary; the rest from the user."""

    vocab_size: int
    hidden_size: int = 512
    num_layers: int = 2
    activation: str = "tanh"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.vocab_size < 1:
            raise CharrnnError(f"vocabulary size must be >= 1, got {self.vocab_size}")
        if self.hidden_size < 1:
            raise CharrnnError(f"--hidden must be >= 1, got {self.hidden_size}")
        if self.num_layers < 1:
            raise CharrnnError(f"--layers must be >= 1, got {self.num_layers}")
        if self.activation not in ACTIVATIONS:
            raise CharrnnError(f"--activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        if self.dtype not in DTYPES:
            raise CharrnnError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        V, H, L = self.vocab_size, self.hidden_size, self.num_layers
        return {"Wx": (V, H), "Wu": (L - 1, H, H), "Wh": (L, H, H), "bh": (L, H), "Wy": (H, V), "by": (V,)}

    @property
    def activation_code(self) -> int:
        """The kernels' activation flag: float64 uses exact libm tanh (gradient checks), float32 the
        vectorised approximation (|error| < 3e-7, below float32 resolution near ±1)."""
        if self.activation == "relu":
            return kernels.ACT_RELU
        return kernels.ACT_TANH_EXACT if self.dtype == "float64" else kernels.ACT_TANH


def param_views(flat: np.ndarray, config: ModelConfig) -> dict[str, np.ndarray]:
    """Split a flat (P,) vector into named, shaped views (no copies)."""
    views, offset = {}, 0
    for name, shape in config.param_shapes().items():
        size = int(np.prod(shape))
        views[name] = flat[offset : offset + size].reshape(shape)
        offset += size
    return views


def num_params(config: ModelConfig) -> int:
    return sum(int(np.prod(shape)) for shape in config.param_shapes().values())


@dataclass
class Model:
    """Parameters plus the vocabulary and architecture that give them meaning: configuration, vocabulary,
    weights, nothing else, so a Model is cheap to copy or pickle to another process. Training scratch and
    per-shard gradients live in a `Workspace` (workspace.py)."""

    config: ModelConfig
    vocab: Vocab
    flat: np.ndarray  # (P,) all parameters
    params: dict[str, np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.params = param_views(self.flat, self.config)

    def __getstate__(self) -> dict[str, Any]:  # the views are rebuilt, not pickled
        return {"config": self.config, "vocab": self.vocab, "flat": self.flat}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.config, self.vocab, self.flat = state["config"], state["vocab"], state["flat"]
        self.__post_init__()

    @classmethod
    def initialize(cls, config: ModelConfig, vocab: Vocab, rng: np.random.Generator) -> Model:
        """Fresh weights (scheme in the module docstring), drawn from `rng`."""
        if config.vocab_size != len(vocab):
            raise CharrnnError(f"config has vocab_size {config.vocab_size} but vocabulary has {len(vocab)}")
        flat = np.zeros(num_params(config), dtype=np.float64)
        params = param_views(flat, config)
        bound = 1.0 / np.sqrt(config.hidden_size)
        for name in ("Wx", "Wu", "Wh", "Wy"):
            params[name][...] = rng.uniform(-bound, bound, size=params[name].shape)
        return cls(config, vocab, flat.astype(config.dtype))

    @property
    def dtype(self) -> np.dtype:
        return self.flat.dtype

    def initial_state(self, batch_size: int) -> np.ndarray:
        """(L, B, H) zeros: the hidden state at the start of a text."""
        return np.zeros((self.config.num_layers, batch_size, self.config.hidden_size), dtype=self.dtype)

    def hidden_states(self, ids: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Every layer's hidden state after each of ids (T,), fed from `state` (L, 1, H): (L, T, 1, H).
        hidden_states(...)[:, -1] is the state after the last id. No dropout. Wraps
        `kernels.rnn._forward_layers` over a row lookup."""
        from .kernels import inputs, rnn

        ids = _ids(ids)[None, :]
        c = self.config
        hidden = np.empty((c.num_layers, ids.shape[1], 1, c.hidden_size), self.dtype)
        pre = np.empty(hidden.shape[1:], self.dtype)
        no_dropout = np.empty((0, 1, 1, 1), self.dtype)
        p = self.params
        inputs._lookup(ids, p["Wx"], pre)
        rnn._forward_layers(pre, p["Wu"], p["Wh"], p["bh"], _state(state, self.dtype), hidden, no_dropout,
                            no_dropout, c.activation_code)  # fmt: skip
        return hidden

    def summary(self) -> list[tuple[str, tuple[int, ...], int]]:
        """(name, shape, count) per tensor, like Keras' model.summary()."""
        return [(name, tuple(a.shape), int(a.size)) for name, a in self.params.items()]


def _ids(ids: np.ndarray) -> np.ndarray:
    """Kernels take int64 ids (one compiled specialisation, whatever dtype the data is stored in)."""
    return np.ascontiguousarray(ids, dtype=np.int64)


def _state(state: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.ascontiguousarray(state, dtype=dtype)


# ---- checkpoint I/O ----


def save_checkpoint(path: str | Path, model: Model, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write one self-describing .npz atomically (temporary file in the same directory, fsync, rename).

    Contents: the parameters under their names (PARAM_NAMES), `vocab` (V,) int32 code points, `meta`
    (a JSON string: format, version, config and whatever the caller adds), and the caller's extra
    arrays (optimizer state, carried hidden state) under their own names.
    """
    path = Path(path)
    version = CHECKPOINT_VERSION if model.vocab.has_end else 1  # the oldest version that holds this model
    meta = {"format": CHECKPOINT_FORMAT, "version": version, "config": asdict(model.config), **meta}
    contents = {name: np.ascontiguousarray(a) for name, a in model.params.items()}
    contents["vocab"] = model.vocab.codepoints()
    contents["meta"] = np.array(json.dumps(meta))
    for name, array in arrays.items():
        if name in contents:
            raise ValueError(f"checkpoint array name {name!r} is reserved")
        contents[name] = array
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise CharrnnError(f"cannot write {path}: directory {directory} does not exist")
    try:
        with atomic_writer(path) as handle:
            np.savez(handle, **contents)
    except OSError as error:  # from np.savez (disk full); atomic_writer translates its own failures
        raise CharrnnError(f"cannot write {path}: {error.strerror or error}") from None


def load_checkpoint(path: str | Path) -> tuple[Model, dict[str, Any], dict[str, np.ndarray]]:
    """Read a checkpoint written by `save_checkpoint`: (model, meta, extra arrays).

    Every way a file can be wrong (missing, not a zip, truncated, another program's .npz, another
    format version, a missing or mis-shaped array) raises CharrnnError naming the file and the problem.
    """
    path = Path(path)
    if not path.exists():
        raise CharrnnError(f"model file {path} does not exist")
    if path.is_dir():
        raise CharrnnError(f"model file {path} is a directory")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise CharrnnError(f"{path} is not a readable charrnn checkpoint (.npz): {_short(error)}") from None
    if "meta" not in arrays or "vocab" not in arrays:
        raise CharrnnError(f"{path} is not a charrnn checkpoint: it has no 'meta'/'vocab' arrays")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError:
        raise CharrnnError(f"{path}: checkpoint metadata is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CharrnnError(f"{path} is not a charrnn checkpoint (format field missing or wrong)")
    if meta.get("version") not in READABLE_VERSIONS:
        raise CharrnnError(
            f"{path}: checkpoint format version {meta.get('version')} is not supported "
            f"(this charrnn reads versions {', '.join(map(str, READABLE_VERSIONS))})"
        )
    try:
        config = ModelConfig(**meta["config"])
    except (KeyError, TypeError) as error:
        raise CharrnnError(f"{path}: checkpoint config is invalid: {_short(error)}") from None
    try:
        vocab = Vocab.from_codepoints(arrays.pop("vocab"))
    except CharrnnError as error:
        raise CharrnnError(f"{path}: {error}") from None
    if vocab.has_end and meta["version"] < 2:
        raise CharrnnError(f"{path}: a version {meta['version']} checkpoint cannot hold an end-of-document symbol")
    if len(vocab) != config.vocab_size:
        raise CharrnnError(f"{path}: vocabulary has {len(vocab)} characters, config says {config.vocab_size}")
    flat = np.empty(num_params(config), dtype=config.dtype)
    views = param_views(flat, config)
    for name, shape in config.param_shapes().items():
        if name not in arrays:
            raise CharrnnError(f"{path}: parameter {name} is missing")
        array = arrays.pop(name)
        if array.shape != shape:
            raise CharrnnError(f"{path}: parameter {name} has shape {array.shape}, expected {shape}")
        if array.dtype != np.dtype(config.dtype):
            raise CharrnnError(f"{path}: parameter {name} has dtype {array.dtype}, expected {config.dtype}")
        views[name][...] = array
    return Model(config, vocab, flat), meta, arrays


def load_model(path: str | Path) -> Model:
    """Just the model (weights, vocabulary, architecture) of a checkpoint."""
    return load_checkpoint(path)[0]


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def checkpoint_info(path: str | Path) -> dict[str, Any]:
    """What `charrnn info` shows: architecture, parameters per tensor, vocabulary, training progress."""
    model, meta, _ = load_checkpoint(path)
    best = meta.get("best_val_loss")
    return {
        "path": str(path),
        "format_version": meta["version"],
        "config": asdict(model.config),
        "parameters": [{"name": n, "shape": list(s), "count": c} for n, s, c in model.summary()],
        "total_parameters": int(model.flat.size),
        "vocab_size": len(model.vocab),
        "vocab": model.vocab.chars,
        "end_symbol": model.vocab.has_end,
        "documents": meta.get("documents"),
        "steps": meta.get("step", 0),
        "epoch": meta.get("epoch", 0),
        "best_val_loss_nats": best,
        "best_val_loss_bits": None if best is None else best / float(np.log(2.0)),
        "train_config": meta.get("train_config"),
    }
