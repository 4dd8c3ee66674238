"""The coder's typed wrappers: feed codes through `kernels.coding._encode_block` / `_decode_block` a block
at a time, carrying the model's state, the escape statistics and the range coder between blocks (so a long
text needs no more memory than one block's output, and progress can be reported).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from .. import kernels
from ..errors import CharrnnError
from ..kernels import coding
from ..model import Model, param_views
from .fileformat import Adaptation

BLOCK = 1 << 16  # characters per kernel call
# A character renormalises at most 3 times per coded symbol (every total is <= 2^24, so a symbol leaves
# range >= 2^48 / 2^24), and codes at most 3 symbols (escape, the table of seen characters, a code point).
MAX_BYTES_PER_CHAR = 9
READ_PAST_END = coding.CODER_BYTES - 1  # how far a decoder reads past the bytes an encoder wrote (exactly)

Progress = Callable[[int], None]  # called with the number of characters just coded


class Damaged(CharrnnError):
    """The coded data is damaged; the message continues "<file> ..." ("is truncated: ...")."""


class _State:
    """Everything both directions carry from character to character, freshly zeroed; with `adapt`, the
    weights are a private copy that learns as the text is coded."""

    def __init__(self, model: Model, adapt: Adaptation | None = None) -> None:
        c = model.config
        if c.vocab_size > coding.MAX_VOCAB:
            raise CharrnnError(f"the codec handles vocabularies of up to {coding.MAX_VOCAB:,} characters; "
                               f"this model has {c.vocab_size:,}")  # fmt: skip
        L, H, V, dtype = c.num_layers, c.hidden_size, c.vocab_size, model.dtype
        flat = model.flat.copy() if adapt else model.flat
        p = param_views(flat, c)
        self.weights = (p["Wx"], p["Wu"], p["Wh"], p["bh"], p["Wy"], p["by"])
        # the rational tanh for every tanh model: float64 models use libm's tanh elsewhere, which differs
        # between C libraries (strict.py)
        self.act = kernels.ACT_RELU if c.activation == "relu" else kernels.ACT_TANH
        self.h = np.zeros((L, 1, H), dtype)
        self.counters = np.zeros(4, np.int64)
        self.oov = np.zeros(coding.OOV_SLOTS, np.int64)
        self.oov_counts = np.zeros(coding.OOV_SLOTS, np.int64)
        self.scratch = (np.empty((1, V), dtype), np.empty(V + 1, np.int64), np.empty((1, 1, H), dtype),
                        np.empty((1, H), dtype), np.zeros((1, 1), np.int64))  # fmt: skip
        W = adapt.window if adapt else 0
        grad = np.zeros(flat.size if adapt else 0, dtype)
        g = param_views(grad, c) if adapt else {n: np.zeros((0,) * len(s), dtype) for n, s in c.param_shapes().items()}
        self.adapt = (W, float(adapt.lr) if adapt else 0.0, (
            flat if adapt else np.zeros(0, dtype), grad, g["Wx"], g["Wu"], g["Wh"], g["bh"], g["Wy"], g["by"],
            np.zeros((L, W, 1, H), dtype), np.zeros((W, 1, H), dtype), np.zeros((W, V), dtype),
            np.zeros((W, 1, H), dtype), np.zeros((1, H), dtype), np.zeros((0, 1, 1, 1), dtype),
            np.zeros(W + 1, np.int64), np.zeros((L, 1, H), dtype),
        ))  # fmt: skip

    @property
    def escapes(self) -> int:
        return int(self.counters[1])


def encode(model: Model, blocks: Iterable[np.ndarray], adapt: Adaptation | None = None,
           progress: Progress | None = None) -> tuple[bytes, int]:  # fmt: skip
    """(the range coder's bytes for the codes, given as blocks of (n,) int64, how many of them escaped the
    vocabulary)."""
    state = _State(model, adapt)
    rc = np.array(coding.ENCODER_START, np.int64)
    pieces = []
    coded = 0
    for codes in blocks:
        block = np.ascontiguousarray(codes, dtype=np.int64)
        out = np.empty(MAX_BYTES_PER_CHAR * block.size + 16 + int(rc[3]), np.uint8)  # + the pending bytes
        coding._encode_block(block, *state.weights, state.h, state.act, state.counters, state.oov, state.oov_counts,
                             rc, out, *state.scratch, *state.adapt)  # fmt: skip
        pieces.append(_take(out, rc))
        coded += block.size
        if progress:
            progress(block.size)
    if coded:
        out = np.empty(16 + int(rc[3]), np.uint8)
        coding._flush(rc, out)
        pieces.append(_take(out, rc))
    return b"".join(pieces), state.escapes


def _take(out: np.ndarray, rc: np.ndarray) -> bytes:
    """The bytes written into out since the last call (rc[4] counts them), and rewind for the next block."""
    written = max(int(rc[4]), 0)
    rc[4] = min(int(rc[4]), 0)
    return out[:written].tobytes()


def decode(model: Model, payload: bytes, count: int, adapt: Adaptation | None = None,
           progress: Progress | None = None) -> Iterator[np.ndarray]:  # fmt: skip
    """The `count` codes encoded in payload, as blocks of at most BLOCK; Damaged (raised by the iteration)
    if the payload is damaged, truncated or has bytes after the coded data."""
    state = _State(model, adapt)
    if count == 0:
        if payload:
            raise Damaged(f"is corrupt: {len(payload)} byte(s) of data after an empty text")
        return
    data = np.frombuffer(payload, np.uint8)
    rd = np.zeros(4, np.int64)
    coding._start_decoder(data, rd)
    for start in range(0, count, BLOCK):
        block = np.empty(min(BLOCK, count - start), np.int64)
        done = coding._decode_block(data, block, *state.weights, state.h, state.act, state.counters, state.oov,
                                    state.oov_counts, rd, *state.scratch, *state.adapt)  # fmt: skip
        if rd[3] or done < block.size:
            raise Damaged(_damage(int(rd[2]), len(payload), "the coded data is damaged"))
        if progress:
            progress(block.size)
        if start + block.size == count and int(rd[2]) != len(payload) + READ_PAST_END:
            raise Damaged(_damage(int(rd[2]), len(payload), "the coded data does not end where the text does"))
        yield block


def _damage(read: int, size: int, what: str) -> str:
    if read > size + READ_PAST_END:
        return f"is truncated: {what} ({read - size - READ_PAST_END:,} byte(s) missing)"
    return f"is corrupt: {what}"
