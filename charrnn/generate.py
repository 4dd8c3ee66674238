"""Sampling text from a trained model: `sample()` (wraps `kernels.sampling._sample_block`).

The per-character loop (output layer, softmax, temperature / top-k / top-p, the draw, the recurrence
step) runs inside one compiled call per block of `block` characters; Python only decodes and hands out
each finished block, which is how `charrnn sample` streams text without Python work per character.

Conventions (also in the README):
  - The prime is encoded under the vocabulary's unknown-character policy and run through the model from
    a zero state; sampling continues from the state it leaves. The prime is not counted in `length`.
  - Without a prime, the prime is "\\n" when the vocabulary has it (text then starts as after a line
    break), and is not part of the returned text. Otherwise the first character is drawn from the
    model's output at the zero state, softmax(by).
  - `num_samples` samples are generated together as one batch; sample k draws from its own random
    stream, seeded from (seed, k), so the same seed gives the same texts.
  - `stop`: a sample ends right after it produces the stop string (which is included in its text).
  - A documents model (its vocabulary has the end symbol, charrnn/documents.py) samples one document:
    the state starts as at a document start (the end symbol, then the prime), the sample ends when it
    draws the end symbol (`stopped`), and the symbol is not part of the text. Many documents, --unique,
    --novel: charrnn/docmodel.py.

    python -c "from charrnn.generate import sample; from charrnn.model import load_model; \\
               print(sample(load_model('model.npz'), 200, seed=1).run()[0].text)"
"""

from __future__ import annotations

import contextlib
import math
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from . import budget
from .errors import CharrnnError
from .kernels import blas, sampling
from .model import Model
from .vocab import describe_char

DEFAULT_BLOCK = 256
PRIME_CHUNK = 1024  # characters of prime per forward call: memory stays flat for a long --prime-file
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class SampleResult:
    """One finished sample. Log-probabilities are in nats, summed over the generated characters."""

    index: int
    text: str  # the generated characters (prime excluded); "" when the sampler did not keep them
    log_prob_sampling: float  # under the distribution actually sampled from (temperature, top-k, top-p)
    log_prob_model: float  # under the model itself (temperature 1, unfiltered)
    stopped: bool  # ended by the stop string rather than by the length
    generated: int | None = None  # characters generated, when `text` was not kept

    @property
    def length(self) -> int:
        return len(self.text) if self.generated is None else self.generated

    def to_dict(self) -> dict:
        """The sample as `charrnn sample --json` prints it (log-probabilities in nats)."""
        bits = -self.log_prob_model / self.length / math.log(2.0) if self.length else None
        return {"sample": self.index, "text": self.text, "length": self.length, "stopped": self.stopped,
                "log_prob_sampling": self.log_prob_sampling, "log_prob_model": self.log_prob_model,
                "model_bits_per_char": bits}  # fmt: skip


def splitmix64(value: int) -> tuple[int, int]:
    """One SplitMix64 step (Steele, Lea & Flood 2014): (next state, output). Seeds xoshiro, as its authors
    recommend, so nearby seeds give unrelated streams."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    z = value
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value, z ^ (z >> 31)


def rng_states(seed: int, num_samples: int) -> np.ndarray:
    """(K, 4) uint64 xoshiro256** states: sample k's stream depends only on (seed, k)."""
    states = np.empty((num_samples, 4), dtype=np.uint64)
    for k in range(num_samples):
        value = (seed * 0x100000001B3 + k) & _MASK64
        for i in range(4):
            value, states[k, i] = splitmix64(value)
    return states


def kmp_failure(pattern: np.ndarray) -> np.ndarray:
    """(S,) int64: for each prefix of `pattern`, the length of its longest proper prefix that is also a
    suffix (the Knuth-Morris-Pratt table the kernel uses to spot the stop string across blocks)."""
    fail = np.zeros(len(pattern), dtype=np.int64)
    m = 0
    for i in range(1, len(pattern)):
        while m > 0 and pattern[i] != pattern[m]:
            m = fail[m - 1]
        if pattern[i] == pattern[m]:
            m += 1
        fail[i] = m
    return fail


