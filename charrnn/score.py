"""Scoring text under a model (`score_text`) and author attribution (`attribute`); wraps `kernels.scoring._score_chunk`.

Convention, the same as training: a text of N characters is read from a zero hidden state; the first
character only conditions (it has no context to be predicted from), and characters 2..N are scored, each
given everything before it. Long texts go through in chunks of `chunk_len` characters with the hidden
state carried, so memory for the model's activations stays flat and the result equals scoring in one piece.

Attribution scores the same text under several models and compares total log-likelihoods. For a fair
comparison every model must predict the same characters from the same context, so characters outside the
vocabulary shared by all models are removed from the text (for every model) before scoring, and reported.

    python -c "from charrnn.score import score_text; from charrnn.model import load_model; \\
               print(score_text(load_model('model.npz'), 'To be, or not to be').bits_per_char)"
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .decode import check_decoding, decoded_blocks, read_text
from .errors import CharrnnError
from .kernels import scoring
from .model import Model
from .sources import STDIN, STDIN_NAME, Source, corpus_sources
from .stream import (
    DEFAULT_CHUNK,
    LineScore,
    LineTracker,
    NgramStream,
    ScoredChunk,
    TextScorer,
    check_top,
    perplexity,
    running_sum,
    summary,
)
from .vocab import UnknownReport

READ_BLOCK = 1 << 20  # bytes decoded at a time when a text is streamed (source_pieces)
LN2 = math.log(2.0)
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")  # a blank (or whitespace-only) line ends a paragraph


def read_source(source: str | Path) -> tuple[str, str]:
    """(text, display name) of a file, or of standard input for "-", decoded as for training (decode.py:
    strict UTF-8, "\\r\\n" -> "\\n")."""
    if str(source) == STDIN:
        return "".join(decoded_blocks(Source(None, STDIN_NAME))), STDIN_NAME
    if not Path(source).is_file():
        raise CharrnnError(f"{source} is not a file" if Path(source).exists() else f"{source} does not exist")
    return read_text([source]), str(source)


def source_pieces(source: str | Path) -> tuple[Iterator[str], str]:
    """(the decoded text of a file or of standard input ("-") as pieces of at most ~1M characters, display
    name): `read_source` without holding the text (compressed files decompress as they are read)."""
    check_decoding("utf-8", "strict")
    if str(source) == STDIN:
        return decoded_blocks(Source(None, STDIN_NAME), block_size=READ_BLOCK), STDIN_NAME
    if not Path(source).is_file():
        raise CharrnnError(f"{source} is not a file" if Path(source).exists() else f"{source} does not exist")
    sources = corpus_sources([source]).sources
    return (block for item in sources for block in decoded_blocks(item, block_size=READ_BLOCK)), str(source)


@dataclass(frozen=True)
class ScoreResult:
    """A text scored under one model. Log-probabilities are natural logs (nats)."""

    ids: np.ndarray  # (N,) the text as scored, after the unknown-character policy
    log_probs: np.ndarray  # (N-1,) float64: log p(ids[i+1] | ids[:i+1])
    unknown: UnknownReport  # characters not in the vocabulary, and what was done with them
    top_ids: np.ndarray  # (N-1, A) int64: the A most likely next characters at each position (A may be 0)
    top_log_probs: np.ndarray  # (N-1, A) float64: their log-probabilities

    @property
    def scored(self) -> int:
        """Characters scored: all but the first."""
        return int(self.log_probs.size)

    @property
    def log_likelihood(self) -> float:
        """Total log-likelihood in nats (<= 0), summed left to right as `TextScorer` sums a stream."""
        return running_sum(0.0, self.log_probs)

    @property
    def nats_per_char(self) -> float:
        return -self.log_likelihood / self.scored

    @property
    def bits_per_char(self) -> float:
        return self.nats_per_char / LN2

    @property
    def perplexity(self) -> float:
        return perplexity(self.nats_per_char)

    def summary(self) -> dict:
        """The totals, as `charrnn score --json` prints them."""
        return summary(int(self.ids.size), self.scored, self.log_likelihood, self.unknown)


def score_ids(
    model: Model, ids: np.ndarray, chunk_len: int = DEFAULT_CHUNK, top: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-position log-probabilities of ids (N,) from a zero state: (log_probs (N-1,), top_ids (N-1, A),
    top_log_probs (N-1, A)) with A = `top`. Runs chunks of `chunk_len` positions with the state carried.
    Wraps `kernels.scoring._score_chunk`."""
    if chunk_len < 1:
        raise CharrnnError(f"chunk length must be >= 1, got {chunk_len}")
    check_top(model, top)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    n = max(ids.size - 1, 0)
    L, H, V = model.config.num_layers, model.config.hidden_size, model.config.vocab_size
    log_probs = np.empty(n, dtype=np.float64)
    top_ids = np.empty((n, top), dtype=np.int64)
    top_log_probs = np.empty((n, top), dtype=np.float64)
    state = model.initial_state(1)
    p = model.params
    for start in range(0, n, chunk_len):
        stop = min(start + chunk_len, n)
        hidden = np.empty((L, stop - start, 1, H), model.dtype)  # per chunk, not per character
        logits = np.empty((stop - start, V), model.dtype)
        scoring._score_chunk(
            ids[start:stop][None, :], ids[start + 1 : stop + 1], p["Wx"], p["Wu"], p["Wh"], p["bh"], p["Wy"],
            p["by"], state, hidden, logits, log_probs[start:stop], top_ids[start:stop], top_log_probs[start:stop],
            model.config.activation_code,
        )  # fmt: skip
        state = np.ascontiguousarray(hidden[:, -1])
    return log_probs, top_ids, top_log_probs


