"""What the model sees in a text: per-character surprisal, its top guesses, and every hidden unit.

`visualise(model, text)` reads `text` once from a zero state (the convention of `score.py`: the first
character only conditions) and returns a `Visualisation` of N characters:

    surprisal_bits  (N,) float64      -log2 p(char i | chars < i); NaN at i = 0
    top_ids         (N, K) int64      the K most likely characters at position i, best first; -1 at i = 0
    top_probs       (N, K) float64    their probabilities; NaN at i = 0
    activations     (L, N, H) dtype   every layer's hidden state after reading character i

`rank_units(activations, mask)` ranks all L·H units by Pearson correlation with a 0/1 pattern over the
characters (`pattern_mask(text, regex)`: the characters a regex match covers). Layers are numbered from 1
(as in the README's equations), units from 0.

`to_payload` packs a Visualisation into the JSON that `charrnn viz --json` prints and the HTML page
embeds (`viz_page.py`).
It is compact because a page must stay under ~5 MB (20,000 characters of a 2 x 128 model: 4.1 MB):

    surprisal_mbits   base64 <u2 (N-1,)      characters 1..N-1, millibits (max 65535: 65.5 bits)
    top_ids           base64 <u2 (N-1, K)    (<u4 when the vocabulary exceeds 65,536 characters)
    top_probs         base64 <u2 (N-1, K)    round(p · 65535)
    activations.scales base64 <f4 (L, H)     per unit: max(1, max |h|) (1 for every tanh unit)
    activations.data  base64 zlib int8 (L, H, N), unit-major: h = q / steps · scale, q in [-steps, steps]

`decode_payload` turns it back into arrays (for tests and for other tools).
"""

from __future__ import annotations

import base64
import math
import re
import zlib
from dataclasses import dataclass, replace

import numpy as np

from .errors import CharrnnError
from .model import Model
from .score import LN2, score_text
from .vocab import UnknownReport, describe_char

DEFAULT_MAX_CHARS = 20_000
DEFAULT_TOP = 5
DEFAULT_STEPS = 127  # int8 levels either side of 0: a step of 1/127 is below what a colour can show
CHUNK = 1024  # characters per forward call: the kernel's scratch stays small on long texts
# Activation quantisations tried, finest first, until the page fits its size limit. Measured on 20,000
# characters of Python under a 2 x 128 model: zlib keeps 5.7, 4.9, 4.1, 3.4 and 2.8 bits a value.
STEPS_LADDER = (127, 63, 31, 15, 7)
ZLIB_LEVEL = 6  # level 9 saves < 1% on activations and takes twice as long
MIN_BITS_PER_VALUE = 1.0  # a floor for the compressed size of an activation (7 steps keep 2.8 bits on Python)
SAMPLE = 2048  # positions (of every unit) compressed to estimate a quantisation's size
OTHER_BYTES_PER_CHAR = 32  # base64 of surprisal and top-5 (22 bytes -> 29.3) plus JSON escapes, rounded up
PAYLOAD_FORMAT, PAYLOAD_VERSION = "charrnn-viz", 1


@dataclass(frozen=True)
class UnitScore:
    """One hidden unit's correlation with a pattern. `layer` counts from 1, `unit` from 0."""

    layer: int
    unit: int
    correlation: float

    def to_dict(self) -> dict:
        return {"layer": self.layer, "unit": self.unit, "correlation": round(self.correlation, 6)}


@dataclass(frozen=True)
class Visualisation:
    """A text read by a model (shapes in the module docstring)."""

    text: str  # the N characters read: after the unknown-character policy and the length cap
    ids: np.ndarray  # (N,) int64
    surprisal_bits: np.ndarray
    top_ids: np.ndarray
    top_probs: np.ndarray
    activations: np.ndarray
    source_chars: int  # characters in the input before the length cap
    max_chars: int
    unknown: UnknownReport
    cut_by: str | None  # what cut the text: None (nothing), "max_chars", or "max_bytes" (a page size limit)

    @property
    def truncated(self) -> bool:
        return self.cut_by is not None

    @property
    def bits_per_char(self) -> float:
        return float(np.nanmean(self.surprisal_bits))

    def head(self, n: int) -> Visualisation:
        """The first n characters only."""
        return replace(self, text=self.text[:n], ids=self.ids[:n], surprisal_bits=self.surprisal_bits[:n],
                       top_ids=self.top_ids[:n], top_probs=self.top_probs[:n], activations=self.activations[:, :n],
                       cut_by="max_bytes" if n < len(self.text) else self.cut_by)  # fmt: skip

    def rank(self, pattern: str, top: int = 10) -> list[UnitScore]:
        """The `top` units most correlated (by |correlation|) with the characters `pattern` matches."""
        return rank_units(self.activations, pattern_mask(self.text, pattern), top)


