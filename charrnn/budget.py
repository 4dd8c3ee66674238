"""Memory a request needs, estimated from its sizes before anything is allocated.

Every size a user can type (`--hidden`, `--layers`, `--batch-size`, `--seq-len`, `sample --num-samples`,
`score --alternatives`, `curves --width/--height`) is checked here against the memory available now, so
an impossible request is one line with the estimate ("--hidden 100000 --layers 2 needs ~1006.0 GiB for
training ...; this machine has 21.0 GiB available") instead of a crash, or a machine swapping for an
hour. Checkpoint sizes are checked the same way when they are read (safeload.py).

The estimates count the big arrays and ignore the small ones; they are lower bounds, within a few per
cent for the sizes where they matter. This module imports nothing heavy (the CLI calls it before the
corpus is read).
"""

from __future__ import annotations

import os

from .errors import CharrnnError
from .safeload import available_memory, gib

OPTIMIZER_SLOTS = {"adam": 2, "rmsprop": 1, "adagrad": 1, "sgd": 1}


def parameter_count(vocab_size: int, hidden: int, layers: int) -> int:
    """P = V·H (Wx) + (L-1)·H² (Wu) + L·H² (Wh) + L·H (bh) + H·V (Wy) + V (by)."""
    V, H, L = vocab_size, hidden, layers
    return V * H + (L - 1) * H * H + L * H * H + L * H + H * V + V


def training_bytes(vocab_size: int, hidden: int, layers: int, itemsize: int, batch_size: int, seq_len: int,
                   optimizer: str = "adam", dropout: bool = True, shards: int | None = None) -> int:  # fmt: skip
    """Bytes a training run holds: weights, gradient, optimizer slots, the rollback snapshot of weights and
    slots, one gradient per shard (workspace.py), and each shard's activations (kernels.lm.scratch_size)."""
    shards = shards or min(batch_size, os.cpu_count() or 1)
    rows = -(-batch_size // shards)
    params = parameter_count(vocab_size, hidden, layers)
    slots = OPTIMIZER_SLOTS.get(optimizer, 2)
    slab = seq_len * rows * hidden
    scratch = (layers + 2) * slab + seq_len * rows * vocab_size + rows * hidden + (2 * layers * slab if dropout else 0)
    hidden_state = layers * batch_size * hidden
    return itemsize * (params * (3 + 2 * slots + shards) + shards * scratch + 3 * hidden_state)


def sampling_bytes(vocab_size: int, hidden: int, layers: int, itemsize: int, num_samples: int, length: int,
                   keep_text: bool, block: int = 256) -> int:  # fmt: skip
    """Bytes `num_samples` samples of `length` characters hold: per sample its hidden state, logits and
    scratch, one block of ids, and (when the texts are kept) up to 4 bytes per character of text plus
    the pieces it is joined from."""
    per_sample = itemsize * (layers * hidden + vocab_size + 2 * hidden) + 8 * (min(block, length) + 12)
    text = 2 * 4 * length if keep_text else 0
    return num_samples * (per_sample + text)


def require(nbytes: int, what: str) -> None:
    """CharrnnError with the estimate when `nbytes` cannot fit in the memory available now."""
    free = available_memory()
    if nbytes > free:
        raise CharrnnError(f"{what} needs ~{gib(nbytes)}; this machine has {gib(free)} available")


def check_training(vocab_size: int, hidden: int, layers: int, dtype: str, batch_size: int, seq_len: int,
                   optimizer: str, dropout: bool) -> None:  # fmt: skip
    """Refuse an architecture and batch whose training cannot fit in memory (vocab_size may be a lower
    bound: the CLI checks once before reading the corpus, and again when the vocabulary is known)."""
    itemsize = 8 if dtype == "float64" else 4
    nbytes = training_bytes(vocab_size, hidden, layers, itemsize, batch_size, seq_len, optimizer, dropout)
    params = parameter_count(vocab_size, hidden, layers)
    require(nbytes, f"--hidden {hidden} --layers {layers} ({params:,} parameters, {dtype}) with --batch-size "
                    f"{batch_size} --seq-len {seq_len}: training")  # fmt: skip