def score_text(model: Model, text: str, unk: str = "error", chunk_len: int = DEFAULT_CHUNK, top: int = 0,
               where: str = "text") -> ScoreResult:  # fmt: skip
    """Score `text` under `model` (conventions in the module docstring). `unk` is the unknown-character
    policy ('error' | 'skip' | a mapped character); `top` > 0 also records the `top` most likely next
    characters at every position; `where` names the text in error messages. The same computation as
    streaming the text through a `stream.TextScorer` (what `charrnn score` does), kept whole."""
    scorer = TextScorer(model, unk, top, chunk_len, where)
    chunks = list(scorer.feed(text))
    chunks += scorer.finish()
    ids = np.concatenate([np.array([scorer.first_id], dtype=np.int64), *(c.ids for c in chunks)])
    return ScoreResult(ids, np.concatenate([c.log_probs for c in chunks]), scorer.unknown,
                       np.concatenate([c.top_ids for c in chunks]), np.concatenate([c.top_log_probs for c in chunks]))


def as_chunk(result: ScoreResult) -> ScoredChunk:
    """A whole ScoreResult as one scored chunk (positions from 1)."""
    return ScoredChunk(1, result.ids[1:], result.log_probs, result.top_ids, result.top_log_probs)


def per_char_rows(result: ScoreResult, model: Model) -> list[dict]:
    """One row per scored character (what `charrnn score --per-char` prints): its position in the text as
    scored (0-based), the character, its probability, its surprisal in bits, and the most likely
    alternatives (as many as `top` was when scoring) with their probabilities."""
    chars = model.vocab.chars
    rows = []
    for i, log_p in enumerate(result.log_probs.tolist()):
        alternatives = zip(result.top_ids[i].tolist(), result.top_log_probs[i].tolist(), strict=True)
        rows.append({
            "position": i + 1,
            "char": chars[result.ids[i + 1]],
            "prob": math.exp(log_p),
            "bits": -log_p / LN2,
            "alternatives": [{"char": model.vocab.name(c), "prob": math.exp(lp)} for c, lp in alternatives],
        })  # fmt: skip
    return rows


def line_scores(result: ScoreResult, model: Model) -> list[LineScore]:
    """Split a whole-text score by line: each character (a line's newline included) counts toward its own
    line, predicted in the context of the whole text, so the lines add up to the total. The text's first
    character is not scored, so line 1 has one scored character fewer than its length. (What
    `stream.LineTracker` does as the chunks of a stream come.)"""
    tracker = LineTracker(model)
    return tracker.add(as_chunk(result), int(result.ids[0])) + tracker.finish()


# ---- author attribution ----


@dataclass(frozen=True)
class Verdict:
    """Several models' scores of one text (or one paragraph): log-likelihoods in nats, model order."""

    scored: int
    log_likelihoods: np.ndarray  # (M,)

    @property
    def posterior(self) -> np.ndarray:
        """P(model | text) under a uniform prior: softmax of the log-likelihoods, in log space."""
        shifted = self.log_likelihoods - self.log_likelihoods.max()
        return np.exp(shifted - np.log(np.exp(shifted).sum()))

    @property
    def bits_per_char(self) -> np.ndarray:
        return -self.log_likelihoods / max(self.scored, 1) / LN2

    @property
    def best(self) -> int:
        return int(np.argmax(self.log_likelihoods))

    @property
    def margin_bits(self) -> float:
        """How many bits better the best model explains the text than the runner-up (0 with one model)."""
        ranked = np.sort(self.log_likelihoods)
        return float(ranked[-1] - ranked[-2]) / LN2 if ranked.size > 1 else 0.0


@dataclass(frozen=True)
class Paragraph:
    index: int  # 0-based
    line: int  # 1-based line where it starts in the original text
    text: str  # as in the input (excluded characters are removed only for scoring)
    verdict: Verdict | None  # None when it has fewer than 2 characters to score


