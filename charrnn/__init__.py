"""charrnn: character-level recurrent language models on the CPU (Numba-JIT Elman RNN).

Library first, CLI second. The Python API:

    from charrnn import Vocab, Model, ModelConfig, TrainConfig, train, load_model
"""

from .errors import CharrnnError
from .vocab import Vocab

__all__ = ["CharrnnError", "Vocab"]
__version__ = "0.1.0"