def hidden_states(model: Model, ids: np.ndarray) -> np.ndarray:
    """Every layer's hidden state after each character of ids (N,), from a zero state: (L, N, H).
    Runs `Model.hidden_states` (the compiled forward pass) over chunks of CHUNK with the state carried."""
    L, H = model.config.num_layers, model.config.hidden_size
    out = np.empty((L, len(ids), H), model.dtype)
    state = model.initial_state(1)
    for start in range(0, len(ids), CHUNK):
        hidden = model.hidden_states(ids[start : start + CHUNK], state)  # (L, T, 1, H)
        out[:, start : start + hidden.shape[1]] = hidden[:, :, 0]
        state = np.ascontiguousarray(hidden[:, -1])
    return out


def visualise(model: Model, text: str, unk: str = "error", top: int = DEFAULT_TOP,
              max_chars: int = DEFAULT_MAX_CHARS, where: str = "text", max_bytes: int | None = None
              ) -> Visualisation:  # fmt: skip
    """Read the first `max_chars` characters of `text` with `model` (see the module docstring). `unk` is
    the unknown-character policy of `score_text`; `where` names the text in error messages. With
    `max_bytes` (the payload's size limit), characters that could not fit in it are not read at all
    (`chars_within`), so a long text under a big model never holds gigabytes of activations."""
    if max_chars < 2:
        raise CharrnnError(f"--max-chars must be >= 2, got {max_chars}")
    if top < 0:
        raise CharrnnError(f"top must be >= 0, got {top}")
    cap = min(max_chars, chars_within(model, max_bytes))
    shown = text[:cap]
    if unk == "error":
        check_known(shown, model, where)
    result = score_text(model, shown, unk=unk, top=min(top, len(model.vocab)), where=where)
    n, k = result.ids.size, result.top_ids.shape[1]
    surprisal = np.full(n, np.nan)
    surprisal[1:] = -result.log_probs / LN2
    top_ids = np.full((n, k), -1, dtype=np.int64)
    top_ids[1:] = result.top_ids
    top_probs = np.full((n, k), np.nan)
    top_probs[1:] = np.exp(result.top_log_probs)
    return Visualisation(model.vocab.decode(result.ids), result.ids, surprisal, top_ids, top_probs,
                         hidden_states(model, result.ids), len(text), max_chars, result.unknown,
                         None if len(text) <= cap else "max_chars" if cap == max_chars else "max_bytes")  # fmt: skip


def chars_within(model: Model, max_bytes: int | None) -> int:
    """At most how many characters a payload of `max_bytes` can hold under `model`, counting at least
    MIN_BITS_PER_VALUE for each activation (a bound, not an estimate); unlimited for None."""
    if max_bytes is None:
        return 2**62
    c = model.config
    per_char = OTHER_BYTES_PER_CHAR + 1 + c.num_layers * c.hidden_size * MIN_BITS_PER_VALUE / 8
    return max(2, int(max_bytes / per_char))


def check_known(text: str, model: Model, where: str) -> None:
    """Raise naming each character `model` does not know: how often, and the line and column (from 1)
    where it first occurs."""
    report = model.vocab.encode_with_report(text, unk="skip")[1]
    if not report.total:
        return
    parts = []
    for char, (count, first) in sorted(report.counts.items(), key=lambda item: item[1][1]):
        line = text.count("\n", 0, first) + 1
        column = first - (text.rfind("\n", 0, first) + 1) + 1
        parts.append(f"{describe_char(char)} x{count} (first at line {line}, column {column})")
    raise CharrnnError(f"{where}: {len(parts)} character(s) not in the model's vocabulary: {', '.join(parts)} "
                       "(use --unk skip or --unk map:<char>)")  # fmt: skip


def pattern_mask(text: str, pattern: str) -> np.ndarray:
    """(N,) bool: the characters covered by a match of the regex `pattern` (Python syntax; ^ and $ also
    match at line breaks, as in the page). Empty matches cover nothing."""
    try:
        compiled = re.compile(pattern, re.MULTILINE)
    except re.error as error:
        raise CharrnnError(f"--pattern {pattern!r} is not a valid regular expression: {error}") from None
    mask = np.zeros(len(text), dtype=bool)
    for match in compiled.finditer(text):
        mask[match.start() : match.end()] = True
    return mask


