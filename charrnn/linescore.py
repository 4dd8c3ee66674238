"""Scoring many short lines at once, each as a line of its own: what `rerank` ranks candidate readings by.

Convention. A line `text` (no line break inside) is scored as the ids of "\\n" + text + "\\n" under
`score.score_ids`' convention: from a zero state, the leading newline only conditions, and every
character of the line is scored, then the end of the line, so a reading that stops early is not
rewarded. Its log-probability therefore equals `score_text(model, "\\n" + text + "\\n")` (up to float
rounding: products over different batches of rows), and `len(text) + 1` characters are scored.

Unknown characters (not in the model's vocabulary) are never free. Each costs a penalty and is then
dropped from the context: the next character is predicted from the state before the unknown one, as
`--unk skip` does, so a line's log-probability is `score_text(..., unk="skip")` of the same text minus
its penalties. The penalty, in bits, is either a fixed number (`unk_penalty`) or, by default, the
model's worst case at that point: the surprisal of the least likely character of the vocabulary in the
same context, max over v of -log2 p(v | context). That is at least log2 V (the least likely of V
characters has probability <= 1/V), it depends only on the line's own context, and an unknown
character always costs at least as much as the worst reading the model could have been given instead.
Dropping (rather than feeding a stand-in character) keeps one invented character from steering the
rest of the line; the penalty already says that something unexpected stood there.

Speed. Identical lines are scored once, so they always get identical scores. Lines that share a long
prefix (the candidates of one n-best list mostly differ in a few places) share its computation: the
distinct id sequences are sorted, each one starts where it leaves its sorted predecessor (its longest
common prefix with any earlier sequence), from a hidden state that an earlier sequence reaches there.
Those states are the final states of pieces (`batch.score_sequences_from`): a sequence is cut wherever
a later one branches off it, pieces are run level by level (a piece's state comes from a piece of an
earlier level), and every level is one batch. A prefix is shared only from MIN_SHARED ids on: a cut
costs a piece of its own and one repeated step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .batch import score_packed
from .errors import CharrnnError
from .model import Model

LN2 = math.log(2.0)
# Shorter shared prefixes are recomputed: at 2 x 128, sharing from 4 ids on ran 3% slower than from 12
# on 10-best OCR lists (more, shorter pieces and levels), and 12 vs 24 within noise.
MIN_SHARED = 12


@dataclass(frozen=True)
class LineScores:
    """Scores of M lines, in input order. Log-probabilities in nats (natural log)."""

    log_probs: np.ndarray  # (M,) float64: log p of the line and its end, penalties included
    scored: np.ndarray  # (M,) int64: characters scored, len(text) + 1
    unknown: np.ndarray  # (M,) int64: characters not in the vocabulary
    penalty: np.ndarray  # (M,) float64: the part of -log_probs that is unknown-character penalties (nats)

    @property
    def bits(self) -> np.ndarray:
        """(M,) log2 p of each line."""
        return self.log_probs / LN2

    @property
    def bits_per_char(self) -> np.ndarray:
        """(M,) surprisal per scored character, in bits."""
        return -self.log_probs / self.scored / LN2


def code_table(model: Model) -> np.ndarray:
    """Code point -> id lookup (-1: not in the vocabulary), for vectorised encoding of many lines."""
    chars = model.vocab.chars
    table = np.full(ord(max(chars)) + 1, -1, dtype=np.int64)
    table[[ord(c) for c in chars]] = np.arange(len(chars))
    return table


def _encode(model: Model, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple]]:
    """All lines at once: (known ids of "\\n" + lines joined by "\\n" + "\\n" (K,), start of each line's
    sequence in it (M+1,): line i is ids[starts[i] : starts[i+1] + 1], unknown count per line (M,),
    [(line, k)] for every unknown character: it stands after k ids of its line's sequence)."""
    newline = model.vocab.index.get("\n")
    if newline is None:
        raise CharrnnError("the model's vocabulary has no newline: it cannot score lines")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise CharrnnError(f"line {i + 1} is a {type(text).__name__}, not a string")
        if "\n" in text or "\r" in text:
            raise CharrnnError(f"line {i + 1} contains a line break")
    joined = "\n" + "\n".join(texts) + "\n"
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    table = code_table(model)
    ids = np.where(codes < table.size, table[np.minimum(codes, table.size - 1)], -1)
    known = ids >= 0
    kept_before = np.cumsum(known) - known  # known ids before each position
    separators = np.flatnonzero(codes == 10)
    starts = kept_before[separators]
    line_of = np.cumsum(codes == 10) - 1  # line of each position (a separator: the line it starts)
    unknown_at = np.flatnonzero(~known)
    unknown = np.bincount(line_of[unknown_at], minlength=len(texts)).astype(np.int64)
    lines = line_of[unknown_at]
    sites = [(int(line), int(kept_before[g] - starts[line])) for g, line in zip(unknown_at, lines, strict=True)]
    return ids[known], starts, unknown, sites


def _first_differences(flat: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(n-1,) longest common prefix of each sequence with the one before it, for n sequences stored
    back to back in flat (sequence i is flat[starts[i] : starts[i] + lengths[i]]), vectorised."""
    m = np.minimum(lengths[1:], lengths[:-1])
    offsets = np.cumsum(m) - m
    within = np.arange(int(m.sum())) - np.repeat(offsets, m)
    differs = flat[np.repeat(starts[1:], m) + within] != flat[np.repeat(starts[:-1], m) + within]
    first = np.where(differs, within, np.repeat(m, m))
    return np.minimum.reduceat(first, offsets) if m.size else np.empty(0, dtype=np.int64)


def _share(flat: np.ndarray, offsets: np.ndarray, lengths: np.ndarray,
           min_shared: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """For n distinct sequences in sorted order: (start, parent) (n,) each. Sequence i computes its own
    targets start[i].. from the state after start[i] - 1 ids, which sequence parent[i] < i reaches with
    its own pieces (-1: the zero state, start 1). Its prefix up to start[i] is shared with that parent."""
    n = offsets.size
    lcp = np.concatenate(([0], _first_differences(flat, offsets, lengths))) if n else np.empty(0, np.int64)
    start = np.where(lcp >= min_shared, lcp, 1).astype(np.int64)
    parent = np.full(n, -1, dtype=np.int64)
    stack: list[int] = []  # earlier sequences by increasing start; the top one with start <= k shares k + 1 ids
    starts = start.tolist()
    for i in range(n):
        k = starts[i] - 1
        while stack and starts[stack[-1]] > k:
            stack.pop()  # never needed again: a later sequence shares at most start[i] ids with it
        if k >= 1:
            parent[i] = stack[-1]
        stack.append(i)
    return start, parent


def _provider(start: np.ndarray, parent: np.ndarray, i: int, k: int) -> int:
    """The sequence whose own pieces reach the state after k >= 1 ids of sequence i."""
    while k < start[i]:
        i = int(parent[i])
    return i


def _run(model: Model, flat: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, start: np.ndarray,
         parent: np.ndarray, extra_cuts: list[tuple[int, int]]) -> tuple[np.ndarray, Callable]:  # fmt: skip
    """Score the shared plan: (log-probabilities by position in flat (K,): target t of sequence i at
    offsets[i] + t, state(i, k) -> (L, H), the state after k ids of sequence i, for k a cut of i).

    Sequence i is cut at start[i] - 1 (where it begins), its end, where a child begins and at extra_cuts
    (sequence, k); a piece runs from one cut of its sequence to the next, and its final state is the
    state at that cut."""
    n = offsets.size
    children = np.flatnonzero(parent >= 0)
    cut_seq = np.concatenate((np.arange(n), np.arange(n), parent[children], [c[0] for c in extra_cuts]))
    cut_k = np.concatenate((start - 1, lengths - 1, start[children] - 1, [c[1] for c in extra_cuts]))
    width = int(lengths.max()) + 1
    keys = np.unique(cut_seq.astype(np.int64) * width + cut_k.astype(np.int64))
    seq, k = keys // width, keys % width
    ends = np.flatnonzero(seq[1:] == seq[:-1]) + 1  # a piece ends at every cut but its sequence's first
    p_seq, p_lo, p_hi = seq[ends], k[ends - 1], k[ends]
    piece_keys = keys[ends]  # sorted: piece_at(i, k) by binary search

    def piece_at(i: np.ndarray, cut: np.ndarray) -> np.ndarray:
        return np.searchsorted(piece_keys, np.asarray(i, dtype=np.int64) * width + cut)

    first = np.searchsorted(p_seq, np.arange(n))  # each sequence's first piece
    source = np.arange(-1, p_seq.size - 1)  # a later piece starts from its predecessor's state ...
    source[first] = -1
    source[first[children]] = piece_at(parent[children], start[children] - 1)  # ... a first one from the parent's
    level = np.zeros(p_seq.size, dtype=np.int64)
    first_list, source_list, counts = first.tolist(), source.tolist(), np.diff(np.append(first, p_seq.size))
    level_list = [0] * p_seq.size
    for i in range(n):  # parents come first in sorted order
        f, src = first_list[i], source_list[first_list[i]]
        base = 0 if src < 0 else level_list[src] + 1
        for r in range(int(counts[i])):
            level_list[f + r] = base + r
    level = np.array(level_list, dtype=np.int64)
    L, H = model.config.num_layers, model.config.hidden_size
    finals = np.zeros((L, p_seq.size + 1, H), dtype=model.dtype)  # the extra last column: the zero state
    by_position = np.zeros(flat.size, dtype=np.float64)
    order = np.argsort(level, kind="stable")
    bounds = np.searchsorted(level[order], np.arange(int(level.max()) + 2))
    for lv in range(int(level.max()) + 1):
        members = order[bounds[lv] : bounds[lv + 1]]
        out, out_starts, fin = score_packed(model, flat, offsets[p_seq[members]] + p_lo[members],
                                            p_hi[members] - p_lo[members] + 1, finals[:, source[members]])  # fmt: skip
        finals[:, members] = fin
        counts_m = np.diff(out_starts)
        target = np.repeat(offsets[p_seq[members]] + p_lo[members] + 1 - out_starts[:-1], counts_m)
        by_position[target + np.arange(out.size)] = out
    for i in children.tolist():  # the shared prefix's log-probabilities, copied from the parent
        a, o, po = int(start[i]), int(offsets[i]), int(offsets[parent[i]])
        by_position[o + 1 : o + a] = by_position[po + 1 : po + a]
    return by_position, lambda i, cut: finals[:, piece_at(i, cut)]


def worst_case_bits(model: Model, states: np.ndarray) -> np.ndarray:
    """(S,) max over the vocabulary of -log2 p(v | state) for states (L, S, H): the default penalty of an
    unknown character, the surprisal of the least likely known character in that context."""
    top = np.asarray(states[-1], dtype=np.float64)
    logits = top @ model.params["Wy"].astype(np.float64) + model.params["by"]
    shift = logits.max(axis=1, keepdims=True)
    log_norm = shift[:, 0] + np.log(np.exp(logits - shift).sum(axis=1))
    return (log_norm - logits.min(axis=1)) / LN2


def score_lines(model: Model, texts: Sequence[str], unk_penalty: float | None = None,
                min_shared: int = MIN_SHARED) -> LineScores:  # fmt: skip
    """Score each of `texts` as a line (conventions in the module docstring). `unk_penalty`: bits per
    unknown character, or None for the model's worst case in context. `min_shared`: ids a prefix must
    have to be shared (a huge value turns sharing off; results are equal up to float rounding)."""
    if unk_penalty is not None and not (math.isfinite(unk_penalty) and unk_penalty > 0):
        raise CharrnnError(f"--unk-penalty must be a positive number of bits, got {unk_penalty}")
    M = len(texts)
    flat, starts, unknown, sites = _encode(model, texts)
    if M == 0:
        return LineScores(np.empty(0), np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    lengths = np.diff(starts) + 1  # line i is flat[starts[i] : starts[i] + lengths[i]]
    width = ">u1" if model.config.vocab_size <= 256 else ">u4"  # big-endian: bytes sort like id tuples
    packed = flat.astype(width)
    keys = [packed[a : a + n].tobytes() for a, n in zip(starts[:-1].tolist(), lengths.tolist(), strict=True)]
    distinct = sorted(set(keys))  # identical lines are scored once
    index = {key: u for u, key in enumerate(distinct)}
    unique_of = np.array([index[key] for key in keys], dtype=np.int64)
    first_line = np.full(len(distinct), -1, dtype=np.int64)
    first_line[unique_of[::-1]] = np.arange(M)[::-1]
    offsets, u_lengths = starts[first_line], lengths[first_line]
    start, parent = _share(flat, offsets, u_lengths, min_shared)
    places = [(_provider(start, parent, int(unique_of[line]), k), k) for line, k in sites]
    extra = places if unk_penalty is None else []
    by_position, state = _run(model, flat, offsets, u_lengths, start, parent, extra)
    scored_u = u_lengths - 1  # targets 1 .. N-1 of each sequence, summed in order
    begins = np.cumsum(scored_u) - scored_u
    totals = np.add.reduceat(by_position[np.repeat(offsets + 1 - begins, scored_u) + np.arange(scored_u.sum())],
                             begins)  # fmt: skip
    penalty = np.zeros(M)
    if sites:
        lines = np.array([line for line, _ in sites])
        if unk_penalty is None:
            seqs, cuts = zip(*places, strict=True)
            bits = worst_case_bits(model, state(np.array(seqs), np.array(cuts)))
        else:
            bits = np.full(len(sites), float(unk_penalty))
        np.add.at(penalty, lines, bits * LN2)
    scored = np.array([len(t) + 1 for t in texts], dtype=np.int64)
    return LineScores(totals[unique_of] - penalty, scored, unknown, penalty)
