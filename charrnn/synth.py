"""Synthetic texts with a known answer: sources whose exact entropy rate (bits/char) is computable.

A model's cross-entropy on a long sample from a stationary ergodic source can never go below the
source's entropy rate, and a perfect model reaches it, so these texts measure how close training gets:

  - `markov_text`: an order-k Markov chain over k-letter contexts with a random (Dirichlet) transition
    table. Its rate is exact up to the convergence of a power iteration. An RNN needs only k characters
    of memory here.
  - `brackets_text`: nested brackets of several types with filler letters. Every closing bracket must
    match the innermost open one, so predicting it needs the whole stack of open types, which is
    unbounded memory that no finite-order Markov model has. The rate still has a closed form (see
    `BracketSource`).

Both are seeded (numpy `default_rng(seed)`) and return a `SynthText`: the text plus the rate.
"""

from __future__ import annotations

import bisect
import math
import string
from dataclasses import dataclass, field

import numpy as np

from .budget import require
from .errors import CharrnnError, OptionError  # OptionError: a bad parameter (exit 2 on the CLI)

MARKOV_ALPHABET = string.ascii_lowercase
MAX_CONTEXTS = 100_000
BRACKET_PAIRS = "()[]{}<>"


@dataclass(frozen=True)
class SynthText:
    """A generated text and the exact entropy rate of the source that produced it."""

    text: str
    entropy_rate: float  # bits per character
    source: str  # "markov" or "brackets"
    params: dict = field(default_factory=dict)


def _entropy_bits(probabilities: np.ndarray) -> np.ndarray:
    """Entropy in bits along the last axis, with 0 log 0 = 0."""
    p = np.asarray(probabilities, dtype=np.float64)
    logs = np.log2(np.where(p > 0, p, 1.0))
    return -(p * logs).sum(axis=-1)