def rank_units(activations: np.ndarray, mask: np.ndarray, top: int = 10) -> list[UnitScore]:
    """The `top` units of activations (L, N, H) whose Pearson correlation with mask (N,) is largest in
    absolute value, best first. A unit that never changes correlates 0."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != activations.shape[1:2]:
        raise CharrnnError(f"the pattern mask has {mask.size} positions but the text has {activations.shape[1]}")
    matched = int(mask.sum())
    if matched in (0, mask.size):
        raise CharrnnError(f"the pattern matches {'no' if matched == 0 else 'every'} character; "
                           "a correlation needs both")  # fmt: skip
    m = mask.astype(np.float64) - mask.mean()
    corr = np.empty(activations.shape[::2])  # (L, H)
    for layer, states in enumerate(activations):  # one layer at a time: (N, H) float64 is the big temporary
        centred = states - states.mean(axis=0, dtype=np.float64)
        norms = np.sqrt(np.einsum("nh,nh->h", centred, centred)) * math.sqrt(float(m @ m))
        with np.errstate(invalid="ignore", divide="ignore"):
            corr[layer] = np.where(norms > 0, (m @ centred) / norms, 0.0)
    order = np.argsort(-np.abs(corr), axis=None, kind="stable")[:top]
    return [UnitScore(int(i // corr.shape[1]) + 1, int(i % corr.shape[1]), float(corr.flat[i])) for i in order]


# ---- the payload: what the page embeds and `--json` prints ----


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _unb64(text: str, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=dtype).reshape(shape)


def quantise(activations: np.ndarray, steps: int = DEFAULT_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """(q (L, H, N) int8 unit-major, scales (L, H) float32): h ≈ q / steps · scale, q in [-steps, steps].
    The scale is 1 for units within [-1, 1] (every tanh unit), so colours mean the same across units."""
    unit, scales = _normalise(activations)
    return _levels(unit, steps), scales


def _normalise(activations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(activations / scale as (L, H, N) float32 in [-1, 1], scales (L, H) float32)."""
    scales = np.maximum(1.0, np.abs(activations).max(axis=1, initial=0.0)).astype(np.float32)
    unit = np.ascontiguousarray(activations.transpose(0, 2, 1), dtype=np.float32) / scales[:, :, None]
    return unit, scales


def _levels(unit: np.ndarray, steps: int) -> np.ndarray:
    if not 1 <= steps <= 127:
        raise CharrnnError(f"quantisation steps must be in 1..127, got {steps}")
    return np.clip(np.rint(unit * np.float32(steps)), -steps, steps).astype(np.int8)