def check_sampling_options(length: int, temperature: float, top_k: int, top_p: float, num_samples: int,
                           block: int) -> None:  # fmt: skip
    """Raise CharrnnError naming the first option out of range."""
    checks = [
        (length >= 0, f"--length must be >= 0, got {length}"),
        (temperature > 0 and math.isfinite(temperature), f"--temperature must be a positive number, got {temperature}"),
        (top_k >= 0, f"--top-k must be >= 0 (0: off), got {top_k}"),
        (0 < top_p <= 1, f"--top-p must be in (0, 1], got {top_p}"),
        (num_samples >= 1, f"--num-samples must be >= 1, got {num_samples}"),
        (block >= 1, f"block size must be >= 1, got {block}"),
    ]
    for ok, message in checks:
        if not ok:
            raise CharrnnError(message)


def warm_state(model: Model, ids: np.ndarray) -> np.ndarray:
    """Run ids (N,) through the model from a zero state; returns the state after them, (L, 1, H).
    Chunks of PRIME_CHUNK keep memory flat."""
    state = model.initial_state(1)
    for start in range(0, len(ids), PRIME_CHUNK):
        state = np.ascontiguousarray(model.hidden_states(ids[start : start + PRIME_CHUNK], state)[:, -1])
    return state


def compute_threads(threads: int) -> contextlib.AbstractContextManager:
    """Run the compiled kernels on `threads` threads (0: all cores) inside the block (BLAS single-threaded:
    see `kernels.blas.thread_limit`)."""
    if threads < 0:
        raise CharrnnError(f"--threads must be >= 0, got {threads}")
    return blas.thread_limit(threads)


