"""charrnn: character-level recurrent language models on the CPU (Numba-JIT Elman RNN).

Library first, CLI second. The Python API (README, "Python API"):

    from charrnn import Model, ModelConfig, TrainConfig, train, load_model, sample, score_text
    from charrnn import prepare_data, attribute, compress, decompress, Vocab, CharrnnError

The names are imported on first use (PEP 562 module `__getattr__`), so `import charrnn` costs a few
milliseconds and does not load numpy or numba until a name that needs them is touched.

`charrnn.train` is the training *function*. Its module is `charrnn/train.py`; import from it by name
(`from charrnn.train import evaluate`) or reach it as `sys.modules["charrnn.train"]`: Python binds a
submodule as an attribute of its package when it is first imported, which would otherwise make
`charrnn.train` the function or the module depending on what was imported first.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import CharrnnError

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "Model": "model",
    "ModelConfig": "config",
    "load_model": "model",
    "TrainConfig": "config",
    "train": "train",
    "prepare_data": "data",
    "sample": "generate",
    "score_text": "score",
    "attribute": "score",
    "Vocab": "vocab",
    "compress": "codec",
    "decompress": "codec",
}

__all__ = ["CharrnnError", "Model", "ModelConfig", "TrainConfig", "Vocab", "attribute", "compress", "decompress",
           "load_model", "prepare_data", "sample", "score_text", "train"]  # fmt: skip

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names come from __getattr__
    from .codec import compress, decompress
    from .config import ModelConfig, TrainConfig
    from .data import prepare_data
    from .generate import sample
    from .model import Model, load_model
    from .score import attribute, score_text
    from .train import train
    from .vocab import Vocab


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The package module, whose one difference is that importing the submodule `charrnn.train` binds
    the function `train`, not the module, as the package attribute `train` (see the docstring)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _EXPORTS and isinstance(value, types.ModuleType) and value.__name__ == f"{__name__}.{name}":
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
