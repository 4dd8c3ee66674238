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
    flat, offsets, lengths = _pack(sequences)
    out, out_starts, _ = score_packed(model, flat, offsets, lengths, None, batch_rows, chunk_len)
    return np.split(out, out_starts[1:-1]) if len(sequences) else []


def score_sequences_from(model: Model, sequences: Sequence[np.ndarray], states: np.ndarray,
                         batch_rows: int = BATCH_ROWS,
                         chunk_len: int = CHUNK) -> tuple[list[np.ndarray], np.ndarray]:  # fmt: skip
    """`score_sequences`, each of the S sequences fed from its own state instead of a zero one:
    states (L, S, H) is the hidden state before each sequence's first id. Returns (log-probabilities,
    final states (L, S, H)): sequence s's final state is the state after its last id but one, i.e. after
    every id that was fed (its last id is only predicted), and states[:, s] for sequences shorter than 2.
    Scoring a text in pieces that overlap by one id, each piece from the previous one's final state,
    gives the log-probabilities of the whole (the prefix sharing of `linescore` is built on this)."""
    flat, offsets, lengths = _pack(sequences)
    out, out_starts, finals = score_packed(model, flat, offsets, lengths, states, batch_rows, chunk_len)
    return (np.split(out, out_starts[1:-1]) if len(sequences) else []), finals


def _pack(sequences: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrays = [np.asarray(s, dtype=np.int64).ravel() for s in sequences]
    lengths = np.array([a.size for a in arrays], dtype=np.int64)
    flat = np.concatenate(arrays) if arrays else np.empty(0, dtype=np.int64)
    return flat, np.cumsum(lengths) - lengths, lengths


def score_packed(model: Model, flat: np.ndarray, offsets: np.ndarray, lengths: np.ndarray,
                 states: np.ndarray | None = None, batch_rows: int = BATCH_ROWS,
                 chunk_len: int = CHUNK) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Both of the above without a Python step per sequence (callers with thousands of short pieces):
    sequence s is flat[offsets[s] : offsets[s] + lengths[s]] (sequences may overlap in flat), fed from
    states[:, s] (L, S, H) or a zero state when states is None. Returns (log-probabilities (P,) float64,
    out_starts (S+1,): sequence s's are out[out_starts[s] : out_starts[s + 1]], final states (L, S, H))."""
    if batch_rows < 1 or chunk_len < 1:
        raise CharrnnError(f"batch rows and chunk length must be >= 1, got {batch_rows} and {chunk_len}")
    L, H, V = model.config.num_layers, model.config.hidden_size, model.config.vocab_size
    flat = np.ascontiguousarray(flat, dtype=np.int64)
    offsets, lengths = np.asarray(offsets, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
    S = offsets.size
    outside = S and (offsets.min() < 0 or lengths.min() < 0 or (offsets + lengths).max() > flat.size)
    if lengths.shape != (S,) or outside:
        raise CharrnnError(f"offsets and lengths must describe {S} sequences inside {flat.size} ids")
    if flat.size and (flat.min() < 0 or flat.max() >= V):  # name the first sequence with a bad id
        for s, (o, n) in enumerate(zip(offsets.tolist(), lengths.tolist(), strict=True)):
            ids = flat[o : o + n]
            if n and (ids.min() < 0 or ids.max() >= V):
                raise CharrnnError(f"sequence {s}: ids must be in [0, {V}), got {ids.min()}..{ids.max()}")
    if states is None:
        finals = model.initial_state(S)
    else:
        if np.shape(states) != (L, S, H):
            raise CharrnnError(f"states must have shape {(L, S, H)}, got {np.shape(states)}")
        finals = np.array(states, dtype=model.dtype)
    scored = np.maximum(lengths - 1, 0)
    out_starts = np.concatenate(([0], np.cumsum(scored))).astype(np.int64)
    out = np.empty(int(out_starts[-1]), dtype=np.float64)
    order = np.argsort(-lengths, kind="stable")  # longest first; ties keep input order
    order = order[lengths[order] >= 2]
    for start in range(0, order.size, batch_rows):
        rows = order[start : start + batch_rows]
        state = np.ascontiguousarray(finals[:, rows])
        _score_batch(model, flat, offsets[rows], lengths[rows], state, out, out_starts[rows], chunk_len)
        finals[:, rows] = state
    return out, out_starts, finals


def _score_batch(model: Model, flat: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, state: np.ndarray,
                 out: np.ndarray, out_at: np.ndarray, chunk_len: int) -> None:  # fmt: skip
    """Score B rows (sorted longest first, each >= 2 ids; row b is flat[offsets[b] : offsets[b] +
    lengths[b]]) into out[out_at[b] :], chunk by chunk in time, from state (L, B, H), which is updated in
    place to each row's final state. Rows are gathered and results scattered a chunk at a time, so memory
    is B x chunk_len whatever the longest row."""
    B = offsets.size
    positions = lengths - 1  # scored positions per row
    p = model.params
    logp = np.empty((B, min(chunk_len, int(positions[0]))), dtype=np.float64)
    for t0 in range(0, int(positions[0]), chunk_len):
        active = int(np.count_nonzero(positions > t0))  # a prefix: rows are sorted longest first
        t1 = min(t0 + chunk_len, int(positions[0]))
        steps = np.clip(positions[:active] - t0, 0, t1 - t0)
        columns = np.arange(t1 - t0 + 1)
        inside = columns[None, :] <= steps[:, None]  # ids t0 .. t0 + steps of each row
        window = np.where(inside, flat[np.minimum(offsets[:active, None] + t0 + columns, flat.size - 1)], 0)
        x = np.ascontiguousarray(window[:, :-1])
        y = np.ascontiguousarray(window[:, 1:])
        h0 = np.ascontiguousarray(state[:, :active])
        h_final = np.empty_like(h0)
        scoring._score_rows(x, y, steps, p["Wx"], p["Wu"], p["Wh"], p["bh"], p["Wy"], p["by"], h0, h_final,
                            shard_bounds(active), logp, model.config.activation_code)  # fmt: skip
        state[:, :active] = h_final
        written = inside[:, 1:]
        out[(out_at[:active, None] + t0 + columns[:-1])[written]] = logp[:active, : t1 - t0][written]
