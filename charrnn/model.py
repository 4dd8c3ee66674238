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
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_writer
from .config import ACTIVATIONS, DTYPES, ModelConfig  # noqa: F401 (ModelConfig lives in config.py)
from .errors import CharrnnError
from .safeload import NpzReader, require_memory
from .vocab import END_CODEPOINT, Vocab

CHECKPOINT_FORMAT = "charrnn-checkpoint"
CHECKPOINT_VERSION = 2  # 2: the vocabulary may end with the end-of-document symbol (documents models)
READABLE_VERSIONS = (1, 2)
PARAM_NAMES = ("Wx", "Wu", "Wh", "bh", "Wy", "by")
META_LIMIT = 16 << 20  # bytes of JSON metadata: far above any real checkpoint's, far below harm


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
    format version, a missing or mis-shaped array, metadata of the wrong type, sizes that do not match the
    configuration or the machine, non-finite weights) raises CharrnnError naming the file and the problem.
    Sizes are checked from the headers before any array is read (safeload.py); arrays the format does
    not define are never read.
    """
    path = Path(path)
    if not path.exists():
        raise CharrnnError(f"model file {path} does not exist")
    if path.is_dir():
        raise CharrnnError(f"model file {path} is a directory")
    if not path.is_file():
        raise CharrnnError(f"model file {path} is not a regular file")
    with NpzReader(path) as archive:
        if "meta" not in archive or "vocab" not in archive:
            raise CharrnnError(f"{path} is not a charrnn checkpoint: it has no 'meta'/'vocab' arrays")
        meta = _read_meta(path, archive)
        config = _read_config(path, meta)
        vocab = _read_vocab(path, archive, config, meta["version"])
        require_memory(2 * num_params(config) * np.dtype(config.dtype).itemsize, f"{path}: the model")
        flat = np.empty(num_params(config), dtype=config.dtype)
        views = param_views(flat, config)
        for name, shape in config.param_shapes().items():
            views[name][...] = archive.read(name, shape, (config.dtype,))
            if not np.isfinite(views[name]).all():
                raise CharrnnError(f"{path}: parameter {name} holds non-finite values (NaN or inf)")
        extras = _read_extras(path, archive, config)
    return Model(config, vocab, flat), meta, extras


def _read_meta(path: Path, archive: NpzReader) -> dict[str, Any]:
    shape, dtype = archive.header("meta")
    if shape != () or dtype.kind != "U":
        raise CharrnnError(f"{path}: checkpoint metadata is not a JSON string")
    try:
        meta = json.loads(str(archive.read("meta", (), max_bytes=META_LIMIT)))
    except (json.JSONDecodeError, RecursionError):
        raise CharrnnError(f"{path}: checkpoint metadata is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise CharrnnError(f"{path} is not a charrnn checkpoint (format field missing or wrong)")
    if meta.get("version") not in READABLE_VERSIONS or isinstance(meta.get("version"), bool):
        raise CharrnnError(
            f"{path}: checkpoint format version {meta.get('version')!r} is not supported "
            f"(this charrnn reads versions {', '.join(map(str, READABLE_VERSIONS))})"
        )
    return meta


def _read_config(path: Path, meta: dict[str, Any]) -> ModelConfig:
    """The architecture, each field of the type it must have (JSON may hold 2.0, true or "2" anywhere)."""
    raw = meta.get("config")
    if not isinstance(raw, dict):
        raise CharrnnError(f"{path}: checkpoint config is missing or not an object")
    kinds = {"int": int, "str": str, "float": float, "bool": bool}
    for spec in fields(ModelConfig):
        if spec.name not in raw:
            continue
        value = raw[spec.name]
        kind = spec.type if isinstance(spec.type, type) else kinds.get(str(spec.type).split(" ")[0])
        if kind is not None and (type(value) is not kind and not (kind is float and type(value) is int)):
            raise CharrnnError(f"{path}: checkpoint config field {spec.name} must be {kind.__name__}, got {value!r}")
    unknown = sorted(set(raw) - {spec.name for spec in fields(ModelConfig)})
    if unknown:
        names = ", ".join(name if name.isprintable() else repr(name) for name in unknown)  # one line, always
        raise CharrnnError(f"{path}: checkpoint config has unknown field(s) {names}")
    try:
        return ModelConfig(**raw)
    except TypeError as error:
        raise CharrnnError(f"{path}: checkpoint config is invalid: {_short(error)}") from None
    except CharrnnError as error:
        raise CharrnnError(f"{path}: checkpoint config is invalid: {error}") from None


def _read_vocab(path: Path, archive: NpzReader, config: ModelConfig, version: int) -> Vocab:
    """The vocabulary: sorted distinct Unicode scalar values, then (version 2, documents models) possibly
    the end-of-document symbol END_CODEPOINT last."""
    codepoints = archive.read("vocab", (config.vocab_size,), ("int32", "int64", "uint32"))
    if version >= 2 and codepoints.size and codepoints[-1] == END_CODEPOINT:
        return Vocab.from_codepoints(np.append(_read_chars(path, codepoints[:-1]), END_CODEPOINT))
    return Vocab.from_codepoints(_read_chars(path, codepoints))


def _read_chars(path: Path, codepoints: np.ndarray) -> np.ndarray:
    bad = (codepoints < 0) | (codepoints > 0x10FFFF) | ((codepoints >= 0xD800) & (codepoints <= 0xDFFF))
    if bad.any():
        raise CharrnnError(f"{path}: vocabulary holds an invalid code point ({int(codepoints[bad][0])})")
    if codepoints.size > 1 and not (np.diff(codepoints.astype(np.int64)) > 0).all():
        raise CharrnnError(f"{path}: vocabulary is not sorted distinct code points")
    return codepoints


def _read_extras(path: Path, archive: NpzReader, config: ModelConfig) -> dict[str, np.ndarray]:
    """The arrays training adds: optimizer slots `optim.*` (P,), the carried hidden state (L, B, H), and for a
    documents model the hashes of its documents `documents.train`, `documents.val` (n,) uint64."""
    extras = {}
    for name in archive.names():
        if name in ("documents.train", "documents.val"):
            shape, _ = archive.header(name)
            if len(shape) != 1:
                raise CharrnnError(f"{path}: array {name!r} has shape {shape}, expected one dimension")
            extras[name] = archive.read(name, shape, ("uint64",))
        elif name.startswith("optim."):
            extras[name] = archive.read(name, (num_params(config),), (config.dtype,))
        elif name == "hidden":
            shape, _ = archive.header(name)
            L, H = config.num_layers, config.hidden_size
            if len(shape) != 3 or shape[0] != L or shape[2] != H:
                raise CharrnnError(f"{path}: array 'hidden' has shape {shape}, expected ({L}, batch, {H})")
            extras[name] = archive.read(name, shape, (config.dtype,))
    return extras


def load_model(path: str | Path) -> Model:
    """Just the model (weights, vocabulary, architecture) of a checkpoint."""
    return load_checkpoint(path)[0]


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
