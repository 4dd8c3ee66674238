"""Scoring many sequences at batch speed: documents, lines, paragraphs, candidate readings.

Each sequence is scored on its own from a zero state, under the same convention as `score.score_ids`
(the first id only conditions; every later id is scored given everything before it in that sequence).
Sequences are sorted longest first and padded into rows of a (B, T) batch, so the rows still running at
any time step are a prefix of the batch and finished rows cost nothing; time runs in chunks with each
row's state carried, so memory stays flat for long sequences. Shards of `ROWS_PER_SHARD` rows run in
parallel, one per core. `score_sequences_from` feeds each sequence from a given state instead and
returns the states it ends in, so a long text, or the shared prefix of many, can be scored in pieces.

A sequence's log-probabilities equal `score_ids` on it alone up to float rounding (the recurrence's
products run in BLAS over a shard's rows here, in the small-product loop for one row there), and they
depend only on the input — which sequences share its batch — never on the thread count or the machine's
cores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import CharrnnError
from .kernels import scoring
from .model import Model

ROWS_PER_SHARD = 32  # BLAS takes over from 16 rows; 32 keeps both cores busy from 64 sequences on
BATCH_ROWS = 256  # sequences padded together: enough to fill the shards, few enough to keep lengths alike
CHUNK = 256  # time steps per kernel call: activations of BATCH_ROWS x CHUNK x H stay a few MB


def shard_bounds(rows: int) -> np.ndarray:
    """(S+1,) boundaries of fixed-size shards: the split depends on the batch only, not on the machine."""
    return np.append(np.arange(0, rows, ROWS_PER_SHARD), rows).astype(np.int64)


def score_sequences(model: Model, sequences: Sequence[np.ndarray], batch_rows: int = BATCH_ROWS,
                    chunk_len: int = CHUNK) -> list[np.ndarray]:  # fmt: skip
    """log p of every id after the first of each sequence of ids: a list of (len(seq) - 1,) float64 arrays
    (empty for sequences shorter than 2), in the input order. Wraps `kernels.scoring._score_rows`."""
    return _score_all(model, sequences, None, batch_rows, chunk_len)[0]


def score_sequences_from(model: Model, sequences: Sequence[np.ndarray], states: np.ndarray,
                         batch_rows: int = BATCH_ROWS,
                         chunk_len: int = CHUNK) -> tuple[list[np.ndarray], np.ndarray]:  # fmt: skip
    """`score_sequences`, each of the S sequences fed from its own state instead of a zero one:
    states (L, S, H) is the hidden state before each sequence's first id. Returns (log-probabilities,
    final states (L, S, H)): sequence s's final state is the state after its last id but one, i.e. after
    every id that was fed (its last id is only predicted), and states[:, s] for sequences shorter than 2.
    Scoring a text in pieces that overlap by one id, each piece from the previous one's final state,
    gives the log-probabilities of the whole (the prefix sharing of `linescore` is built on this)."""
    L, H = model.config.num_layers, model.config.hidden_size
    states = np.asarray(states)
    if states.shape != (L, len(sequences), H):
        raise CharrnnError(f"states must have shape {(L, len(sequences), H)}, got {states.shape}")
    return _score_all(model, sequences, states.astype(model.dtype, copy=False), batch_rows, chunk_len)


def _score_all(model: Model, sequences: Sequence[np.ndarray], states: np.ndarray | None, batch_rows: int,
               chunk_len: int) -> tuple[list[np.ndarray], np.ndarray | None]:  # fmt: skip
    """Both entry points: states None means zero states (and no final states are returned)."""
    if batch_rows < 1 or chunk_len < 1:
        raise CharrnnError(f"batch rows and chunk length must be >= 1, got {batch_rows} and {chunk_len}")
    V = model.config.vocab_size
    arrays = [np.asarray(s, dtype=np.int64).ravel() for s in sequences]
    for index, ids in enumerate(arrays):
        if ids.size and (ids.min() < 0 or ids.max() >= V):
            raise CharrnnError(f"sequence {index}: ids must be in [0, {V}), got {ids.min()}..{ids.max()}")
    results = [np.empty(max(ids.size - 1, 0), dtype=np.float64) for ids in arrays]
    finals = None if states is None else states.copy()
    order = sorted(range(len(arrays)), key=lambda i: -arrays[i].size)  # stable: ties keep input order
    for start in range(0, len(order), batch_rows):
        members = [i for i in order[start : start + batch_rows] if arrays[i].size >= 2]
        if members:
            state = model.initial_state(len(members)) if states is None else states[:, members]
            _score_batch(model, [arrays[i] for i in members], [results[i] for i in members], state, chunk_len)
            if finals is not None:
                finals[:, members] = state
    return results, finals


def _score_batch(model: Model, rows: list[np.ndarray], outputs: list[np.ndarray], state: np.ndarray,
                 chunk_len: int) -> None:  # fmt: skip
    """Score rows (sorted longest first, each >= 2 ids) into outputs, chunk by chunk in time, from
    state (L, B, H), which is updated in place to each row's final state."""
    B = len(rows)
    positions = np.array([r.size - 1 for r in rows], dtype=np.int64)  # scored positions per row
    padded = np.zeros((B, int(positions[0]) + 1), dtype=np.int64)
    for b, r in enumerate(rows):
        padded[b, : r.size] = r
    p = model.params
    logp = np.empty((B, min(chunk_len, int(positions[0]))), dtype=np.float64)
    for t0 in range(0, int(positions[0]), chunk_len):
        active = int(np.count_nonzero(positions > t0))  # a prefix: rows are sorted longest first
        t1 = min(t0 + chunk_len, int(positions[0]))
        lengths = np.clip(positions[:active] - t0, 0, t1 - t0)
        x = np.ascontiguousarray(padded[:active, t0:t1])
        y = np.ascontiguousarray(padded[:active, t0 + 1 : t1 + 1])
        h0 = np.ascontiguousarray(state[:, :active])
        h_final = np.empty_like(h0)
        scoring._score_rows(x, y, lengths, p["Wx"], p["Wu"], p["Wh"], p["bh"], p["Wy"], p["by"], h0, h_final,
                            shard_bounds(active), logp, model.config.activation_code)  # fmt: skip
        state[:, :active] = h_final
        for b in range(active):
            outputs[b][t0 : t0 + lengths[b]] = logp[b, : lengths[b]]