@dataclass(frozen=True)
class MarkovSource:
    """An order-`order` Markov chain over `alphabet`.

    Contexts (the last `order` characters, oldest first, as ids x1..xk) are numbered
    c = x1*A^(k-1) + ... + xk, so appending x moves to context (c*A + x) mod A^k.
    `table` is (A^k, A) float64: row c is p(next character | context c).
    """

    alphabet: str
    order: int
    table: np.ndarray

    def stationary(self, tol: float = 1e-13, max_iterations: int = 20_000) -> np.ndarray:
        """(A^k,) stationary distribution of the context chain, by power iteration.

        One step sends probability pi[c] * table[c, x] to context (c mod A^(k-1))*A + x; with
        c = x1*A^(k-1) + rest, that is a sum over x1 of a reshaped (A, A^(k-1), A) array. The iteration
        is made lazy (average with the previous vector), which keeps the same fixed point but cannot
        oscillate if the chain is periodic (possible when tiny concentrations round entries to 0).
        """
        size = len(self.alphabet)
        contexts = self.table.shape[0]
        if self.order == 0:
            return np.ones(1)
        pi = np.full(contexts, 1.0 / contexts)
        for _ in range(max_iterations):
            flow = (pi[:, None] * self.table).reshape(size, contexts // size, size).sum(axis=0).ravel()
            if np.abs(flow - pi).sum() < tol:
                return flow / flow.sum()
            pi = 0.5 * (pi + flow)
        raise CharrnnError(
            f"stationary distribution did not converge in {max_iterations} iterations (try a larger --concentration)"
        )

    def entropy_rate(self) -> float:
        """Exact entropy rate in bits/char: sum over contexts of pi(c) * H(next | c)."""
        return float(self.stationary() @ _entropy_bits(self.table))

    def generate(self, length: int, rng: np.random.Generator) -> str:
        """`length` characters of a stationary sample: the first context is drawn from the stationary
        distribution and written out as the first `order` characters."""
        size, contexts = len(self.alphabet), self.table.shape[0]
        context = int(rng.choice(contexts, p=self.stationary()))
        ids = [(context // size**i) % size for i in reversed(range(self.order))]
        cumulative = np.cumsum(self.table, axis=1)
        cumulative[:, -1] = 1.0  # so rounding in the sum can never push a draw past the last character
        rows: dict[int, list[float]] = {}  # per-context cumulative rows as lists: bisect on a list is fast
        for draw in rng.random(max(length - self.order, 0)):
            row = rows.get(context)
            if row is None:
                row = rows[context] = cumulative[context].tolist()
            char_id = bisect.bisect_right(row, draw)
            ids.append(char_id)
            context = (context * size + char_id) % contexts
        return "".join(self.alphabet[i] for i in ids[:length])


def random_markov_source(
    order: int = 2, alphabet_size: int = 8, concentration: float = 1.0, seed: int = 0
) -> MarkovSource:
    """A Markov source whose rows are drawn from a symmetric Dirichlet(`concentration`).

    Small concentrations give peaked rows (low entropy), large ones nearly uniform rows (close to
    log2(alphabet_size) bits/char). The alphabet is the first `alphabet_size` lowercase letters.
    """
    if not 2 <= alphabet_size <= len(MARKOV_ALPHABET):
        raise OptionError(f"alphabet size must be between 2 and {len(MARKOV_ALPHABET)}, got {alphabet_size}")
    if order < 0:
        raise OptionError(f"order must be 0 or more, got {order}")
    if alphabet_size**order > MAX_CONTEXTS:
        raise OptionError(
            f"alphabet {alphabet_size} and order {order} give {alphabet_size**order:,} contexts;"
            f" the limit is {MAX_CONTEXTS:,}"
        )
    if not 0 < concentration < math.inf:
        raise OptionError(f"concentration must be a positive finite number, got {concentration}")
    rng = np.random.default_rng(seed)
    table = rng.dirichlet(np.full(alphabet_size, float(concentration)), size=alphabet_size**order)
    return MarkovSource(MARKOV_ALPHABET[:alphabet_size], order, table)


def markov_text(
    length: int, order: int = 2, alphabet_size: int = 8, concentration: float = 1.0, seed: int = 0
) -> SynthText:
    """`length` characters from `random_markov_source(order, alphabet_size, concentration, seed)`."""
    _check_length(length, seed)
    source = random_markov_source(order, alphabet_size, concentration, seed)
    # the table and the sample use separate streams, so the same seed gives the same table at any length
    text = source.generate(length, np.random.default_rng([seed, 1]))
    params = {"order": order, "alphabet_size": alphabet_size, "concentration": concentration, "seed": seed}
    return SynthText(text, source.entropy_rate(), "markov", params)


@dataclass(frozen=True)
class BracketSource:
    """Nested brackets with filler letters, generated one character at a time.

    With a stack of open brackets of depth d >= 1, the next character is an opening bracket
    (probability `p_open`, its type uniform over the `types` pairs), the closing bracket matching the top
    of the stack (`p_close`, no choice of type), or a filler letter (`1 - p_open - p_close`, uniform over
    `letters` letters). At depth 0 closing is impossible and the other two are renormalised:
    q_open = p_open / (p_open + p_letter). The text reveals the stack exactly, so the entropy of the next
    character given the whole past depends only on the depth:
        h(0) = -q_open log2(q_open/types) - q_letter log2(q_letter/letters)
        h(d) = -p_open log2(p_open/types) - p_close log2(p_close) - p_letter log2(p_letter/letters), d >= 1
    The depth is a birth-death chain (up q_open at 0, p_open above; down p_close), positive recurrent
    when p_open < p_close. Detailed balance gives pi(d) = pi(0) (q_open/p_close) r^(d-1) with
    r = p_open/p_close, so P(depth >= 1) = pi(0) q_open / (p_close - p_open), and
        entropy rate = pi(0) h(0) + (1 - pi(0)) h(1).
    A sample starts at depth 0; the average over a long sample still converges to this rate.
    """

    types: int = 3
    letters: int = 4
    p_open: float = 0.25
    p_close: float = 0.35

    def __post_init__(self) -> None:
        if not 1 <= self.types <= len(BRACKET_PAIRS) // 2:
            raise OptionError(f"bracket types must be between 1 and {len(BRACKET_PAIRS) // 2}, got {self.types}")
        if not 0 <= self.letters <= len(MARKOV_ALPHABET):
            raise OptionError(f"letters must be between 0 and {len(MARKOV_ALPHABET)}, got {self.letters}")
        if not (0 < self.p_open < self.p_close and self.p_open + self.p_close <= 1):
            raise OptionError(
                f"need 0 < p_open < p_close and p_open + p_close <= 1 (got {self.p_open}, {self.p_close});"
                " with p_open >= p_close the depth grows without bound"
            )
        if self.p_letter > 1e-12 and self.letters == 0:
            raise OptionError("p_open + p_close < 1 leaves probability for letters, so letters must be >= 1")

    @property
    def p_letter(self) -> float:
        """Probability of a filler letter at depth >= 1 (0 when p_open + p_close is 1 up to rounding)."""
        rest = 1.0 - self.p_open - self.p_close
        return rest if rest > 1e-12 else 0.0

    def entropy_rate(self) -> float:
        """Exact entropy rate in bits/char (closed form in the class docstring)."""
        q_open = self.p_open / (self.p_open + self.p_letter)
        h0 = _xlog(q_open, self.types) + _xlog(1 - q_open, self.letters)
        h1 = _xlog(self.p_open, self.types) + _xlog(self.p_close, 1) + _xlog(self.p_letter, self.letters)
        pi0 = 1.0 / (1.0 + q_open / (self.p_close - self.p_open))
        return pi0 * h0 + (1.0 - pi0) * h1

    def generate(self, length: int, rng: np.random.Generator) -> str:
        """`length` characters, starting from an empty stack. One uniform draw picks the action and,
        by where it falls inside the action's interval, the bracket type or letter."""
        opens, closes = BRACKET_PAIRS[0 : 2 * self.types : 2], BRACKET_PAIRS[1 : 2 * self.types : 2]
        letters = MARKOV_ALPHABET[: self.letters]
        stack: list[int] = []
        out: list[str] = []
        q_open = self.p_open / (self.p_open + self.p_letter)
        for draw in rng.random(length):
            p_open, p_close = (self.p_open, self.p_close) if stack else (q_open, 0.0)
            # with no letters, rounding must never reach the (empty) letter interval
            if draw < p_open or (self.letters == 0 and not stack):
                kind = min(int(draw / p_open * self.types), self.types - 1)
                stack.append(kind)
                out.append(opens[kind])
            elif draw < p_open + p_close or self.letters == 0:
                out.append(closes[stack.pop()])
            else:
                share = (draw - p_open - p_close) / (1.0 - p_open - p_close)
                out.append(letters[min(int(share * self.letters), self.letters - 1)])
        return "".join(out)


def _xlog(mass: float, ways: int) -> float:
    """Entropy contribution of `mass` spread uniformly over `ways` outcomes: -mass log2(mass/ways)."""
    return 0.0 if mass <= 0 else -mass * math.log2(mass / ways)


def brackets_text(
    length: int, types: int = 3, letters: int = 4, p_open: float = 0.25, p_close: float = 0.35, seed: int = 0
) -> SynthText:
    """`length` characters from `BracketSource(types, letters, p_open, p_close)`, seeded."""
    _check_length(length, seed)
    source = BracketSource(types, letters, p_open, p_close)
    text = source.generate(length, np.random.default_rng(seed))
    params = {"types": types, "letters": letters, "p_open": p_open, "p_close": p_close, "seed": seed}
    return SynthText(text, source.entropy_rate(), "brackets", params)


BYTES_PER_CHAR = 48  # while generating: a draw (8), a list slot (8), the characters joined, the UTF-8 copy


def _check_length(length: int, seed: int = 0) -> None:
    """Refuse a length below 1 or beyond memory, and a negative seed, before anything is drawn."""
    if length < 1:
        raise OptionError(f"length must be at least 1, got {length}")
    if seed < 0:
        raise OptionError(f"seed must be >= 0, got {seed}")
    require(length * BYTES_PER_CHAR, f"--length {length:,}")
