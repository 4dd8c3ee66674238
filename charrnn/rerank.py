"""Rescoring n-best lists: pick, from each list of candidate readings, the one the language model and
the recogniser together find most likely.

Each candidate is scored as a line of its own (`linescore.score_lines`: from the state after a newline,
every character and the end of the line scored, unknown characters penalised, never free), so its
log-probability does not depend on the other candidates or lists, and identical candidates get identical
scores. The candidates of all lists go to the scorer as one batch.

    combined = lm_weight * lm + recogniser score      (0 when the list has no "scores")
    lm       = ln p(candidate)                        (nats)
             = ln p(candidate) / (len(candidate) + 1)  with length_norm (nats per scored character)

The candidate with the highest combined score wins; ties go to the earlier candidate, and ranks (1 =
best) follow the same order, so they are a permutation of 1..C.

    from charrnn.model import load_model
    from charrnn.nbest import NBest
    from charrnn.rerank import rerank
    rankings = rerank(load_model("m.npz"), [NBest(1, 1, "a", ["tbe cat", "the cat"], None)])
    rankings[0].text   # 'the cat'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import CharrnnError
from .linescore import LineScores, score_lines
from .model import Model
from .nbest import NBest

LN2 = math.log(2.0)


@dataclass(frozen=True)
class Ranking:
    """One n-best list, scored and ranked. Arrays are (C,), in the list's candidate order."""

    nbest: NBest
    log_probs: np.ndarray  # float64: ln p of each candidate under the model (penalties included)
    scored: np.ndarray  # int64: characters scored (len + 1)
    unknown: np.ndarray  # int64: characters not in the model's vocabulary
    combined: np.ndarray  # float64: the score ranked by
    ranks: np.ndarray  # int64: 1 = chosen

    @property
    def best(self) -> int:
        """Index of the chosen candidate."""
        return int(np.argmin(self.ranks))

    @property
    def text(self) -> str:
        """The chosen candidate."""
        return self.nbest.candidates[self.best]

    def record(self) -> dict[str, Any]:
        """What `charrnn rerank --json` prints for the list: one JSON-able dict."""
        rows = []
        for i, candidate in enumerate(self.nbest.candidates):
            rows.append({
                "index": i,
                "text": candidate,
                "rank": int(self.ranks[i]),
                "log_prob": float(self.log_probs[i]),
                "log_prob_bits": float(self.log_probs[i] / LN2),
                "bits_per_char": float(-self.log_probs[i] / self.scored[i] / LN2),
                "chars_scored": int(self.scored[i]),
                "unknown_chars": int(self.unknown[i]),
                "recogniser_score": None if self.nbest.scores is None else self.nbest.scores[i],
                "score": float(self.combined[i]),
            })  # fmt: skip
        return {"id": self.nbest.id, "best": self.best, "text": self.text, "candidates": rows}


def rank_order(combined: np.ndarray) -> np.ndarray:
    """(C,) ranks, 1 = highest combined score; ties ranked in candidate order."""
    order = np.lexsort((np.arange(combined.size), -combined))
    ranks = np.empty(combined.size, dtype=np.int64)
    ranks[order] = np.arange(1, combined.size + 1)
    return ranks


def rerank(model: Model, lists: Sequence[NBest], lm_weight: float = 1.0, length_norm: bool = False,
           unk_penalty: float | None = None) -> list[Ranking]:  # fmt: skip
    """Rank every list's candidates (conventions in the module docstring); `unk_penalty` is in bits per
    unknown character, None for the model's worst case in context (see `linescore`)."""
    if not math.isfinite(lm_weight) or lm_weight < 0:
        raise CharrnnError(f"--lm-weight must be a finite number >= 0, got {lm_weight}")
    for nbest in lists:
        if not nbest.candidates:
            raise CharrnnError(f"list {nbest.id!r}: the list has no candidates")
        if nbest.scores is not None and len(nbest.scores) != len(nbest.candidates):
            raise CharrnnError(f"list {nbest.id!r}: {len(nbest.scores)} scores for {len(nbest.candidates)} candidates")
    texts = [candidate for nbest in lists for candidate in nbest.candidates]
    scores: LineScores = score_lines(model, texts, unk_penalty)
    out, at = [], 0
    for nbest in lists:
        c = len(nbest.candidates)
        log_probs, scored = scores.log_probs[at : at + c], scores.scored[at : at + c]
        lm = log_probs / scored if length_norm else log_probs
        combined = lm_weight * lm + (np.asarray(nbest.scores, dtype=np.float64) if nbest.scores is not None else 0.0)
        out.append(Ranking(nbest, log_probs, scored, scores.unknown[at : at + c], combined, rank_order(combined)))
        at += c
    return out
