"""Smoothed character n-gram baselines (unigram to 5-gram) that give every RNN loss a point of reference.

A loss of 1.5 nats/char means little on its own; next to "unigram 3.3, bigram 2.5, 5-gram 1.9" it says
how much the network learnt beyond counting. Usage, with ids from `Vocab.encode`:

    model = fit_ngram(train_ids, vocab_size, order=3)
    model.cross_entropy(valid_ids)            # mean nats/char
    baseline_table(train_ids, valid_ids, vocab_size)   # {1: ..., 2: ..., ..., 5: ...}

Smoothing is interpolated modified Kneser-Ney (Chen & Goodman 1998, "An empirical study of smoothing
techniques for language modeling", section 3), recursive down to a uniform distribution:
  - the unigram level is add-one (Laplace): P(w) = (c(w) + 1) / (sum c + V). In an order-1 model c is
    the raw count; inside higher orders it is the KN continuation count (the number of distinct
    characters seen before w), as Kneser-Ney prescribes for lower levels;
  - level k >= 2 (k-1 characters of context h) is
        P_k(w | h) = (c(h w) - D(c(h w)) + gamma(h) * P_{k-1}(w | h')) / c(h),  h' = h without its first char
    with three discounts D1, D2, D3+ per level estimated from that level's count-of-counts, and
    gamma(h) = the total discount taken from h's counts. c is the raw count at the top level and the
    continuation count below it. A context never seen in training has P_k = P_{k-1}.
So every character of the vocabulary, even one absent from training, gets probability > 0, and every
conditional distribution sums to 1 over the vocabulary (up to float rounding).

Counting is vectorised and bounded in memory by the number of distinct n-grams: each n-gram of up to
`order` ids is packed into one int64 key (base `vocab_size`, first character most significant), the
text is counted in chunks with `np.unique`, and lookups are `np.searchsorted` into sorted key arrays.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .errors import CharrnnError

# Positions counted or scored per step. Scratch memory is a handful of (CHUNK_POSITIONS,) int64 arrays
# (~0.5 GB peak when scoring), whatever the input size; per-chunk overhead is negligible at this size.
CHUNK_POSITIONS = 1 << 23


def _check_ids(ids: np.ndarray, vocab_size: int, what: str) -> np.ndarray:
    """(N,) integer ids (a memmap is not copied) after checking that every id is in 0..vocab_size-1."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.dtype.kind not in "ui":
        raise CharrnnError(f"{what} must be a 1-D array of integer ids, got {ids.dtype} of shape {ids.shape}")
    if ids.size and (int(ids.max()) >= vocab_size or (ids.dtype.kind == "i" and int(ids.min()) < 0)):
        raise CharrnnError(f"{what} has ids outside 0..{vocab_size - 1} (vocabulary size {vocab_size})")
    return ids


def _window_keys(window: np.ndarray, length: int, vocab_size: int) -> np.ndarray:
    """(M + length - 1,) int64 ids -> (M,) int64 keys packing each run of `length` consecutive ids."""
    count = len(window) - length + 1
    keys = window[:count].copy()
    for offset in range(1, length):
        keys *= vocab_size
        keys += window[offset : offset + count]
    return keys


