"""Scoring a text of any length piece by piece, in memory that does not grow with it.

`TextScorer` takes the text in pieces of any size (`feed`), encodes each under the unknown-character
policy, and scores it in chunks of `chunk_len` positions with the hidden state carried — the same chunks,
at the same positions, whatever the pieces were, so a text streamed from a 200 MB file scores exactly as
the same text given at once (`score.score_text` is built on it). What it keeps between pieces is the
carried state, at most `chunk_len` + 1 ids, and the running totals: `charrnn score` of a 1 MB and of a
200 MB file peak within a few MB of each other (benchmarks/memory_streaming.py).

Totals are summed left to right (`np.cumsum`, never pairwise), so the total of a text does not depend on
how it was cut into chunks or pieces. `LineTracker` splits the scored chunks into lines as they come
(`--per-line`), `NgramStream` scores them under the Kneser-Ney baselines (`--baseline`); both keep only
the current line or the last few ids.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .errors import CharrnnError
from .kernels import scoring
from .model import Model
from .vocab import UnknownReport

DEFAULT_CHUNK = 1024
LN2 = math.log(2.0)
PIECE = 1 << 16  # characters encoded at a time: transient ids and code points stay under ~1 MB


@dataclass(frozen=True)
class ScoredChunk:
    """Consecutive scored characters: positions `position`, `position` + 1, ... (1-based, in the text as
    scored: position 0 only conditions)."""

    position: int
    ids: np.ndarray  # (n,) the characters scored
    log_probs: np.ndarray  # (n,) float64 log p(ids[i] | everything before it)
    top_ids: np.ndarray  # (n, A) int64 the A most likely characters at each position
    top_log_probs: np.ndarray  # (n, A) float64 their log-probabilities


def running_sum(total: float, values: np.ndarray) -> float:
    """total + values[0] + values[1] + ..., added left to right (so the result does not depend on how a
    sequence was cut into pieces)."""
    if values.size == 0:
        return total
    return float(np.cumsum(np.concatenate(([total], values)))[-1])


def summary(characters: int, scored: int, log_likelihood: float, unknown: UnknownReport) -> dict:
    """The totals of a scored text (`charrnn score --json`'s fields; docs/json.md)."""
    nats = -log_likelihood / scored
    return {
        "characters": characters,
        "scored": scored,
        "log_likelihood_nats": log_likelihood,
        "log_likelihood_bits": log_likelihood / LN2,
        "nats_per_char": nats,
        "bits_per_char": nats / LN2,
        "perplexity": perplexity(nats),
        "unknown": {"policy": unknown.policy, "total": unknown.total,
                    "characters": {c: n for c, (n, _) in unknown.counts.items()}},
    }  # fmt: skip


def perplexity(nats_per_char: float) -> float:
    """e^(nats/char); inf where that overflows (a character the model gives probability 0)."""
    return math.exp(nats_per_char) if nats_per_char < 709.0 else math.inf


def check_top(model: Model, top: int) -> None:
    """The kernels rank at most the whole vocabulary; more alternatives than characters would index past it."""
    if not 0 <= top <= model.config.vocab_size:
        raise CharrnnError(f"--alternatives must be in [0, {model.config.vocab_size}] (the vocabulary size), got {top}")


class TextScorer:
    """Scores a text fed in pieces (see the module docstring). Iterate `feed(piece)` for the chunks each
    piece completes, then `finish()` for the rest; `log_likelihood`, `characters`, `scored` and
    `unknown_report()` are the running totals."""

    def __init__(self, model: Model, unk: str = "error", top: int = 0, chunk_len: int = DEFAULT_CHUNK,
                 where: str = "text") -> None:  # fmt: skip
        if chunk_len < 1:
            raise CharrnnError(f"chunk length must be >= 1, got {chunk_len}")
        check_top(model, top)
        model.vocab.encode("", unk=unk)  # checks the policy before any text is read
        self.model, self.unk, self.top, self.chunk_len, self.where = model, unk, top, chunk_len, where
        self.first_id: int | None = None  # the character that only conditions
        self.characters = 0  # characters of the text as scored (after the unknown-character policy)
        self.log_likelihood = 0.0  # nats, over the characters scored so far
        self._seen = 0  # characters of the text as given (positions of unknown characters)
        self._unknown: dict[str, tuple[int, int]] = {}
        self._pending = np.empty(0, dtype=np.int64)  # ids not yet scored as inputs (at most chunk_len + 1)
        self._state = model.initial_state(1)
        self._position = 1

    @property
    def scored(self) -> int:
        return max(self._position - 1, 0) if self.first_id is not None else 0

    @property
    def unknown(self) -> UnknownReport:
        """The characters outside the vocabulary so far, and what the policy did with them."""
        return UnknownReport(dict(self._unknown), self.unk)

    def summary(self) -> dict:
        """The totals so far, as `charrnn score --json` prints them."""
        return summary(self.characters, self.scored, self.log_likelihood, self.unknown)

    def feed(self, text: str) -> Iterator[ScoredChunk]:
        """Score what `text` (the next piece) completes, chunk by chunk."""
        for start in range(0, len(text), PIECE):
            ids = self._encode(text[start : start + PIECE])
            if ids.size and self.first_id is None:
                self.first_id = int(ids[0])
            self.characters += ids.size
            self._pending = np.concatenate((self._pending, ids))
            while self._pending.size > self.chunk_len:
                yield self._score(self._pending[: self.chunk_len + 1])
                self._pending = self._pending[self.chunk_len :]

    def finish(self) -> list[ScoredChunk]:
        """The last (partial) chunk; CharrnnError when the text was empty or had fewer than 2 characters
        the model knows."""
        if self._seen == 0:
            raise CharrnnError(f"{self.where} is empty: nothing to score")
        if self.characters < 2:
            raise CharrnnError(f"{self.where} has {self.characters} character(s) the model knows; scoring needs at "
                               "least 2 (the first only conditions the second)")  # fmt: skip
        out = [self._score(self._pending)] if self._pending.size > 1 else []
        self._pending = self._pending[-1:]
        return out

    def _encode(self, text: str) -> np.ndarray:
        # "error" is applied here, with positions in the whole text, rather than per piece by the vocabulary
        policy = "skip" if self.unk == "error" else self.unk
        ids, report = self.model.vocab.encode_with_report(text, unk=policy, where=self.where)
        for char, (count, first) in report.counts.items():
            total, earlier = self._unknown.get(char, (0, self._seen + first))
            self._unknown[char] = (total + count, earlier)
        self._seen += len(text)
        if self.unk == "error" and report.counts:
            raise CharrnnError(f"{self.where}: {len(self._unknown)} character(s) not in the model's vocabulary: "
                               f"{self.unknown.summary()} (use --unk skip or --unk map:<char>)")  # fmt: skip
        return ids.astype(np.int64)

    def _score(self, window: np.ndarray) -> ScoredChunk:
        """Score window[1:] given window[:-1], from the carried state."""
        model, n = self.model, window.size - 1
        L, H, V = model.config.num_layers, model.config.hidden_size, model.config.vocab_size
        log_probs = np.empty(n, dtype=np.float64)
        top_ids, top_log_probs = np.empty((n, self.top), dtype=np.int64), np.empty((n, self.top), dtype=np.float64)
        hidden, logits = np.empty((L, n, 1, H), model.dtype), np.empty((n, V), model.dtype)
        p = model.params
        scoring._score_chunk(window[None, :-1], window[1:], p["Wx"], p["Wu"], p["Wh"], p["bh"], p["Wy"], p["by"],
                             self._state, hidden, logits, log_probs, top_ids, top_log_probs,
                             model.config.activation_code)  # fmt: skip
        self._state = np.ascontiguousarray(hidden[:, -1])
        chunk = ScoredChunk(self._position, window[1:].copy(), log_probs, top_ids, top_log_probs)
        self._position += n
        self.log_likelihood = running_sum(self.log_likelihood, log_probs)
        return chunk


@dataclass(frozen=True)
class LineScore:
    line: int  # 1-based
    text: str  # without its newline
    scored: int  # characters scored in this line (its newline included)
    log_likelihood: float  # nats

    @property
    def bits_per_char(self) -> float:
        return -self.log_likelihood / self.scored / LN2 if self.scored else float("nan")


class LineTracker:
    """Splits scored chunks into lines as they come: each character (a line's newline included) counts
    toward its own line, so the lines add up to the total; the first character of the text is in line 1
    but not scored. Keeps only the current line."""

    def __init__(self, model: Model) -> None:
        self.codepoints = model.vocab.codepoints().astype(np.uint32)
        self.newline = model.vocab.index.get("\n", -1)
        self.number, self.pieces, self.sum, self.count, self.started = 1, [], 0.0, 0, False

    def add(self, chunk: ScoredChunk, first_id: int) -> list[LineScore]:
        """The lines `chunk` completes (`first_id`: the text's first character, which starts line 1)."""
        done = [] if self.started else self._start(first_id)
        begin = 0
        for end in [*np.flatnonzero(chunk.ids == self.newline).tolist(), None]:
            stop = chunk.ids.size if end is None else end + 1
            self.sum = running_sum(self.sum, chunk.log_probs[begin:stop])
            self.count += stop - begin
            self.pieces.append(self._text(chunk.ids[begin : stop if end is None else end]))
            if end is not None:
                done.append(self._close())
            begin = stop
        return done

    def finish(self) -> list[LineScore]:
        """The last line, unless the text ended with a newline (which ends the line before it)."""
        return [self._close()] if self.pieces and (self.count or any(self.pieces)) else []

    def _start(self, first_id: int) -> list[LineScore]:
        self.started = True
        if first_id == self.newline:
            return [self._close()]
        self.pieces.append(self._text(np.array([first_id])))
        return []

    def _text(self, ids: np.ndarray) -> str:
        return self.codepoints[ids].tobytes().decode("utf-32-le")

    def _close(self) -> LineScore:
        line = LineScore(self.number, "".join(self.pieces), self.count, self.sum)
        self.number, self.pieces, self.sum, self.count = self.number + 1, [], 0.0, 0
        return line


class NgramStream:
    """Nats/char of the scored characters under Kneser-Ney n-gram models (baselines.fit_ngram), chunk by
    chunk: each chunk is scored with the last order-1 characters before it as context, so the result
    equals scoring the whole text at once."""

    def __init__(self, models: dict[int, object]) -> None:
        self.models = models
        self.context = max(models) - 1 if models else 0
        self.history: np.ndarray | None = None
        self.sums = {order: 0.0 for order in models}
        self.count = 0

    def add(self, chunk: ScoredChunk, first_id: int) -> None:
        history = np.array([first_id], dtype=np.int64) if self.history is None else self.history
        window = np.concatenate((history, chunk.ids))
        for order, model in self.models.items():
            self.sums[order] = running_sum(self.sums[order], model.log_probs(window)[history.size :])
        self.count += chunk.ids.size
        self.history = window[-self.context :] if self.context else window[:0]

    def nats_per_char(self) -> dict[int, float]:
        if not self.count:
            raise CharrnnError("the text to score needs at least 2 characters for the baselines")
        return {order: -total / self.count for order, total in self.sums.items()}