class Sampler:
    """Samples being generated; iterate for blocks, or call `run()` for the finished samples.

    Iterating yields, per block, a list of K strings (the characters each sample produced in that block;
    empty once a sample has stopped). After the last block, `results` holds one SampleResult per sample.
    With `keep_text=False` the blocks are only handed out, not kept (memory stays flat however long the
    samples are: `charrnn sample` streams that way); the results then have `text` "" and their `length`.
    """

    def __init__(self, model: Model, length: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 greedy: bool = False, prime: str = "", num_samples: int = 1, seed: int | None = None,
                 stop: str | None = None, unk: str = "error", block: int = DEFAULT_BLOCK,
                 keep_text: bool = True):  # fmt: skip
        check_sampling_options(length, temperature, top_k, top_p, num_samples, block)
        c = model.config
        itemsize = np.dtype(c.dtype).itemsize
        budget.require(budget.sampling_bytes(c.vocab_size, c.hidden_size, c.num_layers, itemsize, num_samples, length,
                                             keep_text, block),
                       f"{num_samples:,} sample(s) of {length:,} characters"
                       + (" (texts kept in memory)" if keep_text else ""))  # fmt: skip
        vocab = model.vocab
        self.model, self.length, self.num_samples, self.block = model, length, num_samples, block
        self.keep_text = keep_text
        self.temperature, self.top_k, self.top_p = float(temperature), int(top_k), float(top_p)
        # a temperature so small that 1/T overflows is the greedy limit (and would make 0·inf = NaN)
        self.greedy = greedy or math.isinf(1.0 / self.temperature)
        self.seed = secrets.randbits(63) if seed is None else int(seed)
        self.prime = prime
        prime_ids, self.unknown = vocab.encode_with_report(prime, unk=unk, where="prime")
        self._end = vocab.end_id
        if self._end is not None:  # a documents model: a document starts after the end symbol
            if stop:
                raise CharrnnError("--stop does not apply to a documents model: a sample ends with its document")
            prime_ids = np.concatenate(([self._end], prime_ids.astype(np.int64)))
        elif len(prime_ids) == 0 and "\n" in vocab:
            prime_ids = vocab.encode("\n")  # documented default: start as after a line break
        self.stop = stop or ""
        missing = sorted({c for c in self.stop if c not in vocab})
        if missing:
            names = ", ".join(describe_char(c) for c in missing)
            raise CharrnnError(f"--stop: {names} not in the model's vocabulary, so the stop string can never appear")
        self._stop_ids = vocab.encode(self.stop).astype(np.int64) if self._end is None else np.array([self._end])
        self._stop_fail = kmp_failure(self._stop_ids)
        state = warm_state(model, prime_ids)
        self._h = np.ascontiguousarray(np.repeat(state, num_samples, axis=1))  # (L, K, H)
        self._rng = rng_states(self.seed, num_samples)
        self._texts: list[list[str]] = [[] for _ in range(num_samples)]
        self.results: list[SampleResult] = []

    def __iter__(self) -> Iterator[list[str]]:
        model, K = self.model, self.num_samples
        V, H = model.config.vocab_size, model.config.hidden_size
        p, dtype = model.params, model.dtype
        matched = np.zeros(K, dtype=np.int64)
        done = np.zeros(K, dtype=np.bool_)
        lengths = np.zeros(K, dtype=np.int64)
        logp_sample = np.zeros(K, dtype=np.float64)
        logp_model = np.zeros(K, dtype=np.float64)
        logits, pre, tmp = np.empty((K, V), dtype), np.empty((K, H), dtype), np.empty((K, H), dtype)
        work, order = np.empty(V, dtype), np.empty(V, np.int64)
        codepoints = model.vocab.codepoints().astype(np.uint32)  # the end symbol, if any, is dropped below
        remaining = self.length
        generated = np.zeros(K, dtype=np.int64)
        while remaining > 0 and not done.all():
            out = np.empty((K, min(self.block, remaining)), dtype=np.int64)
            steps = sampling._sample_block(
                p["Wx"], p["Wu"], p["Wh"], p["bh"], p["Wy"], p["by"], self._h, model.config.activation_code,
                self.temperature, self.top_k, self.top_p, self.greedy, self._rng, self._stop_ids,
                self._stop_fail, matched, done, out, lengths, logp_sample, logp_model, logits, work, order,
                pre, tmp,
            )  # fmt: skip
            remaining -= out.shape[1]
            generated += lengths
            # ids -> text without a Python step per character: code points, then one UTF-32 decode
            drawn = [out[k, : lengths[k]] for k in range(K)]
            if self._end is not None:
                drawn = [ids[ids != self._end] for ids in drawn]
            pieces = [codepoints[ids].tobytes().decode("utf-32-le") for ids in drawn]
            if self.keep_text:
                for k, piece in enumerate(pieces):
                    self._texts[k].append(piece)
            yield pieces
            if steps < out.shape[1]:
                break
        self.results = [
            SampleResult(k, "".join(self._texts[k]), float(logp_sample[k]), float(logp_model[k]), bool(done[k]),
                         None if self.keep_text else int(generated[k]))
            for k in range(K)
        ]  # fmt: skip

    def run(self) -> list[SampleResult]:
        """Generate everything; the finished samples."""
        for _ in self:
            pass
        return self.results


def sample(model: Model, length: int, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
           greedy: bool = False, prime: str = "", num_samples: int = 1, seed: int | None = None,
           stop: str | None = None, unk: str = "error", block: int = DEFAULT_BLOCK,
           keep_text: bool = True) -> Sampler:  # fmt: skip
    """Sample `num_samples` continuations of `prime`, `length` new characters each (fewer if `stop` ends
    them). Returns a Sampler: iterate it for blocks of text as they are generated, or call `.run()` for the
    list of SampleResult. Options are checked here (CharrnnError); the conventions are in the module
    docstring. Wraps `kernels.sampling._sample_block`.
    """
    return Sampler(model, length, temperature, top_k, top_p, greedy, prime, num_samples, seed, stop, unk, block,
                   keep_text)