@dataclass(frozen=True)
class Attribution:
    names: list[str]
    whole: Verdict
    excluded: dict[str, int]  # character -> occurrences removed (outside the shared vocabulary)
    paragraphs: list[Paragraph] | None

    @property
    def best(self) -> str:
        return self.names[self.whole.best]

    def to_dict(self) -> dict:
        """The result as `charrnn attribute --json` prints it."""

        def scores(verdict: Verdict) -> dict:
            return {name: {"log_likelihood_nats": float(ll), "bits_per_char": float(bpc), "posterior": float(post)}
                    for name, ll, bpc, post in zip(self.names, verdict.log_likelihoods, verdict.bits_per_char,
                                                   verdict.posterior, strict=True)}  # fmt: skip

        out = {
            "best": self.best,
            "scored": self.whole.scored,
            "margin_bits": self.whole.margin_bits,
            "models": scores(self.whole),
            "excluded": dict(sorted(self.excluded.items())),
        }
        if self.paragraphs is not None:
            out["paragraphs"] = [
                {"index": p.index, "line": p.line, "scored": p.verdict.scored if p.verdict else 0,
                 "best": self.names[p.verdict.best] if p.verdict else None,
                 "margin_bits": p.verdict.margin_bits if p.verdict else None,
                 "models": scores(p.verdict) if p.verdict else {}, "preview": p.text[:60]}
                for p in self.paragraphs
            ]  # fmt: skip
        return out


def shared_vocabulary(models: list[Model]) -> str:
    """Characters every model knows."""
    return "".join(sorted(set.intersection(*(set(m.vocab.chars) for m in models))))


def keep_only(text: str, alphabet: str) -> tuple[str, dict[str, int]]:
    """(text without the characters outside `alphabet`, those characters -> occurrences), vectorised."""
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    known = np.isin(codes, np.array([ord(c) for c in alphabet], dtype=np.uint32))
    if known.all():
        return text, {}
    values, counts = np.unique(codes[~known], return_counts=True)
    removed = {chr(int(v)): int(n) for v, n in zip(values, counts, strict=True)}
    return codes[known].tobytes().decode("utf-32-le", "surrogatepass"), removed


def split_paragraphs(text: str) -> list[tuple[int, str]]:
    """(1-based start line, paragraph) for each block of text between blank lines."""
    out, line, position = [], 1, 0
    for match in [*PARAGRAPH_BREAK.finditer(text), None]:
        end = match.start() if match else len(text)
        block = text[position:end]
        stripped = block.lstrip("\n")
        if stripped.strip():
            out.append((line + block.count("\n") - stripped.count("\n"), stripped))
        if match:
            line += text.count("\n", position, match.end())
            position = match.end()
    return out


def attribute(text: str, models: dict[str, Model], by_paragraph: bool = False,
              chunk_len: int = DEFAULT_CHUNK) -> Attribution:  # fmt: skip
    """Which of `models` (name -> model) explains `text` best: each model's total log-likelihood, bits/char
    and posterior under a uniform prior, for the whole text and, with `by_paragraph`, for each paragraph
    scored on its own (from a zero state). See the module docstring for excluded characters."""
    if len(models) < 1:
        raise CharrnnError("attribute needs at least one model (-m)")
    names, chosen = list(models), list(models.values())
    shared = shared_vocabulary(chosen)
    kept, excluded = keep_only(text, shared)

    def verdict(piece: str) -> Verdict | None:
        if len(piece) < 2:
            return None
        lls = [float(score_ids(m, m.vocab.encode(piece), chunk_len)[0].sum()) for m in chosen]
        return Verdict(len(piece) - 1, np.array(lls))

    whole = verdict(kept)
    if whole is None:
        raise CharrnnError(
            f"the text has {len(kept)} character(s) every model knows; attribution needs at least 2"
            + (f" ({sum(excluded.values())} excluded as unknown to some model)" if excluded else "")
        )
    paragraphs = None
    if by_paragraph:
        paragraphs = []
        for index, (line, block) in enumerate(split_paragraphs(text)):
            paragraphs.append(Paragraph(index, line, block, verdict(keep_only(block, shared)[0])))
    return Attribution(names, whole, excluded, paragraphs)


def ngram_baselines(model: Model, train_path: str | Path, text: str, unk: str = "error",
                    orders: tuple[int, ...] = (1, 2, 3, 4, 5)) -> dict[int, float]:  # fmt: skip
    """Nats/char of `text` under Kneser-Ney n-gram models fitted on the text of `train_path`, scored by
    the same convention as `score_text` (characters 2..N), so the figures sit beside the model's.
    Both texts are encoded with the model's vocabulary and the unknown-character policy `unk`."""
    ids = model.vocab.encode(text, unk=unk)
    if len(ids) < 2:
        raise CharrnnError("the text to score needs at least 2 characters for the baselines")
    stream = baseline_stream(model, train_path, unk, orders)
    stream.add(ScoredChunk(1, ids[1:].astype(np.int64), np.empty(0), np.empty((0, 0)), np.empty((0, 0))), int(ids[0]))
    return stream.nats_per_char()


def baseline_stream(model: Model, train_path: str | Path, unk: str = "error",
                    orders: tuple[int, ...] = (1, 2, 3, 4, 5)) -> NgramStream:  # fmt: skip
    """An `NgramStream` of Kneser-Ney models of `orders` fitted on the text of `train_path` (encoded with
    the model's vocabulary under `unk`)."""
    from .baselines import fit_ngram

    train_ids = model.vocab.encode(read_text([train_path]), unk=unk, where=str(train_path))
    return NgramStream({order: fit_ngram(train_ids, len(model.vocab), order) for order in orders})