def fit_activations(vis: Visualisation, budget: int | None, steps: int | None = None
                    ) -> tuple[Visualisation, int, bytes, np.ndarray]:  # fmt: skip
    """(vis, steps, zlib data, scales): the finest quantisation in STEPS_LADDER whose compressed
    activations take at most `budget` bytes (None: no limit, 127 steps); if even the coarsest does not
    fit, the text is cut to the length that does. A given `steps` is used as it is, with no budget.

    Each candidate's size is first estimated from SAMPLE positions of every unit (zlib over 20,000
    characters of 2 x 512 units takes seconds, over the sample a few ms); only a candidate whose estimate
    fits is compressed whole, and its real size checked."""
    if steps is not None or budget is None:
        q, scales = quantise(vis.activations, steps or STEPS_LADDER[0])
        return vis, steps or STEPS_LADDER[0], zlib.compress(q.tobytes(), ZLIB_LEVEL), scales
    while True:
        unit, scales = _normalise(vis.activations)
        n = unit.shape[2]
        lo = max(0, n // 2 - SAMPLE // 2)
        sample = np.ascontiguousarray(unit[:, :, lo : lo + SAMPLE])
        other = OTHER_BYTES_PER_CHAR * n + len(vis.text.encode())
        estimate = 0.0
        for steps in STEPS_LADDER:
            compressed = len(zlib.compress(_levels(sample, steps).tobytes(), ZLIB_LEVEL))
            estimate = compressed * unit.size / sample.size * 4 / 3  # base64
            if other + estimate <= budget:
                data = zlib.compress(_levels(unit, steps).tobytes(), ZLIB_LEVEL)
                if other + len(data) * 4 / 3 <= budget:
                    return vis, steps, data, scales
        # even the coarsest is too big: keep the characters that fit at its cost per character
        keep = int(budget / ((other + estimate) / n) * 0.95)
        if keep < 2:
            raise CharrnnError(
                f"the page size limit ({budget / 1e6:.3f} MB for the data) is too small for even "
                "2 characters of this model; raise --max-mb"
            )
        vis = vis.head(min(keep, n - 1))


def to_payload(vis: Visualisation, model: Model, source: str = "text", model_name: str = "model",
               pattern: str | None = None, top_units: int = 10, max_bytes: int | None = None,
               steps: int | None = None) -> dict:  # fmt: skip
    """The JSON-ready payload (format in the module docstring), at most about `max_bytes` long (None: no
    limit): activations are quantised as finely as fits (`fit_activations`), and the text is cut if even
    the coarsest does not. With `pattern`, the payload carries the ranking of units for that regex."""
    vis, steps, data, scales = fit_activations(vis, max_bytes, steps)
    n, k = vis.ids.size, vis.top_ids.shape[1]
    id_type = "<u2" if len(model.vocab) <= 65536 else "<u4"
    mbits = np.minimum(np.rint(vis.surprisal_bits[1:] * 1000), 65535).astype("<u2")
    c = model.config
    payload = {
        "kind": "viz",
        "format": PAYLOAD_FORMAT,
        "version": PAYLOAD_VERSION,
        "source": source,
        "model": {
            "name": model_name,
            "num_layers": c.num_layers,
            "hidden_size": c.hidden_size,
            "activation": c.activation,
            "dtype": c.dtype,
            "vocab_size": c.vocab_size,
        },  # fmt: skip
        "vocab": model.vocab.chars,
        "text": vis.text,
        "characters": n,
        "source_characters": vis.source_chars,
        "max_chars": vis.max_chars,
        # what cut the text: None (all of it is shown), "max_chars", or "max_bytes" (the page size limit)
        "limited_by": vis.cut_by,
        "max_bytes": max_bytes,
        "unknown": {
            "policy": vis.unknown.policy,
            "total": vis.unknown.total,
            "characters": {ch: count for ch, (count, _) in vis.unknown.counts.items()},
        },  # fmt: skip
        "bits_per_char": round(vis.bits_per_char, 6),
        "top": k,
        "id_dtype": id_type,
        "surprisal_mbits": _b64(mbits),
        "top_ids": _b64(vis.top_ids[1:].astype(id_type)),
        "top_probs": _b64(np.rint(vis.top_probs[1:] * 65535).astype("<u2")),
        "activations": {
            "steps": steps,
            "scales": _b64(scales.astype("<f4")),
            "data": _b64(np.frombuffer(data, np.uint8)),
        },  # fmt: skip
        "pattern": None,
    }
    if pattern is not None:
        mask = pattern_mask(vis.text, pattern)
        ranking = rank_units(vis.activations, mask, top_units)
        payload["pattern"] = {"regex": pattern, "matched": int(mask.sum()),
                              "ranking": [unit.to_dict() for unit in ranking]}  # fmt: skip
    return payload


def decode_payload(payload: dict) -> dict[str, np.ndarray]:
    """The payload's arrays: surprisal_bits (N-1,), top_ids (N-1, K), top_probs (N-1, K),
    activations (L, N, H) float32 (dequantised), q (L, H, N) int8, scales (L, H)."""
    if payload.get("format") != PAYLOAD_FORMAT or payload.get("version") != PAYLOAD_VERSION:
        raise CharrnnError(f"not a {PAYLOAD_FORMAT} v{PAYLOAD_VERSION} payload")
    n, k, m = payload["characters"], payload["top"], payload["model"]
    L, H = m["num_layers"], m["hidden_size"]
    act = payload["activations"]
    q = np.frombuffer(zlib.decompress(base64.b64decode(act["data"])), np.int8).reshape(L, H, n)
    scales = _unb64(act["scales"], "<f4", (L, H))
    return {
        "surprisal_bits": _unb64(payload["surprisal_mbits"], "<u2", (n - 1,)) / 1000.0,
        "top_ids": _unb64(payload["top_ids"], payload["id_dtype"], (n - 1, k)).astype(np.int64),
        "top_probs": _unb64(payload["top_probs"], "<u2", (n - 1, k)) / 65535.0,
        "q": q,
        "scales": scales,
        "activations": (q.astype(np.float32) / act["steps"] * scales[:, :, None]).transpose(0, 2, 1),
    }