def _merge_counts(
    keys: np.ndarray, counts: np.ndarray, more_keys: np.ndarray, more_counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Union of two sorted (key, count) tables, adding the counts of keys present in both."""
    all_keys = np.concatenate([keys, more_keys])
    # both halves are sorted, so the stable sort (timsort) is close to a linear merge
    order = np.argsort(all_keys, kind="stable")
    all_keys, all_counts = all_keys[order], np.concatenate([counts, more_counts])[order]
    starts = np.flatnonzero(np.r_[True, all_keys[1:] != all_keys[:-1]])
    return all_keys[starts], np.add.reduceat(all_counts, starts)


def _count_ngrams(ids: np.ndarray, order: int, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct n-gram keys (D,) int64 and their raw counts (D,) int64, counted chunk by chunk."""
    keys, counts = np.empty(0, np.int64), np.empty(0, np.int64)
    for start in range(0, len(ids) - order + 1, CHUNK_POSITIONS):
        window = np.asarray(ids[start : start + CHUNK_POSITIONS + order - 1], dtype=np.int64)
        chunk_keys, chunk_counts = np.unique(_window_keys(window, order, vocab_size), return_counts=True)
        keys, counts = _merge_counts(keys, counts, chunk_keys, chunk_counts.astype(np.int64))
    return keys, counts


def _discounts(counts: np.ndarray) -> np.ndarray:
    """(3,) float64 modified-KN discounts D1, D2, D3+ from the count-of-counts n1..n4 of `counts`.

    D_i = i - (i+1) Y n_{i+1} / n_i with Y = n1 / (n1 + 2 n2) (Chen & Goodman, eq. 26). On dense data
    (no singletons or no doubletons, common for small alphabets) Y is undefined and all three are 0.5;
    a D_i left undefined by a zero n_i becomes Y. All are clipped into [0.05, i]: D_i <= i keeps every
    discounted count >= 0, and D > 0 keeps some mass for the lower level in every seen context.
    """
    n1, n2, n3, n4 = np.bincount(np.minimum(counts, 5), minlength=6)[1:5].astype(np.float64)
    if n1 == 0 or n2 == 0:
        return np.full(3, 0.5)
    y = n1 / (n1 + 2 * n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        discounts = np.array([1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3])
    discounts[~np.isfinite(discounts)] = y
    return np.clip(discounts, 0.05, [1.0, 2.0, 3.0])


@dataclass(frozen=True)
class _Level:
    """Level k >= 2 of a model: D distinct k-grams and the C distinct contexts (k-1 chars) among them."""

    gram_keys: np.ndarray  # (D,) int64, sorted
    discounted: np.ndarray  # (D,) float64: c(h w) - D(c(h w))
    context_keys: np.ndarray  # (C,) int64, sorted
    context_totals: np.ndarray  # (C,) float64: c(h) = sum over w of c(h w)
    context_backoff: np.ndarray  # (C,) float64: gamma(h) * c(h), the discount mass handed to level k-1
    discounts: np.ndarray  # (3,) float64: D1, D2, D3+

    @classmethod
    def from_counts(cls, keys: np.ndarray, counts: np.ndarray, vocab_size: int) -> _Level:
        """Level tables from sorted distinct k-gram keys (D,) int64, D >= 1, and their counts (D,) int64."""
        discounts = _discounts(counts)
        taken = discounts[np.minimum(counts, 3) - 1]
        # key = context * V + w, so sorted keys group each context's k-grams together
        contexts = keys // vocab_size
        starts = np.flatnonzero(np.r_[True, contexts[1:] != contexts[:-1]])
        return cls(
            gram_keys=keys,
            discounted=counts - taken,
            context_keys=contexts[starts],
            context_totals=np.add.reduceat(counts, starts).astype(np.float64),
            context_backoff=np.add.reduceat(taken, starts),
            discounts=discounts,
        )

    def interpolate(self, gram_keys: np.ndarray, contexts: np.ndarray, lower: np.ndarray) -> np.ndarray:
        """(M,) P_k(w | h) from the k-gram keys (M,), their context keys (M,) and P_{k-1} (M,)."""
        context_row, seen = _lookup(self.context_keys, contexts)
        context_row = context_row[seen]
        gram_row, found = _lookup(self.gram_keys, gram_keys[seen])
        discounted = np.where(found, self.discounted[gram_row], 0.0)
        backoff, total = self.context_backoff[context_row], self.context_totals[context_row]
        probs = lower.copy()  # an unseen context backs off entirely: P_k = P_{k-1}
        probs[seen] = (discounted + backoff * lower[seen]) / total
        return probs


def _lookup(sorted_keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of each query (M,) in `sorted_keys` (D,), D >= 1, and whether it is there at all (M,) bool."""
    rows = np.minimum(np.searchsorted(sorted_keys, queries), len(sorted_keys) - 1)
    return rows, sorted_keys[rows] == queries


@dataclass(frozen=True)
class NGramModel:
    """An interpolated Kneser-Ney character model of `order` (1 = unigram, 3 = two characters of context)."""

    order: int
    vocab_size: int
    distinct_ngrams: int  # distinct order-grams in the training text
    unigram_probs: np.ndarray  # (V,) float64, the add-one unigram level
    levels: tuple[_Level, ...]  # levels 2..order, lowest first

    def __repr__(self) -> str:
        return f"NGramModel(order={self.order}, vocab_size={self.vocab_size}, distinct_ngrams={self.distinct_ngrams:,})"

    def _probs(self, keys: np.ndarray, length: int) -> np.ndarray:
        """(M,) P(w | h) for keys (M,) int64, each packing `length` ids: context h, then predicted w."""
        probs = self.unigram_probs[keys % self.vocab_size]
        for k, level in enumerate(self.levels[: length - 1], start=2):
            gram_keys = keys % self.vocab_size**k
            probs = level.interpolate(gram_keys, gram_keys // self.vocab_size, probs)
        return probs

    def _chunk_log_probs(self, ids: np.ndarray) -> Iterator[np.ndarray]:
        """Natural-log probabilities of `ids`, in consecutive pieces of at most CHUNK_POSITIONS."""
        context = self.order - 1
        # the first `context` characters have fewer predecessors: score them with shorter contexts
        for position in range(min(context, len(ids))):
            head = np.asarray(ids[: position + 1], dtype=np.int64)
            yield np.log(self._probs(_window_keys(head, position + 1, self.vocab_size), position + 1))
        for start in range(context, len(ids), CHUNK_POSITIONS):
            window = np.asarray(ids[start - context : start + CHUNK_POSITIONS], dtype=np.int64)
            # score each distinct n-gram once: far fewer lookups, and sorted ones, which searchsorted
            # serves from cache (about 7x faster on a 100 MB text than looking up every position)
            keys = _window_keys(window, self.order, self.vocab_size)
            distinct, inverse = np.unique(keys, return_inverse=True)
            yield np.log(self._probs(distinct, self.order))[inverse]

    def log_probs(self, ids: np.ndarray) -> np.ndarray:
        """(N,) float64 ln P(ids[i] | ids[i-order+1 : i]) for each position i of `ids` (N,).

        Each character is predicted from the previous order-1 characters of the same text; position
        i < order-1 has only i predecessors and is scored by the order-(i+1) level of the model (the
        first character by the unigram level).
        """
        ids = _check_ids(ids, self.vocab_size, "text to score")
        return np.concatenate([np.empty(0), *self._chunk_log_probs(ids)])

    def cross_entropy(self, ids: np.ndarray) -> float:
        """Mean nats/char of `ids` (N,) under the model: -mean(log_probs(ids)), computed chunk by chunk."""
        ids = _check_ids(ids, self.vocab_size, "text to score")
        if len(ids) == 0:
            raise CharrnnError("cannot compute the cross-entropy of an empty text")
        return -sum(float(chunk.sum()) for chunk in self._chunk_log_probs(ids)) / len(ids)

    def next_char_probs(self, context: np.ndarray) -> np.ndarray:
        """(V,) float64 distribution of the character after `context` (L,) ids. Only the last order-1
        ids are used; a shorter context is scored by the matching lower level, as in `log_probs`."""
        context = _check_ids(np.asarray(context), self.vocab_size, "context")
        used = context[len(context) - min(len(context), self.order - 1) :]
        prefix = 0
        for char in used.tolist():
            prefix = prefix * self.vocab_size + char
        keys = prefix * self.vocab_size + np.arange(self.vocab_size, dtype=np.int64)
        return self._probs(keys, len(used) + 1)


def fit_ngram(train_ids: np.ndarray, vocab_size: int, order: int) -> NGramModel:
    """Count `train_ids` (N,) of any integer dtype (a memmap is read in chunks) into an order-`order`
    interpolated Kneser-Ney model over ids 0..vocab_size-1 (see the module docstring)."""
    if order < 1:
        raise CharrnnError(f"n-gram order must be at least 1, got {order}")
    if vocab_size < 1 or vocab_size**order > np.iinfo(np.int64).max:
        raise CharrnnError(
            f"an order-{order} n-gram over {vocab_size} characters does not fit a 63-bit key; use a lower order"
        )
    train_ids = _check_ids(train_ids, vocab_size, "training text")
    if len(train_ids) < order:
        raise CharrnnError(f"training text of {len(train_ids)} characters is too short for an order-{order} model")
    keys, counts = _count_ngrams(train_ids, order, vocab_size)
    distinct_ngrams = len(keys)
    levels = []
    for k in range(order, 1, -1):
        levels.append(_Level.from_counts(keys, counts, vocab_size))
        # continuation count of a (k-1)-gram = number of distinct k-grams ending in it
        keys, counts = np.unique(keys % vocab_size ** (k - 1), return_counts=True)
    unigram_counts = np.bincount(keys, weights=counts, minlength=vocab_size)
    unigram_probs = (unigram_counts + 1) / (unigram_counts.sum() + vocab_size)
    return NGramModel(order, vocab_size, distinct_ngrams, unigram_probs, tuple(reversed(levels)))


def baseline_table(
    train_ids: np.ndarray, eval_ids: np.ndarray, vocab_size: int, orders: tuple[int, ...] = (1, 2, 3, 4, 5)
) -> dict[int, float]:
    """{order: nats/char on eval_ids (M,)} for n-gram models of each order fitted on train_ids (N,)."""
    return {order: fit_ngram(train_ids, vocab_size, order).cross_entropy(eval_ids) for order in orders}
